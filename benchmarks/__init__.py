"""Ratio benchmarks (SPEC §9); run each file as a script."""
