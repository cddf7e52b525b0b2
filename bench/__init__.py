"""Benchmarks that print figures (`make bench`); results and method live in docs/benchmarks.md."""
