"""Every change the simulator makes to moto's internals, in one place, applied only while a
simulated run is active and undone after it.

They make a simulated S3 call cheap and deterministic without changing what S3 does:

- moto's clock (``moto.s3.models.utcnow``) is the run's virtual calendar, so versions written
  within one wall millisecond keep their order and timestamps are reproducible;
- S3's URL table (``S3Backend.urls``, rebuilt by moto on every request) is built once;
- S3's URL patterns are tried before those of moto's other 180 services;
- the request id (``moto.core.responses.gen_amzn_requestid_long``) is drawn in one call from
  moto's seeded random instead of 52;
- header iteration (``EnvironHeaders.__iter__``) skips mapping names back to a preserved
  spelling when the request preserved none;
- botocore's before-send stubber is switched on directly instead of through ``mock_aws()``,
  which re-registers a thousand ``requests`` interceptors each time.

They reach into moto's private modules, so ``pyproject.toml`` bounds moto's version, and
:func:`problems` (run once before the first patched run, and by the canary test
``tests/sim/test_moto_patches.py``) names what no longer looks as expected, so a moto upgrade
that moves any of it fails loudly instead of silently changing the simulation.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import moto.backend_index as moto_backend_index
import moto.core.request as moto_request
import moto.core.responses as moto_responses
import moto.s3.models as moto_s3
from moto.core.models import botocore_stubber
from moto.core.utils import utcnow as _wall_utcnow
from moto.moto_api._internal import mock_random

#: The moto releases these patches were written and checked against (pyproject's bound too).
SUPPORTED = ((5, 0), (5, 3))

_virtual_now: Callable[[], datetime] | None = None

_ORIGINAL_URLS = moto_s3.S3Backend.urls
_url_table: dict[str, Any] = {}
_ORIGINAL_PATTERNS = moto_backend_index.backend_url_patterns
#: moto's response module calls the request-id generator it imported by name.
_REQUEST_ID_NAME = "gen_amzn_requestid_long"
_ORIGINAL_REQUEST_ID = getattr(moto_responses, _REQUEST_ID_NAME, None)
_ORIGINAL_HEADER_ITER = moto_request.EnvironHeaders.__iter__
_checked: list[str] | None = None


class MotoChanged(RuntimeError):
    """The installed moto no longer has what the simulator patches."""


def moto_now() -> datetime:
    """moto's clock: the active run's virtual calendar time (naive UTC, as moto expects)."""
    if _virtual_now is not None:
        return _virtual_now().replace(tzinfo=None)
    return _wall_utcnow()


def problems() -> list[str]:
    """What of moto's internals the patches rely on is missing or changed; empty when fine."""
    found: list[str] = []
    version = importlib.metadata.version("moto")
    major_minor = tuple(int(part) for part in version.split(".")[:2])
    if not SUPPORTED[0] <= major_minor < SUPPORTED[1]:
        found.append(f"moto {version} is outside the supported range {SUPPORTED}")
    if not isinstance(_ORIGINAL_URLS, property):
        found.append("moto.s3.models.S3Backend.urls is no longer a property")
    if not callable(getattr(moto_s3, "utcnow", None)):
        found.append("moto.s3.models.utcnow is gone")
    patterns = _ORIGINAL_PATTERNS
    if not (isinstance(patterns, list) and patterns and all(len(p) == 2 for p in patterns)):
        found.append("moto.backend_index.backend_url_patterns is no longer a list of pairs")
    elif not any(name == "s3" for name, _ in patterns):
        found.append("moto.backend_index.backend_url_patterns has no s3 entry")
    if not callable(_ORIGINAL_REQUEST_ID):
        found.append(f"moto.core.responses.{_REQUEST_ID_NAME} is gone")
    if not hasattr(moto_request, "PRESERVED_HEADER_NAMES_ENVIRON_KEY"):
        found.append("moto.core.request.PRESERVED_HEADER_NAMES_ENVIRON_KEY is gone")
    if not isinstance(getattr(botocore_stubber, "enabled", None), bool):
        found.append("moto.core.models.botocore_stubber.enabled is gone")
    if not callable(getattr(mock_random, "getrandbits", None)):
        found.append("moto's mock_random.getrandbits is gone")
    return found


def _require_known_moto() -> None:
    global _checked
    if _checked is None:
        _checked = problems()
    if _checked:
        raise MotoChanged(
            "the simulator's patches to moto do not fit the installed moto: "
            + "; ".join(_checked)
            + " (install a supported moto: pip install 'spot-harness[sim]')"
        )


@contextlib.contextmanager
def patched(now: Callable[[], datetime], seed: int) -> Iterator[None]:
    """moto intercepting botocore, with the patches above, for one run; all undone on exit
    (a ``mock_aws`` the caller has active stays active)."""
    global _virtual_now
    _require_known_moto()
    was_enabled = botocore_stubber.enabled
    previous_now, _virtual_now = _virtual_now, now
    botocore_stubber.enabled = True
    moto_s3.utcnow = moto_now  # type: ignore[attr-defined]
    moto_s3.S3Backend.urls = property(_cached_urls)  # type: ignore[method-assign,assignment]
    moto_backend_index.backend_url_patterns = _s3_patterns_first()
    setattr(moto_responses, _REQUEST_ID_NAME, _request_id)
    moto_request.EnvironHeaders.__iter__ = _header_iter  # type: ignore[method-assign]
    mock_random.seed(seed)  # version and upload ids, deterministic per run
    try:
        yield
    finally:
        _virtual_now = previous_now
        moto_s3.S3Backend.urls = _ORIGINAL_URLS  # type: ignore[method-assign]
        moto_backend_index.backend_url_patterns = _ORIGINAL_PATTERNS
        setattr(moto_responses, _REQUEST_ID_NAME, _ORIGINAL_REQUEST_ID)
        moto_request.EnvironHeaders.__iter__ = _ORIGINAL_HEADER_ITER  # type: ignore[method-assign]
        botocore_stubber.enabled = was_enabled


def _cached_urls(backend: Any) -> Any:
    """moto reloads ``moto.s3.urls`` on every request in case the environment changed; nothing
    changes it during a run, so this table is built once (a third of a simulated call's cost)."""
    if not _url_table:
        _url_table.update(_ORIGINAL_URLS.fget(backend))  # type: ignore[attr-defined]
    return _url_table


def _s3_patterns_first() -> list[Any]:
    """moto's URL patterns with S3's first. No other service's pattern matches an S3 URL (else
    moto could not serve S3), so S3 requests route as before, 140 regex matches sooner."""
    patterns = list(_ORIGINAL_PATTERNS)
    return [p for p in patterns if p[0] == "s3"] + [p for p in patterns if p[0] != "s3"]


def _request_id(headers: dict[str, Any] | None = None) -> str:
    """moto's ``x-amzn-requestid`` (52 characters from its seeded random), drawn in one call."""
    request_id = f"{mock_random.getrandbits(208):052X}"
    if isinstance(headers, dict):
        headers["x-amzn-requestid"] = request_id
    return request_id


def _header_iter(self: moto_request.EnvironHeaders) -> Iterator[tuple[str, str]]:
    """moto's header iteration, skipping the mapping back to preserved spellings when the
    request preserved none (all but ``x-amz-meta-`` names with ``_``)."""
    if self.environ.get(moto_request.PRESERVED_HEADER_NAMES_ENVIRON_KEY):
        yield from _ORIGINAL_HEADER_ITER(self)
    else:
        yield from super(moto_request.EnvironHeaders, self).__iter__()
