"""`python -m oracle …` is the `histochain` command, for children started with this interpreter."""

from oracle.cli import main

main()
