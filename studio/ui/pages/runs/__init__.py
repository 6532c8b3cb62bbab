"""The runs page: every past and live run, with its curves, config and log read from disk."""
