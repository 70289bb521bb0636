"""A run from start to end: the scenario compiled into a plan, the runner that joins the
timing side and the maths, the step search, results, metrics and statistics."""
