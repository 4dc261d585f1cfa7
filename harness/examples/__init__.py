"""Example targets: known-bad variations of the reference runtime."""
