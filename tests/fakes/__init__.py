"""Test doubles shared by the test suites and benchmarks (never touch the network)."""
