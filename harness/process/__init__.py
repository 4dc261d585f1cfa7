"""The process tier: scenarios whose target is a command, run as real processes in real time.

``harness.process.runner.run_process_scenario`` plays one scenario; ``harness run`` and the
pytest plugin call it for every scenario with ``target: {command: [...]}``. This package is kept
free of imports at the top so that ``python -m harness.process.watchdog`` starts fast.
"""
