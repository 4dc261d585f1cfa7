"""Turn a scenario's ``target:`` into an in-process target callable."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any, cast

from harness.errors import InputError
from harness.scenario.model import TargetSpec
from harness.target import Target


class TargetError(InputError):
    """The target cannot be used in simulation; the message says why and what to do."""


def resolve_target(spec: TargetSpec) -> Target:
    """``reference`` -> the bundled runtime; ``{python: "pkg.mod:attr"}`` -> that target."""
    if spec.reference:
        from harness.runtime import reference_target

        return reference_target
    if spec.python is not None:
        return load_python_target(spec.python)
    raise TargetError(
        "command targets run in the process tier (`harness run` and `pytest` do that for "
        "them), not in simulation; use `reference` or "
        '{python: "package.module:target"} here'
    )


def load_python_target(path: str) -> Target:
    """``pkg.mod:attr`` naming ``async def target(ctx)`` or a zero-argument factory of one."""
    module_name, _, attr = path.partition(":")
    try:
        found: Any = _import(module_name)
    except ImportError as error:
        raise TargetError(
            f"cannot import {module_name!r} for target {path!r}: {error} "
            "(the module must be importable from the current directory or installed)"
        ) from None
    for part in attr.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise TargetError(f"{module_name!r} has no {attr!r} (target {path!r})") from None
    if inspect.iscoroutinefunction(found):
        return cast(Target, found)
    if callable(found):
        try:
            made = found()
        except (Exception, SystemExit, KeyboardInterrupt) as error:
            raise TargetError(
                f"target {path!r} is not an `async def target(ctx)`, so it was called as a "
                f"zero-argument factory, which raised {type(error).__name__}"
                + (f": {error}" if str(error) else "")
            ) from None
        if callable(made):
            return cast(Target, made)
    raise TargetError(
        f"target {path!r} must be an `async def target(ctx)` or a zero-argument factory "
        "returning one"
    )


def _import(module_name: str) -> Any:
    """Import a user's module; like ``python -m``, the current directory is searched too."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        here = os.getcwd()
        if error.name != module_name.split(".")[0] or here in sys.path:
            raise
        sys.path.insert(0, here)
        return importlib.import_module(module_name)


def target_label(target: Target) -> str:
    """A stable name for caching goldens per target."""
    module = getattr(target, "__module__", "?")
    name = getattr(target, "__qualname__", type(target).__qualname__)
    return f"{module}:{name}"
