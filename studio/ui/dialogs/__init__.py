"""Modal dialogs: about, errors, closing during a run."""
