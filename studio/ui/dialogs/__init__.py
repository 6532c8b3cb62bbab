"""Modal dialogs: about, errors, closing during a run, diagnostics (Help → Diagnostics and the first-launch pre-flight)."""
