"""The scenario library shipped with the package: `library:` names, `harness run --library`,
`harness scenarios list/show`, and commands whose extra is not installed."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from harness.cli import EXIT_ENVIRONMENT, EXIT_USAGE, main
from harness.errors import InputError
from harness.scenario import library

REPO = Path(__file__).resolve().parents[2]


def test_the_library_is_the_top_level_scenarios_folder_installed_or_in_a_checkout() -> None:
    """An editable install reads the checkout's folder; a wheel its copy of it."""
    root = library.library_root()
    assert root == REPO / "scenarios" or root.parts[-2:] == ("harness", "library")
    shipped = sorted(str(p.relative_to(root)) for p in root.rglob("*.yaml"))
    assert shipped == sorted(
        str(p.relative_to(REPO / "scenarios")) for p in (REPO / "scenarios").rglob("*.yaml")
    )
    assert "aws/terminate_mid_job" in library.names()
    assert "known_bad" in library.folders()


def test_installed_package_data_comes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = tmp_path / "harness" / "library"
    (shipped / "aws").mkdir(parents=True)
    (shipped / "aws" / "only_here.yaml").write_text("description: shipped\n")
    monkeypatch.setattr(
        "harness.scenario.library.resources.files", lambda package: tmp_path / package
    )
    assert library.library_root() == shipped
    assert library.names() == ["aws/only_here"]
    assert library.resolve("library:aws/only_here") == shipped / "aws" / "only_here.yaml"


def test_names_resolve_with_or_without_suffix_and_typos_get_the_closest() -> None:
    root = library.library_root()
    assert library.resolve("library:") == root
    assert library.resolve("library:gcp") == root / "gcp"
    assert library.resolve("library:gcp/preemption") == root / "gcp" / "preemption.yaml"
    assert library.resolve("library:gcp/preemption.yaml") == root / "gcp" / "preemption.yaml"
    with pytest.raises(InputError, match=r"no scenario `gcp/preemtion`.*`gcp/preemption`\?"):
        library.resolve("library:gcp/preemtion")


def test_run_a_library_scenario_from_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", "library:aws/terminate_mid_job", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("1 runs: 1 passed")


def test_run_needs_a_path_or_the_library(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == EXIT_USAGE
    assert "pass --library" in capsys.readouterr().err


def test_scenarios_list_names_every_library_file_with_its_story(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["scenarios", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [f"library:{n}" for n in library.names()]
    terminate = next(line for line in lines if line.startswith("library:aws/terminate_mid_job "))
    assert "A 2-minute AWS spot terminate notice" in terminate


def test_scenarios_list_one_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios", "list", "gcp"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == [f"library:{n}" for n in library.names() if n.startswith("gcp/")]


def test_scenarios_show_prints_the_file_and_refuses_a_folder(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["scenarios", "show", "aws/terminate_mid_job"]) == 0
    out = capsys.readouterr().out
    assert out == (REPO / "scenarios" / "aws" / "terminate_mid_job.yaml").read_text()
    assert main(["scenarios", "show", "aws"]) == EXIT_USAGE
    assert "is a folder" in capsys.readouterr().err


def test_a_command_whose_extra_is_missing_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [
        m for m in sys.modules if m.startswith(("harness.commands.explore", "harness.explore"))
    ]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "hypothesis", None)  # as if not installed
    assert main(["explore", "--help"]) == EXIT_ENVIRONMENT
    err = capsys.readouterr().err
    assert "`harness explore` needs the [sim] extra (hypothesis is not installed)" in err
    assert "pip install 'spot-harness[sim]'" in err
    assert main(["--help"]) == 0
    listing = capsys.readouterr().out
    assert re.search(r"explore +Not installed here: needs the \[sim\] extra", listing)
