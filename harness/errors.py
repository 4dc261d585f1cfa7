"""The errors a user can act on: one hierarchy for the whole package.

Library code (the injector, the runtime, the scenario loader, the checks) raises these and knows
nothing of exit codes or of click; only the CLI (:mod:`harness.cli`) maps them to exit codes:
:class:`InputError` is 2 (usage or input), :class:`EnvironmentProblem` is 3 (a server, the
cloud, permissions). Every message says what is wrong and how to fix it, and is printed without a
traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HarnessError(Exception):
    """An error the user can act on; the message is shown as is, without a traceback."""


class InputError(HarnessError, ValueError):
    """Bad input: a file, a flag, a parameter. The message names it and how to fix it."""


class EnvironmentProblem(HarnessError):
    """Something around the input failed: a server, the cloud, credentials, permissions."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean `x`?"`` for the closest of ``choices``, or an empty string."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean `{match[0]}`?" if match else ""
