"""`python -m lsops_lib.cli ...`: the `lsops` command without its console script."""

from . import main

main()
