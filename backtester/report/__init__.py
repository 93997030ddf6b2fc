"""Reports over a Result: metrics, round trips, the HTML page and the run folder."""
