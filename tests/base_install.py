"""The base install, alone: run by ``tox -e base`` in a fresh virtualenv holding the built wheel
with no extras (no pytest there, so this is a plain script).

It proves what a production host gets from ``pip install spot-harness``: none of the simulator's
heavy packages (pytest, hypothesis, moto, fakeredis), and working ``harness agent``, ``inject``,
``serve``, ``notice`` and ``runtime run`` (their ``--help`` and a dry run, a live fake metadata
server and a notice against it), the scenario library shipped in the wheel, and a clear word
from commands that need the ``[sim]`` extra. Every command runs from a scratch folder, so
nothing is read from the repository. Ends with ``N passed, N failed``; exit 1 on any failure.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HEAVY = ("pytest", "hypothesis", "moto", "fakeredis")
HARNESS = str(Path(sys.executable).with_name("harness"))
SCRATCH = Path(tempfile.mkdtemp(prefix="harness-base-"))
OFFLINE_ENV = {
    "AWS_CONFIG_FILE": str(SCRATCH / "no-aws-config"),
    "AWS_SHARED_CREDENTIALS_FILE": str(SCRATCH / "no-aws-credentials"),
    "AWS_EC2_METADATA_DISABLED": "true",
}


def harness(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HARNESS_"))}
    return subprocess.run(
        [HARNESS, *args],
        cwd=SCRATCH,
        env={**clean, **OFFLINE_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def ok(*args: str, env: dict[str, str] | None = None) -> str:
    done = harness(*args, env=env)
    assert done.returncode == 0, f"harness {' '.join(args)}: exit {done.returncode}\n{done.stderr}"
    return done.stdout


def harness_package() -> str:
    """Where the installed (wheel) package lives, asked from outside the checkout."""
    code = "import harness, os; print(os.path.dirname(harness.__file__))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=SCRATCH, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def no_heavy_package() -> None:
    present = []
    for name in HEAVY:
        try:
            importlib.metadata.distribution(name)
            present.append(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    assert not present, f"the base install pulled {', '.join(present)}"


def production_commands_have_help() -> None:
    for command in (["agent"], ["inject"], ["serve"], ["notice"], ["runtime", "run"]):
        text = ok(*command, "--help")
        assert "Examples:" in text or "Usage:" in text, command


def inject_dry_run_is_offline() -> None:
    text = ok("inject", "--target", "i-0abc12345678def01", "--dry-run", "--offline")
    template = json.loads(text.split("arguments):\n", 1)[1].rsplit("dry run:", 1)[0])
    action = template["actions"]["interrupt"]["actionId"]
    assert action == "aws:ec2:send-spot-instance-interruptions", action
    assert "warning  OFFLINE" in text


def runtime_dry_run() -> None:
    env = {
        "HARNESS_JOB": '{"items": 5}',
        "HARNESS_S3_BUCKET": "bucket",
        "REDIS_URL": "redis://127.0.0.1:6379",
        "HARNESS_LOCAL_DIR": str(SCRATCH / "nvme"),
    }
    done = harness("runtime", "run", "--dry-run", env=env)
    text = done.stdout + done.stderr  # the plan goes to stderr, beside the progress lines
    assert done.returncode == 0, text
    assert "job: 5 items" in text and "S3 bucket bucket" in text, text


def serve_and_notice() -> None:
    server = subprocess.Popen(
        [HARNESS, "serve", "--port", "0"],
        cwd=SCRATCH,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        url = banner.split("fake metadata server: ", 1)[1].split()[0].rstrip("/")
        env = {"HARNESS_IMDS_URL": url, "NO_PROXY": "127.0.0.1,localhost"}
        ok("notice", "--action", "terminate", "--lead", "2m", env=env)
        assert "terminate" in ok("notice", "--list", env=env)
    finally:
        server.terminate()
        server.wait(timeout=10)


def library_ships_in_the_wheel() -> None:
    listing = ok("scenarios", "list")
    assert "library:aws/terminate_mid_job" in listing, listing
    assert "description:" in ok("scenarios", "show", "aws/terminate_mid_job")
    # The process scenarios name their handlers as ../../examples/..., as in a checkout.
    library = Path(harness_package()) / "library"
    for scenario in sorted((library / "process").glob("*.yaml")):
        for word in scenario.read_text().split():
            if "examples/" in word:
                handler = (scenario.parent / word.strip(",[]")).resolve()
                assert handler.is_file(), f"{scenario.name} names {word}: not in the wheel"


def sim_commands_name_their_extra() -> None:
    for args in (["run", "--library"], ["explore", "--help"]):
        done = harness(*args)
        assert done.returncode == 3, (args, done.returncode, done.stderr)
        assert "pip install 'spot-harness[sim]'" in done.stderr, done.stderr
    assert "needs the [sim] extra" in ok("--help")


CHECKS: list[Callable[[], None]] = [
    no_heavy_package,
    production_commands_have_help,
    inject_dry_run_is_offline,
    runtime_dry_run,
    serve_and_notice,
    library_ships_in_the_wheel,
    sim_commands_name_their_extra,
]


def main() -> int:
    failed = 0
    for check in CHECKS:
        try:
            check()
            print(f"PASSED {check.__name__}")
        except Exception as error:  # report every check, not only the first failure
            failed += 1
            print(f"FAILED {check.__name__}: {error}")
    print(f"base install: {len(CHECKS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
