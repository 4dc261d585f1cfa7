"""benchmarks/cost_breakdown.py files a sample under the layer of the innermost frame outside
the standard library: the bound it prints (the target's share) is only as good as that rule."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from benchmarks import cost_breakdown as breakdown

PACKAGES = "/venv/lib/python3.11/site-packages"


def stack(*filenames: str) -> Any:
    """A chain of frame-like objects, outermost first; returns the innermost."""
    frame: Any = None
    for filename in filenames:
        frame = SimpleNamespace(
            f_code=SimpleNamespace(co_filename=filename, co_name="f"), f_back=frame
        )
    return frame


def test_standard_library_frames_are_filed_under_their_caller() -> None:
    json_file = json.__file__  # the standard library's, whatever the interpreter
    frame = stack("/repo/harness/sim/runner.py", "/repo/harness/runtime/job.py", json_file)
    assert breakdown.filed_frame(frame) == (breakdown.TARGET_RUNTIME, "runtime/job.py:f")


def test_asyncio_frames_are_the_event_loop_even_when_the_target_called_them() -> None:
    frame = stack("/repo/harness/runtime/runtime.py", f"{breakdown.ASYNCIO}tasks.py")
    assert breakdown.filed_frame(frame)[0] == breakdown.LOOP


def test_the_target_client_libraries_and_the_simulated_services_are_told_apart() -> None:
    filed = {
        f"{PACKAGES}/botocore/hooks.py": breakdown.TARGET_CLIENTS,
        f"{PACKAGES}/redis/asyncio/client.py": breakdown.TARGET_CLIENTS,
        f"{PACKAGES}/moto/s3/models.py": breakdown.S3,
        "/repo/harness/sim/moto_patches.py": breakdown.S3,
        f"{PACKAGES}/fakeredis/_server.py": breakdown.REDIS,
        f"{PACKAGES}/aiohttp/web_protocol.py": breakdown.METADATA,
        "/repo/fake_imds/aws.py": breakdown.METADATA,
        "/repo/harness/checks/snapshot.py": breakdown.CHECKS,
        f"{PACKAGES}/hypothesis/core.py": breakdown.SEARCH,
        "/repo/harness/clock.py": breakdown.LOOP,
        "/repo/harness/sim/world.py": breakdown.WORLD,
        "<string>": breakdown.OTHER,
    }
    for filename, layer in filed.items():
        assert breakdown.filed_frame(stack("/repo/harness/runtime/runtime.py", filename))[0] == (
            layer
        ), filename


def test_the_sampler_counts_samples_by_layer() -> None:
    sampler = breakdown.Sampler(0.001)
    sampler._sample(0, stack("/repo/harness/runtime/job.py"))
    sampler._sample(0, stack(f"{PACKAGES}/moto/s3/models.py"))
    sampler._sample(0, None)
    assert sampler.samples == {
        breakdown.TARGET_RUNTIME: 1,
        breakdown.S3: 1,
        breakdown.OTHER: 1,
    }
