from __future__ import annotations

from harness.clock import run_virtual
from harness.runtime import JobSpec, expected_outputs
from harness.runtime.job import checksum
from tests.runtime.world import World


def test_uninterrupted_run_completes_with_every_output_once(world: World) -> None:
    result = run_virtual(world.run_instance())
    assert result == "completed"
    spec = JobSpec.from_mapping(world.job)
    expected = expected_outputs(spec)
    assert world.object_versions("outputs/") == {key: 1 for key in expected}
    for key, digest in expected.items():
        assert checksum(world.read(key)) == digest
    print(world.kinds())
