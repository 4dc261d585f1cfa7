"""`network: namespace`: an unmodified handler that hard-codes 169.254.169.254 reaches the fake."""

from __future__ import annotations

import os
import subprocess

import pytest

from harness.process import netns
from harness.process.plan import process_problems
from tests.process.conftest import first, run, scenario

HARD_CODED = """
description: a handler with the metadata address written in
target:
  network: namespace
  command:
    - sh
    - -c
    - >
      curl -s -m 2 http://169.254.169.254/latest/meta-data/instance-id; echo;
      curl -s -m 2 -H Metadata-Flavor:Google
      http://metadata.google.internal/computeMetadata/v1/instance/zone; echo;
      curl -s -m 2 -o /dev/null -w 'outside:%{http_code}' http://1.1.1.1/ || echo outside:none
env: {budget: 20s}
expect: [completes]
"""


def test_without_root_namespace_is_refused_with_how_to_run_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    (problem,) = process_problems(scenario(HARD_CODED), max_real_time=300)
    assert problem.startswith("target.network: `network: namespace` needs root")
    assert "sudo harness run" in problem


@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
def test_a_hard_coded_metadata_address_reaches_the_fake_inside_the_namespace() -> None:
    result = run(HARD_CODED)
    assert result.status == "passed", result.error
    started = first(result.history, "instance.started")
    exited = first(result.history, "instance.exited")
    lines = exited.data["output_tail"]
    assert lines[0] == started.instance  # the fake's answer, at the address written in the code
    assert lines[1].startswith("projects/")  # metadata.google.internal resolves to the fake too
    assert lines[2].startswith("outside:000")  # and nothing else is reachable
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert "spot-harness-" not in left.stdout  # the namespace is gone with the run
    assert not any(p.name.startswith("spot-harness-") for p in netns.NETNS_DIR.glob("*"))
