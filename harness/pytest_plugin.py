"""The pytest plugin (entry point ``pytest11``): collects scenario YAML files as tests."""
