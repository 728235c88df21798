"""Benchmarks: bounded in count and time; results go to benchmarks/results/."""
