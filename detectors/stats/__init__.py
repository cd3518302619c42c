"""Statistics shared by the detectors: column summaries, distances, tests, intervals, FDR."""
