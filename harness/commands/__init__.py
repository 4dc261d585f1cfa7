"""Subcommands of the ``harness`` CLI, one module each, registered in ``harness.cli``."""
