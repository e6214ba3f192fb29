"""Reading results: the results table, health checks, judge reliability and version comparison."""
