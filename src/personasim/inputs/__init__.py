"""What a run reads: learner personas, learning modules and the criteria derived from them."""
