"""hmsearch: search every word said on a podcast."""

__version__ = "0.1.0"
