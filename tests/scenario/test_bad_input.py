"""Scenario files that cannot explode (issue 12, items 1 and 3): every value within its range,
alias expansion bounded, files capped, binary junk located; a run that would simulate too much
is refused before it starts; and a mutation fuzz of every library scenario through ``validate``
and ``run`` with a time and memory limit."""

from __future__ import annotations

import resource
import signal
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import yaml

from harness.cli import main
from harness.scenario import ScenarioError, load_paths, load_text
from harness.scenario.loader import load_file
from harness.sim.runner import run_scenario

LIBRARY = Path(__file__).parents[2] / "scenarios"
LIBRARY_FILES = sorted(LIBRARY.rglob("*.yaml"))


def problems_of(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load_text(text, "s.yaml")
    return [str(p) for p in caught.value.problems]


# -- bounds -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("job: {items: 999999999999999999999999999999}",
         "s.yaml:2:6: job.items = 1.000e+30 is out of range: expected 1 to 10,000,000"),
        ("job: {state_size: 99PiB}", None),  # not a size at all: the target's own message
        ("job: {state_size: 2TiB}",
         "s.yaml:2:6: job.state_size = 2TiB is out of range: expected 0B to 1TiB"),
        ("job: {seconds_per_item: 1e-9}", "job.seconds_per_item = 1e-9 is out of range"),
        ("timeline: [{at: 1m, notice: {lead: 99999999999h}}]",
         "lead = 99999999999h is out of range: expected 0s to 1d"),
        ("timeline: [{at: 999999d, kill: true}]", "at = 999999d"),
        ("timeline: [{at: 1m, s3: {outage: true, for: 1e308}}]", "for = "),
        ("timeline: [{at: 1m, imds: {latency: 1e9}}]", "latency = "),
        ("timeline: [{at: 1m, clock: {skew: -9999d}}]", "skew = "),
        ("timeline: [{on: {event: instance.started, nth: 99999999999}, kill: true}]", "nth = "),
        ("env: {budget: 400d}", "budget = 400d is out of range: expected 1s to 31d"),
        ("env: {max_instances: 99999999}", "max_instances = "),
        ("env: {s3: {upload: 0.0001}}", "upload = "),
        ("seed: 99999999999999999999999", "seed = "),
    ],
)  # fmt: skip
def test_values_out_of_range_name_the_field_the_value_and_the_range(
    yaml_text: str, expected: str | None
) -> None:
    problems = problems_of(f"description: d\n{yaml_text}\n")
    if expected is None:
        assert problems and all("out of range" not in p for p in problems)
    elif expected.startswith("s.yaml"):
        assert expected in problems
    else:
        assert any(expected in p and "out of range" in p for p in problems), problems


def test_aws_scheduled_events_may_be_announced_weeks_ahead() -> None:
    text = "description: d\ntimeline: [{at: 1m, notice: {kind: scheduled-event, lead: 14d}}]\n"
    assert load_text(text)[0].scenario.timeline[0].notice is not None


