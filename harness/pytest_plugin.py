"""The pytest plugin (entry point ``pytest11``): collects scenario YAML files as tests."""

from fake_imds.pytest_fixtures import fake_imds, fake_imds_factory  # noqa: F401
