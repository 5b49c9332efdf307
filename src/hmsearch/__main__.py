"""`python -m hmsearch` runs the command line."""

from .cli import main

main()