# -- YAML that cannot explode -------------------------------------------------------------------
def laughs(levels: int) -> str:
    lines = [
        "description: laughs",
        'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    for n in range(1, levels + 1):
        lines.append(f"l{n}: &l{n} [" + ",".join([f"*l{n - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_nested_anchors_are_refused_at_their_position_before_they_expand() -> None:
    """Six levels expand to half a million values: refused, at the alias that crosses the
    limit, without building them (a few more levels once took gigabytes)."""
    (problem,) = problems_of(laughs(6))
    assert problem.startswith("s.yaml:7:")  # the sixth level
    assert "more than 100,000 values once its aliases are expanded" in problem


def test_a_billion_laughs_costs_nothing() -> None:
    with memory_limit(512 * 2**20):
        (problem,) = problems_of(laughs(9))
    assert "aliases are expanded" in problem


def test_aliases_are_counted() -> None:
    text = "description: d\nx: &x 1\nmany: [" + ",".join(["*x"] * 1001) + "]\n"
    (problem,) = problems_of(text)
    assert "more than 1,000 aliases" in problem


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    (problem,) = problems_of("description: d\nloop: &a [1, *a]\n")
    assert problem.startswith("s.yaml:2:") and "refers to the anchor it is inside" in problem


def test_deep_nesting_is_refused() -> None:
    (problem,) = problems_of("description: d\nx: " + "[" * 200 + "]" * 200 + "\n")
    assert "nested" in problem


def test_binary_junk_is_located(tmp_path: Path) -> None:
    (problem,) = problems_of("description: d\nseed: 1\x00\n")
    assert problem.startswith("s.yaml:2:8:") and "U+0000" in problem
    png = tmp_path / "image.yaml"
    png.write_bytes(b"description: d\n\x89PNG\r\n\x1a\n")
    with pytest.raises(ScenarioError) as caught:
        load_file(png)
    (located,) = caught.value.problems
    assert (located.mark.line, located.mark.col) == (2, 1)
    assert "byte 0x89 is not UTF-8" in located.message


def test_files_are_capped_in_size(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("description: d\n" + "# padding\n" * ((1 << 20) // 10 + 1))
    _, problems = load_paths([big])
    (problem,) = problems
    assert "scenario files are at most 1,048,576 bytes" in problem.message


def test_duplicate_keys_are_located() -> None:
    (problem,) = problems_of("description: d\nseed: 1\nseed: 2\n")
    assert problem.startswith("s.yaml:3:1: duplicate key `seed` (first at line 2)")


# -- simulated work ----------------------------------------------------------------------------
LONG_STORY = textwrap.dedent(
    """\
    description: a month-long job
    job: {items: 100000, seconds_per_item: 20s, checkpoint_every: 1d}
    env: {budget: 20d}
    """
)


def test_a_run_longer_than_max_sim_time_is_refused_before_it_starts() -> None:
    from harness.commands.run import check_work

    (item,) = load_text(LONG_STORY, "long.yaml")
    refused = check_work(item, max_sim_time=7 * 86400)
    assert refused is not None
    assert str(refused).startswith("long.yaml:1:1: this run would simulate about 20d")
    assert "raise --max-sim-time" in refused.message
    assert check_work(item, max_sim_time=21 * 86400) is None


def test_a_run_with_too_much_work_is_refused_whatever_its_span() -> None:
    from harness.commands.run import check_work

    text = "description: d\njob: {items: 10000000, seconds_per_item: 1ms}\n"
    (item,) = load_text(text, "busy.yaml")
    refused = check_work(item, max_sim_time=31 * 86400)
    assert refused is not None and "units of work" in refused.message


def test_harness_run_reports_the_refusal_and_runs_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "long.yaml").write_text(LONG_STORY)
    (tmp_path / "quick.yaml").write_text("description: quick\njob: {items: 20}\n")
    assert main(["run", str(tmp_path), "-q"]) == 1
    out, err = capsys.readouterr()
    assert "long.yaml:1:1: this run would simulate about 20d, more than --max-sim-time 7d" in err
    assert "1 runs: " in out  # the other file ran
    assert main(["run", str(tmp_path), "--max-sim-time", "40d"]) == 2
    assert "--max-sim-time = 40d is out of range: expected 1s to 31d" in capsys.readouterr().err


# -- the mutation fuzz -------------------------------------------------------------------------
NASTY: list[Any] = [
    10**30, -1, 1e308, 0, "99999999999h", "", None, "\x00", [], {"x": {"y": 1}}, True,
    "-5s", "1e400", 2**63, "a" * 2000, "9999-12-31T23:59:59Z",
]  # fmt: skip


def scalar_paths(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from scalar_paths(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from scalar_paths(value, (*path, index))
    else:
        yield path


def replaced(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[path[0]] = replaced(data[path[0]], path[1:], value)
    return copy


#: Nasty values tried in place of each scalar of a file (the YAML parser is pure Python: every
#: nasty value everywhere would take minutes; two per scalar, rotating, cover them all).
PER_SCALAR = 2


def mutants(text: str) -> Iterator[str]:
    """Nasty values in place of every scalar, and a few text-level breakages."""
    data = yaml.safe_load(text)
    for index, path in enumerate(scalar_paths(data)):
        for offset in range(PER_SCALAR):
            nasty = NASTY[(index + offset * len(NASTY) // PER_SCALAR) % len(NASTY)]
            yield yaml.safe_dump(replaced(data, path, nasty))
    lines = text.splitlines(keepends=True)
    yield text[: len(text) // 2]
    yield "".join([*lines[:2], "\x01\n", *lines[2:]])
    yield "".join(lines + lines[1:3])
    yield text.replace(":", "::", 1)


class Hang(Exception):
    pass


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail (not hang) if the block takes longer than ``seconds``: a hang detector."""

    def alarm(_signum: int, _frame: FrameType | None) -> None:
        raise Hang(f"no answer within {seconds}s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def memory_limit(extra: int) -> Iterator[None]:
    """Fail with MemoryError if the process grows ``extra`` bytes beyond its size now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as statm:
        size = int(statm.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (size + extra, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def judged(text: str) -> list[Any]:
    """``load_text`` gives scenarios or a ScenarioError with located problems, nothing else."""
    try:
        return [item.scenario for item in load_text(text, "m.yaml")]
    except ScenarioError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.mark.line >= 1 and problem.mark.col >= 1 and problem.message
        return []


@pytest.mark.parametrize("file", LIBRARY_FILES, ids=lambda f: f"{f.parent.name}/{f.stem}")
def test_mutants_of_every_library_scenario_validate_or_are_refused_with_a_position(
    file: Path,
) -> None:
    valid: list[Any] = []
    with memory_limit(1 << 30):
        for text in mutants(file.read_text()):
            with time_limit(10):
                valid.extend(judged(text))
    if not valid or LIBRARY_FILES.index(file) % 8:
        return  # runs are slower: one file in eight runs its last valid mutant
    scenario = valid[-1]
    if scenario.target.command is not None:
        return  # a command runs in the process tier, not in simulation
    with memory_limit(1 << 30), time_limit(60):
        result = run_scenario(scenario)
    assert result.status in ("passed", "failed", "xfailed", "xpassed", "unverified")


def test_the_mutation_fuzz_covers_every_library_file_and_thousands_of_inputs() -> None:
    assert len(LIBRARY_FILES) >= 40
    assert sum(1 for f in LIBRARY_FILES for _ in mutants(f.read_text())) >= 2500


# -- identity per scenario ---------------------------------------------------------------------
def test_a_scenario_sets_the_aws_identity_its_instances_show() -> None:
    text = textwrap.dedent(
        """\
        description: a node handler reads its public address at start-up
        target: {python: "tests.scenario.identity_target:identity_target"}
        env: {aws: {public_ipv4: 203.0.113.9, tags: {team: ml}}}
        expect: []
        """
    )
    (item,) = load_text(text)
    result = run_scenario(item.scenario)
    (seen,) = result.history.of_kind("probe.identity")
    assert seen.data == {
        "public-ipv4": "203.0.113.9",
        "public-hostname": "ec2-198-51-100-12.compute-1.amazonaws.com",
        "tags/instance/team": "ml",
    }


def test_a_bad_identity_in_a_scenario_is_located() -> None:
    (problem,) = problems_of("description: d\nenv: {aws: {public_ipv4: 999.1.1.1}}\n")
    assert problem == "s.yaml:2:26: `public_ipv4` must be an IPv4 address such as 198.51.100.12"
