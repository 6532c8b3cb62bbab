"""The export page: turn a finished run into a PEFT adapter folder or a merged model."""
