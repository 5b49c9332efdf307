"""hmsearch: search every word said on a podcast."""

import logging

__version__ = "0.1.0"

# Diagnostics go through logging.getLogger("hmsearch...") and stay silent unless the application
# (the CLI's -v) attaches a handler.
logging.getLogger("hmsearch").addHandler(logging.NullHandler())
