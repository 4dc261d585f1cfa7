"""Chaos testing and fault injection for spot-instance interruptions."""

__version__ = "0.1.0"
