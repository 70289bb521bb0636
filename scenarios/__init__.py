"""Scenarios shipped with rfast-sim (installed as the package ``rfast_sim.scenarios``)."""
