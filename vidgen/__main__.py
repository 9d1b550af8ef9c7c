"""`python -m vidgen` runs the command line."""

from vidgen.cli import main

main()
