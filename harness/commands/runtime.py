"""``harness runtime run``: the reference checkpoint-and-recovery runtime on a real host."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click
import yaml

from harness.cli import EXIT_INTERRUPTED, EXIT_OK
from harness.errors import EnvironmentProblem, InputError
from harness.runtime.config import ConfigError
from harness.runtime.job import JobSpecError
from harness.runtime.realmode import (
    RealModeConfig,
    RealModeError,
    environment,
    load_config,
    run_real,
)


@click.group("runtime")
def runtime() -> None:
    """The reference checkpoint-and-recovery runtime.

    \b
    Examples:
      harness runtime run --config job.yaml
      harness runtime run --config job.yaml --dry-run
    """


@runtime.command("run")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML file with job:, cloud:, storage:, runtime: and metrics: (see docs/runtime.md). "
    "Without it everything comes from the environment (HARNESS_JOB, HARNESS_S3_BUCKET, "
    "REDIS_URL, HARNESS_LOCAL_DIR, ...), as the process tier sets it.",
)
@click.option("--dry-run", is_flag=True, help="Print what would run and exit.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
def run(config_path: Path | None, dry_run: bool, quiet: bool) -> int:
    """Run the job until it completes or an interruption stops it.

    It resumes from the newest checkpoint that verifies (local disk, S3, with Redis as a hint),
    watches the cloud's interruption signals, checkpoints periodically and saves what fits
    before a notice's deadline. Exit code 0: the job is complete; 130: it stopped for a notice
    (or a newer instance took over) and should be started again.

    \b
    Examples:
      harness runtime run --config job.yaml
      HARNESS_EVENTS=events.jsonl harness runtime run --config job.yaml --quiet
      HARNESS_JOB='{"items": 500}' HARNESS_S3_BUCKET=b REDIS_URL=redis://127.0.0.1:6379 \\
        HARNESS_LOCAL_DIR=/tmp/nvme harness runtime run
    """
    config = _load(config_path)
    for line in config.describe():
        click.echo(line, err=True)
    if dry_run:
        return EXIT_OK
    progress = None if quiet else (lambda line: click.echo(line, err=True))
    try:
        outcome = asyncio.run(run_real(config, progress))
    except RealModeError as error:
        raise EnvironmentProblem(str(error)) from None
    click.echo(f"job {config.spec.name}: {outcome}", err=True)
    return EXIT_OK if outcome == "completed" else EXIT_INTERRUPTED


def _load(path: Path | None) -> RealModeConfig:
    raw: Any = {}
    if path is not None:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            raise InputError(_yaml_problem(path, error)) from None
        if not isinstance(raw, dict):
            raise InputError(f"{path}: expected a mapping with job:, storage:, ...")
    try:
        return load_config(raw, environment())
    except (RealModeError, JobSpecError, ConfigError) as error:
        where = path if path is not None else "environment"
        raise InputError(f"{where}: {error}") from None


def _yaml_problem(path: Path, error: yaml.YAMLError) -> str:
    """``file:line:col: not valid YAML: what``, as scenario files report it."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is None:
        return f"{path}: not valid YAML: {problem}"
    return f"{path}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {problem}"
