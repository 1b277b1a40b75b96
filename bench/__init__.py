"""Benchmarks (not tests): run as `python -m bench.bench_<area>`; they print a results table."""
