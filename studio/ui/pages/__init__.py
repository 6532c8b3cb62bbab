"""One folder per page; each ``page.py`` exposes a ``...Page(QWidget)`` taking the ConfigModel."""
