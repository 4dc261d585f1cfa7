"""Misuse of every command: refused with a reason and a non-zero exit code, never a traceback,
and nothing a user wrote is overwritten."""

from __future__ import annotations

import json
import socket
import textwrap
from pathlib import Path

import pytest

from harness.cli import COMMANDS, EXIT_ENVIRONMENT, EXIT_USAGE, main

FAST = textwrap.dedent(
    """\
    description: a short run
    seed: 4
    target: {python: "tests.sim.probe:probe_target"}
    job: {items: 6, step: 10}
    env: {s3: {latency: 0}, redis: {latency: 0}, disk: {latency: 0, fsync: 0}}
    timeline: [{at: 25s, kill: {}}]
    expect: [{completes: {within: 1h}}]
    """
)
NOTES = "my own notes, not a harness file\n"


def refused(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = EXIT_USAGE) -> str:
    """Run ``harness argv``; assert the exit code and that no traceback was shown."""
    assert main(argv) == code, argv
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "Traceback" not in output
    return output


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text(NOTES)
    return path


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_examples_and_refuses_unknown_options(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--help"]) == 0
    assert "Examples:" in capsys.readouterr().out
    assert "No such option '--frobnicate'" in refused(capsys, [command, "--frobnicate"])


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["demo", "--lead", "soon"], "Invalid value for '--lead': expected a duration"),
        (["demo", "--poll", "0"], "must be more than 0s"),
        (["demo", "--lead", "1m"], "at least 2m"),
        (["notice", "--lead", "2 minutes"], "Invalid value for '--lead'"),
        (["inject", "--target", "pid:1", "--lead", "soon"], "Invalid value for '--lead'"),
        (["serve", "--port", "70000"], "Invalid value for '--port'"),
        (["serve", "--tag", "novalue"], "KEY=VALUE"),
        (["notice", "--url", "127.0.0.1:1338"], "http:// URL"),
        (["agent", "--upstream", "metadata"], "Invalid value for '--upstream'"),
        (["explore", "--target", "nosuch_module:target"], "cannot import 'nosuch_module'"),
        (["explore", "--target", "harness.examples.broken:nosuch"], "has no 'nosuch'"),
        (["explore", "--target", "not a target"], "unknown target"),
        (["serve", "--availability-zone", "eu-west"], "is not a zone name such as eu-west-1b"),
        (["serve", "--pre-stop", "sh 'drain"], "No closing quotation"),
        (["inject", "--tag", "team=ml", "--percent", "500"], "Invalid value for '--percent'"),
        (["inject", "--tag", "team=ml", "--count", "0"], "Invalid value for '--count'"),
        (["inject", "--target", "pid:0", "--dry-run"], "refusing to signal pid 0"),
        (["inject", "--target", "pid:1", "--dry-run"], "refusing to signal pid 1"),
    ],
)
def test_bad_values_are_refused_with_the_option_named(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert says in refused(capsys, argv)


def test_fis_input_is_checked_before_any_aws_call(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_aws(**_: object) -> None:
        raise AssertionError("AWS was called before the input was checked")

    monkeypatch.setattr("harness.commands.inject.boto3.Session", no_aws)
    target = ["inject", "--target", "i-0abc12345678def01", "--dry-run"]
    monkeypatch.delenv("HARNESS_FIS_ROLE_ARN", raising=False)
    real_run = ["inject", "--target", "i-0abc12345678def01", "--yes"]
    assert "--role-arn is required" in refused(capsys, real_run)  # a dry run shows a placeholder
    monkeypatch.setenv("HARNESS_FIS_ROLE_ARN", "arn:aws:iam::123456789012:role/fis")
    assert "between 2m and 15m" in refused(capsys, [*target, "--lead", "1m"])
    assert "add --tag KEY=VALUE" in refused(capsys, [*target, "--count", "2"])


def test_missing_files_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "missing.yaml")
    assert "no such file" in refused(capsys, ["run", missing])
    assert "no such file" in refused(capsys, ["validate", missing])
    assert "does not exist" in refused(capsys, ["runtime", "run", "--config", missing])
    assert "does not exist" in refused(capsys, ["serve", "--user-data", missing])
    assert f"cannot read --token-file {missing}" in refused(
        capsys, ["agent", "--token-file", missing]
    )
    assert "cannot read --control-token-file" in refused(
        capsys, ["serve", "--control-token-file", missing]
    )


def test_user_data_that_is_not_text_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gzipped = tmp_path / "user-data.gz"
    gzipped.write_bytes(b"\x1f\x8b\x08\x00\xff\xfe")
    assert "is not UTF-8 text" in refused(capsys, ["serve", "--user-data", str(gzipped)])


def test_a_folder_without_scenarios_is_explained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert f"no *.yaml or *.yml file in {tmp_path}" in refused(capsys, ["run", str(tmp_path)])
    assert f"no *.yaml or *.yml file in {tmp_path}" in refused(capsys, ["validate", str(tmp_path)])


def test_bad_yaml_is_reported_with_its_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("description: x\nseed: [\n")
    assert f"{bad}:3:1: not valid YAML" in refused(capsys, ["validate", str(bad)])
    assert f"{bad}:3:1: not valid YAML" in refused(capsys, ["run", str(bad)])
    assert f"{bad}:3:1: not valid YAML" in refused(capsys, ["runtime", "run", "--config", str(bad)])


def test_unreachable_servers_are_an_environment_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    out = refused(capsys, ["notice", "--url", url, "--lead", "2m"], EXIT_ENVIRONMENT)
    assert "cannot reach the control API" in out and "harness serve" in out
    out = refused(capsys, ["inject", "--target", url, "--yes", "--no-wait"], EXIT_ENVIRONMENT)
    assert "cannot reach the agent" in out


def test_a_port_in_use_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        out = refused(capsys, ["serve", "--port", port], EXIT_ENVIRONMENT)
    assert f"port {port} on 127.0.0.1 is in use; choose another with --port" in out


def test_listening_beyond_loopback_needs_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("serve", "agent"):
        assert "set a control token" in refused(capsys, [command, "--host", "0.0.0.0"])


def test_two_sources_of_one_token_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cr3t-value\n")
    out = refused(
        capsys, ["serve", "--control-token", "other", "--control-token-file", str(token_file)]
    )
    assert "not both" in out and "s3cr3t-value" not in out and "other" not in out


def test_run_never_overwrites_a_file_that_is_not_a_journal(
    tmp_path: Path, notes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "fast.yaml"
    scenario.write_text(FAST)
    out = refused(capsys, ["run", str(scenario), "--journal", str(notes), "-q"])
    assert "is not a harness journal; refusing to overwrite it" in out
    assert notes.read_text() == NOTES


def test_run_says_when_it_replaces_an_earlier_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "fast.yaml"
    scenario.write_text(FAST)
    journal = tmp_path / "journal.json"
    assert main(["run", str(scenario), "--journal", str(journal), "-q"]) in (0, 1)
    assert "replacing" not in capsys.readouterr().err
    assert main(["run", str(scenario), "--journal", str(journal), "-q", "--seed", "4"]) in (0, 1)
    assert f"replacing the earlier journal {journal}" in capsys.readouterr().err
    assert json.loads(journal.read_text())["seed"] == 4  # the first run had no --seed


def test_event_sinks_never_clobber_a_users_file(
    tmp_path: Path, notes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("serve", "agent"):
        out = refused(capsys, [command, "--events", str(notes)])
        assert "is not a JSON-lines file; refusing to append" in out
    assert notes.read_text() == NOTES
    assert "does not exist" in refused(capsys, ["serve", "--events", str(tmp_path / "no" / "e")])
    assert "unknown scheme" in refused(capsys, ["serve", "--events", "ftp://example.com/e"])


def test_explore_out_must_be_a_folder(notes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "is a file" in refused(capsys, ["explore", "--out", str(notes), "-n", "1"])
    assert notes.read_text() == NOTES


@pytest.mark.parametrize(
    "args",
    [
        ["inject", "--target", "pid:1", "--lead", "99999999h", "--dry-run"],
        ["notice", "--lead", "2d"],
    ],
)
def test_duration_flags_have_the_ranges_of_scenarios_and_the_control_api(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    assert "is out of range: expected 0s to 1d" in capsys.readouterr().err
