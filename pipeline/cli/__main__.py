"""`python -m pipeline.cli` is the `roamclear` command."""

from pipeline.cli.main import main

main()
