"""Running units: the plan, one conversation per unit, the run folder's state, the runner and suites."""
