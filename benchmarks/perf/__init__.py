"""Speed benchmarks: each timed against a reference library or the code path it replaced (`make bench`)."""
