"""Reusable widgets: the generated config form, cards, curves, the module picker."""
