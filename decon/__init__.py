"""decon: find evaluation-benchmark contamination in LLM training corpora."""

__version__ = "0.1.0"
