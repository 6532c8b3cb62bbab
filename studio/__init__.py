"""The studio: point-and-click parameter-efficient fine-tuning of causal language models."""

__version__ = "0.1.0"
