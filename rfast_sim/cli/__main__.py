"""`python -m rfast_sim.cli`: the command line, as the `rfast-sim` script runs it."""

from rfast_sim.cli import main

main()
