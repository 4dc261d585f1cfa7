"""The standard scenario library, shipped inside the package.

In a wheel the library is package data (``harness/library``, read with
:mod:`importlib.resources`); in a source checkout it is the repository's top-level
``scenarios/`` folder. Either way it is named the same on the command line: ``library:`` (all of
it), ``library:aws`` (a folder) or ``library:aws/terminate_mid_job`` (one file, suffix optional).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from harness.errors import EnvironmentProblem, InputError, did_you_mean

PREFIX = "library:"
SUFFIXES = (".yaml", ".yml")


def library_root() -> Path:
    """The library folder: the installed package data, else the source checkout's."""
    shipped = resources.files("harness").joinpath("library")
    if isinstance(shipped, Path) and shipped.is_dir():
        return shipped
    checkout = Path(__file__).resolve().parents[2] / "scenarios"
    if checkout.is_dir():
        return checkout
    raise EnvironmentProblem(
        "the scenario library is missing from this installation; reinstall spot-harness"
    )


def is_library_name(argument: str) -> bool:
    return argument.startswith(PREFIX)


def resolve(argument: str) -> Path:
    """The file or folder a ``library:...`` name stands for; a typo gets the closest name."""
    root = library_root()
    name = argument.removeprefix(PREFIX).strip("/")
    if not name:
        return root
    candidates = [root / name, *(root / f"{name}{suffix}" for suffix in SUFFIXES)]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    hint = did_you_mean(name, [*names(root), *folders(root)])
    raise InputError(
        f"no scenario `{name}` in the library{hint} (list them with `harness scenarios list`)"
    )


def names(root: Path | None = None) -> list[str]:
    """Every scenario file of the library as ``folder/name`` (no suffix), sorted."""
    base = root or library_root()
    files = (p for p in base.rglob("*") if p.suffix in SUFFIXES and p.is_file())
    return sorted(str(p.relative_to(base).with_suffix("")) for p in files)


def folders(root: Path | None = None) -> list[str]:
    base = root or library_root()
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_dir())


def display_name(file: Path) -> str | None:
    """``library:aws/terminate_mid_job`` for a file :func:`resolve` found (an absolute path in
    the library), else None: a path the user typed is shown as typed."""
    if not file.is_absolute():
        return None
    try:
        relative = file.resolve().relative_to(library_root().resolve())
    except (ValueError, EnvironmentProblem):
        return None
    return PREFIX + str(relative.with_suffix(""))
