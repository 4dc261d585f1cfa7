"""Runs shared by the report tests: a failing and a passing scenario, run once per session."""

from __future__ import annotations

import contextlib
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main

STORY = """\
    description: {description}
    seed: 3
    target: {target}
    job: {{items: 300, seconds_per_item: 1s, checkpoint_every: 2m, state_size: 64MiB}}
    env: {{cloud: aws}}
    timeline:
      - at: 1m
        s3: {{latency: 200ms, for: 30s}}
      - at: 4m
        notice: {{action: terminate, lead: 2m}}
    expect: [saved_before_deadline, exactly_once]
    """
BROKEN = "The upload is never awaited before exit; S3 is slow for a while first."
GOOD = "The reference runtime saves before the deadline."


def write_scenarios(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    stories = {
        "good.yaml": (GOOD, "reference"),
        "broken.yaml": (BROKEN, '{python: "harness.examples.broken:upload_not_awaited"}'),
    }
    paths = []
    for name, (description, target) in stories.items():
        path = folder / name
        text = STORY.format(description=description, target=target)
        path.write_text(textwrap.dedent(text))
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A journal of both scenarios (good first on the command line), and its report."""
    root = tmp_path_factory.mktemp("runs")
    paths = write_scenarios(root / "scenarios")
    out = root / "journal.json"
    with contextlib.chdir(root):  # names in the report as a user would give them
        relative = [str(path.relative_to(root)) for path in paths]
        code = main(["run", *relative, "--journal", out.name, "--report", "r.html"])
    assert code == 1  # the broken target fails
    return out


@pytest.fixture(scope="session")
def document(journal: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(journal.read_text())
    return loaded


@pytest.fixture(scope="session")
def page(journal: Path) -> str:
    return (journal.parent / "r.html").read_text()
