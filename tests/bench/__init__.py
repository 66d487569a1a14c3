"""Benchmarks (``make bench``): ratios against a ceiling measured in the same run.

Not tests: they print figures and never fail on timing (this machine is shared and noisy).
"""
