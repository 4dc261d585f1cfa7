"""Every change the simulator makes to moto's internals (and to botocore's, for its own
client), in one place, applied only while a simulated run is active and undone after it.

They make a simulated S3 call cheap and deterministic without changing what S3 does:

- moto's clock (``moto.s3.models.utcnow``) is the run's virtual calendar, so versions written
  within one wall millisecond keep their order and timestamps are reproducible;
- S3's URL table (``S3Backend.urls``, rebuilt by moto on every request) is built once;
- S3's URL patterns are tried before those of moto's other 180 services;
- an object's content stays in memory up to 32 MiB (``get_s3_default_key_buffer_size``; moto
  spools anything over 5 MiB to a temporary file on disk and reads the environment for the
  threshold on every object), above the largest state a simulated job materializes in bytes;
- the request id (``moto.core.responses.gen_amzn_requestid_long``) is drawn in one call from
  moto's seeded random instead of 52;
- header iteration (``EnvironHeaders.__iter__``) skips mapping names back to a preserved
  spelling when the request preserved none;
- botocore's before-send stubber is switched on directly instead of through ``mock_aws()``,
  which re-registers a thousand ``requests`` interceptors each time;
- moto's table of S3's error shapes (``moto.core.errors.ErrorLookupFactory``, whose cache moto
  throws away by making a new factory for every error it answers) is built once per process
  instead of once per error answered through moto (0.1-0.2 ms of such a call's 1.1-1.3 ms);
- botocore's endpoint for the simulation's client is resolved once per operation and bucket
  (:class:`_EndpointMemo`) instead of once per call;
- the commonest calls (plain PutObject, multipart create / part / completion / listing,
  DeleteObject, GetObject of a whole object) are answered in process from moto's backend,
  without the HTTP round trip (see the section below);
- for the simulation's client, while that shortcut is on, three pieces of botocore's own work
  per call take a direct route to the same result: parameters of the plainest kinds that pass
  botocore's rules get its empty validation report (:class:`_PlainValidation`), a completion's
  XML body is written as the text ElementTree writes (:class:`_PlainXmlBody`), and an answer's
  headers are parsed from a plan made once per output shape (:func:`_parse`).

They reach into moto's private modules, so ``pyproject.toml`` bounds moto's version, and
:func:`problems` (run once before the first patched run, and by the canary test
``tests/sim/test_moto_patches.py``) names what no longer looks as expected, so a moto upgrade
that moves any of it fails loudly instead of silently changing the simulation.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import importlib.metadata
import io
import logging
import os
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

import botocore.serialize as botocore_serialize
import moto.backend_index as moto_backend_index
import moto.core.errors as moto_errors
import moto.core.request as moto_request
import moto.core.responses as moto_responses
import moto.core.serialize as moto_serialize
import moto.s3.exceptions as moto_s3_exceptions
import moto.s3.models as moto_s3
import moto.s3.responses as moto_s3_responses
import moto.s3.utils as moto_s3_utils
from botocore.awsrequest import AWSResponse
from botocore.endpoint import Endpoint, convert_to_response_dict
from botocore.endpoint_provider import S3_UNREFERENCED_PARAMS
from botocore.hooks import HierarchicalEmitter
from botocore.httpchecksum import apply_request_checksum, handle_checksum_body
from botocore.model import StructureShape
from botocore.parsers import ResponseParserFactory, RestXMLParser
from botocore.regions import EndpointRulesetResolver
from botocore.serialize import RestXMLSerializer
from botocore.validate import ValidationErrors
from moto.core.botocore_stubber import MockRawResponse
from moto.core.models import DEFAULT_ACCOUNT_ID as ACCOUNT_ID
from moto.core.models import botocore_stubber
from moto.core.utils import utcnow as _wall_utcnow
from moto.moto_api._internal import mock_random
from werkzeug.http import http_date

from harness.checks.snapshot import digests

#: The moto releases these patches were written and checked against (pyproject's bound too).
SUPPORTED = ((5, 0), (5, 3))

_virtual_now: Callable[[], datetime] | None = None

_ORIGINAL_URLS = moto_s3.S3Backend.urls
_url_table: dict[str, Any] = {}
_ORIGINAL_PATTERNS = moto_backend_index.backend_url_patterns
#: moto's response module calls the request-id generator it imported by name.
_REQUEST_ID_NAME = "gen_amzn_requestid_long"
_ORIGINAL_REQUEST_ID = getattr(moto_responses, _REQUEST_ID_NAME, None)
#: The clock moto's response module writes each answer's ``date`` header from.
_ORIGINAL_RESPONSE_NOW: Any = getattr(moto_responses, "utcnow", None)
_ORIGINAL_HEADER_ITER = moto_request.EnvironHeaders.__iter__
_ORIGINAL_KEY_BUFFER = getattr(moto_s3, "get_s3_default_key_buffer_size", None)
#: moto's error-shape table factory (moto 5.1 and later; earlier releases have none to cache).
_ORIGINAL_ERROR_LOOKUP: Any = getattr(moto_errors, "ErrorLookupFactory", None)
#: The checksum moto computes of each part when it completes a multipart upload.
_ORIGINAL_CHECKSUM: Any = getattr(moto_s3, "compute_checksum", None)
#: Objects up to this size stay in memory in a simulated run (moto's own threshold if larger).
KEY_BUFFER_BYTES = 32 * 1024 * 1024
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
    if not callable(_ORIGINAL_RESPONSE_NOW):
        found.append("moto.core.responses.utcnow is gone")
    if not callable(_ORIGINAL_CHECKSUM):
        found.append("moto.s3.models.compute_checksum is gone")
    patterns = _ORIGINAL_PATTERNS
    if not (isinstance(patterns, list) and patterns and all(len(p) == 2 for p in patterns)):
        found.append("moto.backend_index.backend_url_patterns is no longer a list of pairs")
    elif not any(name == "s3" for name, _ in patterns):
        found.append("moto.backend_index.backend_url_patterns has no s3 entry")
    if not callable(_ORIGINAL_KEY_BUFFER):
        found.append("moto.s3.models.get_s3_default_key_buffer_size is gone")
    if not callable(_ORIGINAL_REQUEST_ID):
        found.append(f"moto.core.responses.{_REQUEST_ID_NAME} is gone")
    if not hasattr(moto_request, "PRESERVED_HEADER_NAMES_ENVIRON_KEY"):
        found.append("moto.core.request.PRESERVED_HEADER_NAMES_ENVIRON_KEY is gone")
    if not isinstance(getattr(botocore_stubber, "enabled", None), bool):
        found.append("moto.core.models.botocore_stubber.enabled is gone")
    if not callable(getattr(mock_random, "getrandbits", None)):
        found.append("moto's mock_random.getrandbits is gone")
    if _ORIGINAL_ERROR_LOOKUP is not None and not callable(
        getattr(_ORIGINAL_ERROR_LOOKUP, "for_service", None)
    ):
        found.append("moto.core.errors.ErrorLookupFactory.for_service is gone")
    found.extend(_shortcut_problems())
    return found


def _shortcut_problems() -> list[str]:
    """What the PutObject shortcut (below) relies on, in moto and in botocore."""
    found: list[str] = []
    backend_calls = (
        "put_object",
        "get_object",
        "put_object_tagging",
        "upload_part",
        "delete_object",
    )
    multipart_calls = (
        "create_multipart_upload",
        "complete_multipart_upload",
        "list_multipart_uploads",
    )
    for name in (*backend_calls, *multipart_calls):
        if not callable(getattr(moto_s3.S3Backend, name, None)):
            found.append(f"moto.s3.models.S3Backend.{name} is gone")
    for name in ("MissingKey", "PreconditionFailed"):
        if not isinstance(getattr(moto_s3_exceptions, name, None), type):
            found.append(f"moto.s3.exceptions.{name} is gone")
    serializer = getattr(moto_serialize, "S3Serializer", None)
    if not isinstance(getattr(serializer, "DEFAULT_HOST_ID", None), str):
        found.append("moto.core.serialize.S3Serializer.DEFAULT_HOST_ID is gone")
    if not callable(getattr(moto_s3_responses.S3Response, "_complete_multipart_body", None)):
        found.append("moto.s3.responses.S3Response._complete_multipart_body is gone")
    if not isinstance(getattr(moto_s3, "S3_UPLOAD_PART_MIN_SIZE", None), int):
        found.append("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE is gone")
    if not isinstance(getattr(moto_s3.FakeKey, "response_dict", None), property):
        found.append("moto.s3.models.FakeKey.response_dict is no longer a property")
    if not callable(getattr(moto_s3_utils, "metadata_from_headers", None)):
        found.append("moto.s3.utils.metadata_from_headers is gone")
    bucket_init = moto_s3.FakeBucket.__init__.__code__.co_names
    for name in (
        *("object_lock_enabled", "policy", "logging", "cors", "encryption"),
        "notification_configuration",
    ):
        if name not in bucket_init:
            found.append(f"moto.s3.models.FakeBucket no longer sets {name}")
    for name in ("_parse_shape", "_parse_payload", "_add_checksum_response_metadata"):
        if not callable(getattr(RestXMLParser, name, None)):
            found.append(f"botocore.parsers.RestXMLParser.{name} is gone")
    if not isinstance(getattr(ResponseParserFactory(), "_defaults", None), dict):
        found.append("botocore.parsers.ResponseParserFactory._defaults is gone")
    if not callable(getattr(RestXMLSerializer, "_serialize_body_params", None)):
        found.append("botocore.serialize.RestXMLSerializer._serialize_body_params is gone")
    decorator = botocore_serialize.create_serializer("rest-xml", include_validation=True)
    if not callable(getattr(getattr(decorator, "_param_validator", None), "validate", None)):
        found.append("botocore.validate.ParamValidationDecorator._param_validator is gone")
    if not callable(getattr(ValidationErrors(), "has_errors", None)):
        found.append("botocore.validate.ValidationErrors.has_errors is gone")
    for name in ("is_document_type", "is_tagged_union"):
        if not hasattr(StructureShape, name):
            found.append(f"botocore.model.StructureShape.{name} is gone")
    for name in ("_update_retries_context", "_needs_retry", "_add_modeled_error_fields"):
        if not callable(getattr(Endpoint, name, None)):
            found.append(f"botocore.endpoint.Endpoint.{name} is gone")
    if not callable(getattr(EndpointRulesetResolver, "construct_endpoint", None)):
        found.append("botocore.regions.EndpointRulesetResolver.construct_endpoint is gone")
    if not isinstance(getattr(HierarchicalEmitter(), "_lookup_cache", None), dict):
        found.append("botocore.hooks.HierarchicalEmitter._lookup_cache is gone")
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
    moto_responses.utcnow = moto_now  # type: ignore[attr-defined]  # answers are dated so too
    moto_s3.S3Backend.urls = property(_cached_urls)  # type: ignore[method-assign,assignment]
    moto_backend_index.backend_url_patterns = _s3_patterns_first()
    key_buffer = max(KEY_BUFFER_BYTES, int(cast(Callable[[], int], _ORIGINAL_KEY_BUFFER)()))
    moto_s3.get_s3_default_key_buffer_size = lambda: key_buffer  # type: ignore[attr-defined]
    setattr(moto_responses, _REQUEST_ID_NAME, _request_id)
    moto_request.EnvironHeaders.__iter__ = _header_iter  # type: ignore[method-assign]
    if _ORIGINAL_ERROR_LOOKUP is not None:
        moto_errors.ErrorLookupFactory = _shared_error_lookup  # type: ignore[misc,assignment]
    moto_s3.compute_checksum = _remembered_checksum  # type: ignore[attr-defined]
    mock_random.seed(seed)  # version and upload ids, deterministic per run
    try:
        yield
    finally:
        _virtual_now = previous_now
        moto_s3.S3Backend.urls = _ORIGINAL_URLS  # type: ignore[method-assign]
        moto_responses.utcnow = _ORIGINAL_RESPONSE_NOW  # type: ignore[attr-defined]
        moto_backend_index.backend_url_patterns = _ORIGINAL_PATTERNS
        moto_s3.get_s3_default_key_buffer_size = _ORIGINAL_KEY_BUFFER  # type: ignore[attr-defined,assignment]
        setattr(moto_responses, _REQUEST_ID_NAME, _ORIGINAL_REQUEST_ID)
        moto_request.EnvironHeaders.__iter__ = _ORIGINAL_HEADER_ITER  # type: ignore[method-assign]
        moto_s3.compute_checksum = _ORIGINAL_CHECKSUM  # type: ignore[attr-defined]
        if _ORIGINAL_ERROR_LOOKUP is not None:
            moto_errors.ErrorLookupFactory = _ORIGINAL_ERROR_LOOKUP  # type: ignore[misc]
        botocore_stubber.enabled = was_enabled


def _cached_urls(backend: Any) -> Any:
    """moto reloads ``moto.s3.urls`` on every request in case the environment changed; nothing
    changes it during a run, so this table is built once (a third of a simulated call's cost)."""
    if not _url_table:
        _url_table.update(_ORIGINAL_URLS.fget(backend))  # type: ignore[attr-defined]
    return _url_table


_error_lookup: list[Any] = []


def _shared_error_lookup() -> Any:
    """moto's ``ErrorLookupFactory()``, one instance for every call: its table of a service's
    error shapes is then built once (moto builds a new factory, and so the whole table, for
    every error it serializes). The table depends on the service model only."""
    if not _error_lookup:
        _error_lookup.append(_ORIGINAL_ERROR_LOOKUP())
    return _error_lookup[0]


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


def _remembered_checksum(body: bytes, algorithm: str, encode_base64: bool = True) -> bytes:
    """moto's ``compute_checksum``, but a SHA-256 is looked up in the harness's digests of
    contents seen lately while the shortcut is on: a checkpoint's parts, checksummed again when
    their upload completes, were remembered at their upload (the same digest, a fraction of
    the cost). On the full stack, and for every other algorithm, moto computes it."""
    if algorithm != "SHA256" or not shortcut_active():
        return cast(bytes, _ORIGINAL_CHECKSUM(body, algorithm, encode_base64=encode_base64))
    digest = bytes.fromhex(digests.digest(body, "sha256"))
    return base64.b64encode(digest) if encode_base64 else digest


def _header_iter(self: moto_request.EnvironHeaders) -> Iterator[tuple[str, str]]:
    """moto's header iteration, skipping the mapping back to preserved spellings when the
    request preserved none (all but ``x-amz-meta-`` names with ``_``)."""
    if self.environ.get(moto_request.PRESERVED_HEADER_NAMES_ENVIRON_KEY):
        yield from _ORIGINAL_HEADER_ITER(self)
    else:
        yield from super(moto_request.EnvironHeaders, self).__iter__()


# -- The commonest S3 calls without the HTTP round trip --------------------------------------------
#
# A simulated S3 call costs about a millisecond, nine tenths of it in building, signing and parsing
# HTTP on botocore's side and in werkzeug and moto's response layer on the other, not in what S3
# does. The commonest calls of a run (a plain PutObject: outputs and manifests; the create, parts
# and completion of a checkpoint's multipart upload; the delete of a rotated checkpoint; the read of
# an object and the listing of unfinished uploads at recovery) are answered from botocore's
# ``before-call`` event instead: the shortcut runs moto's own backend calls in moto's order (so the
# same version ids and request ids are drawn from the seeded random), makes the response headers and
# body moto would send, and parses them with botocore's own parser. Two refusals are answered too,
# from moto's own exceptions as moto's serializer writes them: a PutObject whose If-Match or
# If-None-Match fails, and a GetObject of a missing key. Whatever else it does not recognise exactly
# (a header it does not know, a streamed body, an unknown upload, a part list moto would refuse, a
# missing version) goes through moto as before, so every other error is moto's own answer. The
# harness's observation (``before-call`` / ``after-call`` handlers of harness.sim.observe) runs
# either way. ``tests/sim/test_s3_shortcut.py`` compares both paths answer for answer and the whole
# scenario library event for event; ``full_stack()`` (or HARNESS_SIM_FULL_STACK=1) turns the
# shortcut off.

FULL_STACK_ENV = "HARNESS_SIM_FULL_STACK"
#: A shortcut's answer: the response headers, body and status moto would send (an error's body
#: is made from the request id, drawn last).
Answer = tuple[dict[str, Any], bytes | Callable[[str], bytes], int]
#: What moto sends: the response headers, body and status.
Sent = tuple[dict[str, Any], bytes, int]
_shortcut_off = 0

#: Request headers a plain PutObject or UploadPart may carry and still be answered by the
#: shortcut (lower case); ``x-amz-meta-*`` and ``x-amz-checksum-*`` are allowed besides.
_PLAIN_PUT_HEADERS = frozenset(
    {
        "content-length",
        "expect",
        "if-match",
        "if-none-match",
        "user-agent",
        "x-amz-sdk-checksum-algorithm",
    }
)
_SIMPLE_KEY = re.compile(r"[A-Za-z0-9/._\-]+\Z")
_SIMPLE_META = re.compile(r"x-amz-meta-[a-z0-9\-.]+\Z")


@contextlib.contextmanager
def full_stack() -> Iterator[None]:
    """Every S3 call of the runs inside goes through moto's HTTP layer (no shortcut)."""
    global _shortcut_off
    _shortcut_off += 1
    try:
        yield
    finally:
        _shortcut_off -= 1


def shortcut_active(*, during_run: bool = True) -> bool:
    """Whether plain PutObject calls are answered in process (``during_run``: and a simulated
    run is active now; ``False`` asks whether the next run's would be)."""
    return (
        (_virtual_now is not None or not during_run)
        and not _shortcut_off
        and os.environ.get(FULL_STACK_ENV, "") in ("", "0")
    )


def register_shortcut(client: Any) -> None:
    """Answer plain PutObject, UploadPart, CreateMultipartUpload, CompleteMultipartUpload,
    ListMultipartUploads, DeleteObject and GetObject calls of ``client`` (the simulation's
    shared client) in process.

    Register after the harness's observer, whose ``before-call`` handler (modelled time, faults,
    crash points) must run first. Both are registered on ``before-call.s3``: botocore calls the
    handlers of a more specific name (``before-call.s3.PutObject``) before those of a less
    specific one, so a shortcut registered there would answer before the observer had run."""
    client.meta.events.register(
        "before-call.s3",
        functools.partial(_shortcut, client),
        unique_id="spot-harness-s3-shortcut",
    )
    resolver = client._ruleset_resolver
    if not isinstance(resolver.construct_endpoint, _EndpointMemo):
        resolver.construct_endpoint = _EndpointMemo(resolver.construct_endpoint, client)
    validator = getattr(client._serializer, "_param_validator", None)  # None: validation off
    if validator is not None and not isinstance(validator.validate, _PlainValidation):
        validator.validate = _PlainValidation(validator.validate)
    serializer = getattr(client._serializer, "_serializer", client._serializer)  # behind validation
    writes_xml: Any = serializer if isinstance(serializer, RestXMLSerializer) else None
    if writes_xml is not None and not isinstance(writes_xml._serialize_body_params, _PlainXmlBody):
        writes_xml._serialize_body_params = _PlainXmlBody(writes_xml._serialize_body_params)


class _PlainValidation:
    """botocore's check of a call's parameters (``ParamValidator.validate``) for the
    simulation's client: while the shortcut is active, parameters of the plainest kinds
    (strings, integers, booleans, bytes or file objects, and dicts, lists and structures of
    them) that pass botocore's rules (:func:`_surely_valid`) get botocore's empty report
    without its walk through validator methods; anything else (and every error, with its
    message) is botocore's own check."""

    def __init__(self, validate: Callable[[Any, Any], Any]) -> None:
        self._validate = validate

    def __call__(self, params: Any, shape: Any) -> Any:
        if shortcut_active() and _surely_valid(params, shape):
            return ValidationErrors()
        return self._validate(params, shape)


def _surely_valid(value: Any, shape: Any) -> bool:
    """Whether botocore's ``ParamValidator`` reports nothing for ``value`` of ``shape``: the
    same type checks (``isinstance``, so a bool is an integer, as there), required members,
    no unknown member, and the ``min`` length or value; False for every kind of shape it does
    not check here (documents, unions, JSON headers, numbers with a fraction, timestamps)."""
    kind = shape.type_name
    if kind == "string":
        return (
            isinstance(value, str)
            and not shape.serialization.get("jsonvalue")
            and _at_least_min(len(value), shape)
        )
    if kind in ("integer", "long"):
        return isinstance(value, int) and _at_least_min(value, shape)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "blob":
        return isinstance(value, bytes | bytearray | str) or hasattr(value, "read")
    if kind == "structure":
        if not isinstance(value, dict) or shape.is_document_type or shape.is_tagged_union:
            return False
        members = shape.members
        if any(required not in value for required in shape.metadata.get("required", ())):
            return False
        return all(
            key in members and _surely_valid(item, members[key]) for key, item in value.items()
        )
    if kind == "map":
        return isinstance(value, dict) and all(
            _surely_valid(key, shape.key) and _surely_valid(item, shape.value)
            for key, item in value.items()
        )
    if kind == "list":
        return (
            isinstance(value, list | tuple)
            and _at_least_min(len(value), shape)
            and all(_surely_valid(item, shape.member) for item in value)
        )
    return False


def _at_least_min(value: int, shape: Any) -> bool:
    """botocore's ``range_check``: the shape's ``min``, else 1 for a member bound to the host."""
    if "min" in shape.metadata:
        return bool(value >= shape.metadata["min"])
    return not (shape.serialization.get("hostLabel") and value < 1)


class _PlainXmlBody:
    """botocore's XML request body (``RestXMLSerializer._serialize_body_params``: an
    ElementTree built node by node, then written out) for the simulation's client, written as
    text directly while the shortcut is active, for bodies of structures, flattened lists,
    strings and integers (a completion's part list: a fifth of that call). The same bytes as
    ElementTree writes them (``tests/sim/test_s3_shortcut.py`` compares both); any other body
    is botocore's to write."""

    def __init__(self, serialize: Callable[[Any, Any], bytes]) -> None:
        self._serialize = serialize

    def __call__(self, params: Any, shape: Any) -> bytes:
        root = shape.serialization.get("name")
        if shortcut_active() and root is not None:
            text = _xml_element(shape, params, root)
            if text is not None:
                try:
                    return text.encode()
                except UnicodeEncodeError:  # a lone surrogate: ElementTree writes a reference
                    pass
        return self._serialize(params, shape)


def _xml_element(shape: Any, value: Any, name: str) -> str | None:
    """``value`` as ElementTree writes botocore's node ``name`` of ``shape``; None for what
    this does not write (the caller leaves it to botocore)."""
    namespace = shape.serialization.get("xmlNamespace")
    attributes = ""
    if isinstance(namespace, dict) and not namespace.get("prefix"):
        namespace = namespace.get("uri")
    if isinstance(namespace, str) and _PLAIN_ATTRIBUTE.match(namespace):
        attributes = f' xmlns="{namespace}"'
    elif namespace is not None:
        return None
    kind = shape.type_name
    if kind == "structure" and type(value) is dict:
        children = []
        for key, item in value.items():
            member = shape.members.get(key)
            if member is None or item is None or member.serialization.get("xmlAttribute"):
                return None  # botocore stops at a None member: its way, not copied here
            child = _xml_element(member, item, member.serialization.get("name", key))
            if child is None:
                return None
            children.append(child)
        content = "".join(children)
    elif kind == "list" and type(value) is list and shape.serialization.get("flattened"):
        if attributes:
            return None  # botocore puts a flattened list's namespace on the parent node
        items = [_xml_element(shape.member, item, name) for item in value]
        return None if any(item is None for item in items) else "".join(cast(list[str], items))
    elif kind == "string" and type(value) is str:
        content = escape(value)  # ElementTree escapes &, < and > in text, as saxutils does
    elif kind in ("integer", "long") and type(value) is int:
        content = str(value)
    else:
        return None
    if not content:
        return f"<{name}{attributes} />"  # ElementTree's short empty element
    return f"<{name}{attributes}>{content}</{name}>"


_PLAIN_ATTRIBUTE = re.compile(r"[A-Za-z0-9:/._\-]*\Z")


class _EndpointMemo:
    """botocore's endpoint resolution for the simulation's client (``construct_endpoint`` of its
    ruleset resolver), remembered per operation and bucket while the shortcut is active.

    botocore resolves the endpoint of every call from scratch: it emits
    ``before-endpoint-resolution.s3`` and walks the ruleset's twenty parameters (a tenth of a
    simulated call). For one client the answer depends only on the operation, the bucket and the
    handlers of that event (the provider ignores ``Key``, ``Prefix`` and ``CopySource``), so it is
    kept until a handler is registered on the client (botocore then drops its table of handlers,
    and this memo with it). Operations whose endpoint reads other parameters are resolved anew.
    (botocore's region redirector, a handler of that event, would change the answer only for a
    bucket S3 had redirected to another region, which the simulation's one-region moto never
    does.)"""

    def __init__(self, resolve: Callable[..., Any], client: Any) -> None:
        self._resolve = resolve
        events = client.meta.events
        self._emitter = getattr(events, "_emitter", events)  # behind botocore's EventAliaser
        self._handlers: Any = None
        self._known: dict[tuple[Any, ...], Any] = {}
        self._cacheable: dict[str, bool] = {}

    def __call__(self, operation_model: Any, call_args: Any, request_context: Any) -> Any:
        bucket = (call_args or {}).get("Bucket")
        if not (shortcut_active() and isinstance(bucket, str) and self._fixed(operation_model)):
            return self._resolve(operation_model, call_args, request_context)
        handlers = self._emitter._lookup_cache  # a new table whenever a handler is registered
        if handlers is not self._handlers:
            self._known.clear()
            self._handlers = handlers
        global_endpoint = bool((request_context or {}).get("use_global_endpoint"))
        key = (operation_model.name, bucket, global_endpoint)
        found = self._known.get(key)
        if found is None:
            found = self._known[key] = self._resolve(operation_model, call_args, request_context)
        return found

    def _fixed(self, operation_model: Any) -> bool:
        """Whether the operation's endpoint reads no call parameter but the bucket."""
        name = operation_model.name
        fixed = self._cacheable.get(name)
        if fixed is None:
            read = {param.name for param in operation_model.context_parameters}
            fixed = self._cacheable[name] = not operation_model.operation_context_parameters and (
                read - S3_UNREFERENCED_PARAMS <= {"Bucket"}
            )
        return fixed


def _shortcut(
    client: Any, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any
) -> tuple[Any, dict[str, Any]] | None:
    answer = _ANSWERS.get(model.name)
    if answer is None or not shortcut_active():
        return None
    target = _plain_request(params, context, bucket_level=model.name in _BUCKET_OPERATIONS)
    if target is None:
        return None
    backend = moto_s3.s3_backends[ACCOUNT_ID]["aws"]
    bucket = backend.buckets.get(target[0])
    if bucket is None or not _plain_bucket(bucket):
        return None
    answered = answer(backend, bucket, target, params)
    if answered is None:
        return None
    headers, body, status = answered
    request_id = _request_id(headers)  # after the backend's ids, as moto's response layer draws it
    if callable(body):
        body = body(request_id)
    return _parsed(client, model, params, context, (headers, body, status))


def _put_object(
    backend: Any, bucket: Any, target: tuple[str, str], params: dict[str, Any]
) -> Answer | None:
    """moto's ``S3Response.put_object``, step by step, for a request with none of the options;
    the response headers, or None to leave the request to moto."""
    bucket_name, key_name = target
    if params["method"] != "PUT" or _query(params):
        return None
    headers = {name.lower(): value for name, value in params["headers"].items()}
    existing = backend.get_object(bucket_name, key_name)
    if_match = headers.get("if-match")
    failed: Exception | None = None
    if if_match and existing is None:
        failed = moto_s3_exceptions.MissingKey()
    elif if_match and if_match.replace('"', "") != existing.etag.replace('"', ""):
        failed = moto_s3_exceptions.PreconditionFailed("If-Match")
    elif headers.get("if-none-match") == "*" and existing is not None:
        failed = moto_s3_exceptions.PreconditionFailed("If-None-Match")
    moto_headers, response_headers, algorithm, checksum = _checksummed(params)
    if failed is not None:
        return _error(failed)
    body = _body(params) or b""
    new_key = backend.put_object(
        bucket_name,
        key_name,
        body,
        storage="STANDARD",
        etag=digests.digest(body, "md5"),  # moto's ETag, the MD5 of the body, remembered
        encryption=None,
        kms_key_id=None,
        bucket_key_enabled=None,
        lock_mode=None,
        lock_legal_status=None,
        lock_until=None,
        checksum_value=checksum,
    )
    new_key.set_metadata(moto_s3_utils.metadata_from_headers(moto_headers))
    new_key.set_acl(bucket.acl)
    new_key.website_redirect_location = None
    if algorithm:
        new_key.checksum_algorithm = algorithm
    backend.put_object_tagging(new_key, {})
    response_headers.update(new_key.response_dict)
    response_headers.pop("content-length", None)
    response_headers.pop("x-amz-sdk-checksum-algorithm", None)
    return response_headers, b"", 200


def _upload_part(
    backend: Any, bucket: Any, target: tuple[str, str], params: dict[str, Any]
) -> Answer | None:
    """moto's ``S3Response.upload_part`` for an upload that exists and a valid part number."""
    query = _query(params)
    if params["method"] != "PUT" or set(query) != {"partNumber", "uploadId"}:
        return None
    if any(name.lower().startswith(("if-", "x-amz-meta-")) for name in params["headers"]):
        return None
    upload_id, part_number = str(query["uploadId"]), int(query["partNumber"])
    if upload_id not in bucket.multiparts or not 1 <= part_number <= 10000:
        return None  # moto answers NoSuchUpload / InvalidArgument
    _, response_headers, _, _ = _checksummed(params)
    body = _body(params) or b""
    part = backend.upload_part(target[0], upload_id, part_number, body)
    part._etag = digests.digest(body, "md5")  # what moto would compute for its ETag, remembered
    response_headers.update(part.response_dict)
    response_headers["content-length"] = "0"
    return response_headers, b"", 200


def _delete_object(
    backend: Any, bucket: Any, target: tuple[str, str], params: dict[str, Any]
) -> Answer | None:
    """moto's ``S3Response.delete_object`` without a version id or a condition, in a versioned
    bucket: a delete marker (moto answers 204 with its version id)."""
    if params["method"] != "DELETE" or _query(params) or not bucket.is_versioned:
        return None
    if any(n.lower().startswith(("if-", "x-amz-")) for n in params["headers"]):
        return None
    _, meta = backend.delete_object(target[0], target[1], version_id=None, bypass=None)
    return {f"x-amz-{name}": value for name, value in meta.items()}, b"", 204


def _get_object(
    backend: Any, bucket: Any, target: tuple[str, str], params: dict[str, Any]
) -> Answer | None:
    """moto's ``S3Response.get_object`` for a whole object (its latest version or a given one)
    with no condition, range, part or header override: the object's headers and bytes. A
    missing key or version, and an archived object, are left to moto's errors."""
    query = _query(params)
    if params["method"] != "GET" or not set(query) <= {"versionId"} or _body(params):
        return None
    headers = {name.lower(): value for name, value in params["headers"].items()}
    if not set(headers) <= {"user-agent", "x-amz-checksum-mode"}:
        return None
    bucket_name, key_name = target
    backend.get_object(bucket_name, key_name)  # moto looks the key up twice (its access count)
    version_id = query.get("versionId")
    key = backend.get_object(bucket_name, key_name, version_id=version_id)
    if key is None and version_id is None:
        return _error(moto_s3_exceptions.MissingKey(key=key_name))
    if key is None or key.storage_class != "STANDARD":
        return None
    response_headers: dict[str, Any] = {}
    if key.version_id != "null":
        response_headers["x-amz-version-id"] = key.version_id
    response_headers.update(key.response_dict)
    if headers.get("x-amz-checksum-mode") == "ENABLED" and key.checksum_algorithm:
        checksum = key.checksum_value
        if key.checksum_type == "COMPOSITE":
            checksum = f"{key.checksum_value}-{key.checksum_parts}"
        response_headers[f"x-amz-checksum-{key.checksum_algorithm.lower()}"] = checksum
        if key.checksum_type:
            response_headers["x-amz-checksum-type"] = key.checksum_type
    response_headers.update(key.metadata)
    response_headers["Accept-Ranges"] = "bytes"
    body: bytes = key.value
    if body and "content-type" not in (name.lower() for name in response_headers):
        response_headers["content-type"] = "application/xml"  # moto's default for any body
    return response_headers, body, 200


_XML_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'
_XMLNS = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def _create_multipart_upload(
    backend: Any, bucket: Any, target: tuple[str, str], params: dict[str, Any]
) -> Answer | None:
    """moto's ``_key_response_post`` for ``?uploads`` with no storage class, ACL, tags or
    encryption: the upload, and the XML and headers moto's serializer makes of it."""
    if params["method"] != "POST" or set(_query(params)) != {"uploads"}:
        return None
    if _body(params) != b"" or any(n.lower().startswith("if-") for n in params["headers"]):
        return None
    bucket_name, key_name = target
    metadata = moto_s3_utils.metadata_from_headers(_as_moto_sees_them(params))
    upload = backend.create_multipart_upload(
        bucket_name, key_name, metadata, "STANDARD", {}, None, None, None
    )
    headers = {"Content-Type": "application/xml"}
    for name in ("x-amz-checksum-algorithm", "x-amz-checksum-type"):
        value = upload.metadata.get(name)
        if value is not None:
            headers[name] = value
    body = (
        f"{_XML_HEAD}<InitiateMultipartUploadResult{_XMLNS}><Bucket>{bucket_name}</Bucket>"
        f"<Key>{key_name}</Key><UploadId>{upload.id}</UploadId></InitiateMultipartUploadResult>"
    )
    return _serialized(headers), body.encode(), 200


def _complete_multipart_upload(
    backend: Any, bucket: Any, target: tuple[str, str], params: dict[str, Any]
) -> Answer | None:
    """moto's ``_key_response_post`` for ``?uploadId=`` when the upload completes: every part
    listed exists with its ETag, in order, none but the last under 5 MiB, and no object is in
    the way of ``If-None-Match``. Anything else (moto's errors included) is left to moto."""
    query = _query(params)
    if params["method"] != "POST" or set(query) != {"uploadId"}:
        return None
    bucket_name, key_name = target
    upload_id = str(query["uploadId"])
    upload = bucket.multiparts.get(upload_id)
    existing = backend.get_object(bucket_name, key_name)
    if upload is None or (existing is not None and existing.multipart is not None):
        return None  # unknown upload, or moto's idempotent repeat of a completion
    headers_in = {name.lower(): value for name, value in params["headers"].items()}
    if headers_in.get("if-none-match") == "*" and existing is not None:
        return None
    parts = _listed_parts(_body(params) or b"")
    if parts is None or not _completable(upload, parts):
        return None
    key = backend.complete_multipart_upload(bucket_name, upload_id, iter(parts))
    headers: dict[str, Any] = {"Content-Type": "application/xml"}
    if key.version_id:
        headers["x-amz-version-id"] = key.version_id
    if key.encryption:
        headers["x-amz-server-side-encryption"] = key.encryption
    if key.kms_key_id:
        headers["x-amz-server-side-encryption-aws-kms-key-id"] = key.kms_key_id
    body = (
        f"{_XML_HEAD}<CompleteMultipartUploadResult{_XMLNS}>"
        f"<Location>http://{bucket_name}.s3.amazonaws.com/{key.name}</Location>"
        f"<Bucket>{bucket_name}</Bucket><Key>{key.name}</Key>"
        f"<ETag>{key.etag}</ETag></CompleteMultipartUploadResult>"
    )
    return _serialized(headers), body.encode(), 200


#: Who moto says owns and initiated every multipart upload (moto's fixed values).
_UPLOAD_OWNER = (
    "<Owner><DisplayName>webfile</DisplayName>"
    "<ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID></Owner>"
)
_UPLOAD_USER = "user1-11111a31-17b5-4fb7-9df5-b111111f13de"


def _list_multipart_uploads(
    backend: Any, bucket: Any, target: tuple[str, str], params: dict[str, Any]
) -> Answer | None:
    """moto's ``S3Response.list_multipart_uploads`` for ``GET ?uploads`` with a prefix at most:
    the uploads in progress, in moto's order, with the fields and fixed values moto lists."""
    query = _query(params)
    if params["method"] != "GET" or target[1] or _body(params):
        return None
    if "uploads" not in query or not set(query) <= {"uploads", "prefix"}:
        return None
    bucket_name = target[0]
    prefix = str(query.get("prefix") or "")
    listed = []
    for upload in backend.list_multipart_uploads(bucket_name).values():
        if not upload.key_name.startswith(prefix):
            continue
        checksums = "".join(
            f"<{tag}>{escape(str(value))}</{tag}>"
            for tag, name in (
                ("ChecksumAlgorithm", "x-amz-checksum-algorithm"),
                ("ChecksumType", "x-amz-checksum-type"),
            )
            if (value := upload.metadata.get(name)) is not None
        )
        listed.append(
            f"<Upload><UploadId>{upload.id}</UploadId><Key>{escape(upload.key_name)}</Key>"
            "<Initiated>2010-11-10T20:48:33.000Z</Initiated><StorageClass>STANDARD</StorageClass>"
            f"{_UPLOAD_OWNER}<Initiator><ID>arn:aws:iam::{ACCOUNT_ID}:user/{_UPLOAD_USER}</ID>"
            f"<DisplayName>{_UPLOAD_USER}</DisplayName></Initiator>{checksums}</Upload>"
        )
    body = (
        f"{_XML_HEAD}<ListMultipartUploadsResult{_XMLNS}><Bucket>{bucket_name}</Bucket>"
        "<KeyMarker/><UploadIdMarker/><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>"
        f"{''.join(listed)}</ListMultipartUploadsResult>"
    )
    return _serialized({"Content-Type": "application/xml"}), body.encode(), 200


def _listed_parts(body: bytes) -> list[tuple[int, str]] | None:
    """``(part number, ETag)`` of a completion request, as moto reads them; None when moto would
    refuse the list (unreadable, not ascending)."""
    plain = _plain_parts(body)
    if plain is not None:
        return None if any(number <= 0 for number, _ in plain) else plain  # InvalidPartOrder
    try:
        parts = list(moto_s3_responses.S3Response._complete_multipart_body(None, body))  # type: ignore[arg-type]
    except Exception:  # moto answers it with its own error
        return None
    return parts


#: A completion body as botocore writes it: parts of plain elements, no entity, no comment.
_PLAIN_COMPLETION = re.compile(
    rb'(?:<\?xml version="1\.0" encoding="utf-8"\?>\n?)?'
    rb'<CompleteMultipartUpload(?: xmlns="http://s3\.amazonaws\.com/doc/2006-03-01/")?>'
    rb"(?:<Part>(?:<([A-Za-z0-9]+)>[\x20-\x25\x27-\x3b\x3d-\x5c\x5e-\x7e]*</\1>)*</Part>)*"
    rb"</CompleteMultipartUpload>\Z"
)  # printable ASCII text without "<", "&" or "]": what XML reads back unchanged
_PART = re.compile(rb"<Part>(.*?)</Part>")
_PART_FIELD = re.compile(rb"<(PartNumber|ETag)>([^<]*)</\1>")


def _plain_parts(body: bytes) -> list[tuple[int, str]] | None:
    """What moto's ``_complete_multipart_body`` reads from a body of plain parts, each with
    one part number (digits) and one ETag, without building a DOM; None for any other body
    (moto's own parser reads it then)."""
    if not _PLAIN_COMPLETION.match(body):
        return None
    parts = []
    for part in _PART.findall(body):
        fields: dict[bytes, list[bytes]] = {}
        for name, value in _PART_FIELD.findall(part):
            fields.setdefault(name, []).append(value)
        numbers, etags = fields.get(b"PartNumber", []), fields.get(b"ETag", [])
        if len(numbers) != 1 or len(etags) != 1 or not etags[0]:
            return None
        if not numbers[0].isdigit() or not numbers[0].isascii():
            return None
        parts.append((int(numbers[0]), etags[0].decode()))
    return parts


def _completable(upload: Any, parts: list[tuple[int, str]]) -> bool:
    """Whether moto's ``FakeMultipart.complete`` would accept ``parts`` (its checks, read only)."""
    if not parts:
        return False
    for index, (number, etag) in enumerate(parts):
        part = upload.parts.get(number)
        if part is None or part.etag.replace('"', "") != etag.replace('"', ""):
            return False
        if index < len(parts) - 1 and part.contentsize < _min_part_size():
            return False
    return True


def _min_part_size() -> int:
    """The smallest part but the last, as moto's models module sees it (moto's settings)."""
    return int(getattr(moto_s3, "S3_UPLOAD_PART_MIN_SIZE"))  # noqa: B009


def _serialized(headers: dict[str, Any], status: int = 200) -> dict[str, Any]:
    """The headers moto's response serializer adds to those of the result (its ``date`` from
    the run's calendar, as moto's is while patched)."""
    return {
        **headers,
        "server": "amazon.com",
        "date": _http_date(),
        "status": str(status),
    }


_http_dates: dict[datetime, str] = {}


def _http_date() -> str:
    """``http_date(utcnow())`` as moto's serializer writes it, formatted once per second of the
    run's calendar (the format shows whole seconds)."""
    second = moto_now().replace(microsecond=0)
    found = _http_dates.get(second)
    if found is None:
        _http_dates.clear()
        found = _http_dates[second] = http_date(second)
    return found


#: moto's S3 errors the shortcut answers: (HTTP status, the error's field moto serializes).
_ERRORS = {"NoSuchKey": (404, "Key"), "PreconditionFailed": (412, "Condition")}


def _error(error: Any) -> Answer:
    """moto's answer to one of its S3 exceptions (``_ERRORS``), as its S3 serializer writes it:
    the code, moto's message, the error's field when set, the request id and moto's host id."""
    status, field = _ERRORS[error.code]
    value = getattr(error, field.lower(), None)
    detail = f"<{field}>{escape(str(value))}</{field}>" if value else ""
    head = f"{_XML_HEAD}<Error><Code>{error.code}</Code><Message>{escape(error.message)}</Message>"
    host = moto_serialize.S3Serializer.DEFAULT_HOST_ID

    def body(request_id: str) -> bytes:
        tail = f"<RequestId>{request_id}</RequestId><HostId>{host}</HostId></Error>"
        return f"{head}{detail}{tail}".encode()

    return _serialized({"Content-Type": "application/xml"}, status), body, status


_ANSWERS: dict[str, Callable[..., Answer | None]] = {
    "PutObject": _put_object,
    "UploadPart": _upload_part,
    "CreateMultipartUpload": _create_multipart_upload,
    "CompleteMultipartUpload": _complete_multipart_upload,
    "DeleteObject": _delete_object,
    "GetObject": _get_object,
    "ListMultipartUploads": _list_multipart_uploads,
}
#: Operations on a bucket rather than a key (their path is ``/bucket``).
_BUCKET_OPERATIONS = frozenset({"ListMultipartUploads"})


def _checksummed(params: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any], str, Any]:
    """Apply the request checksum as botocore would next (the request is the shortcut's from
    here on), then read it as moto's ``_get_checksum`` does: ``(the headers as moto sees them,
    response headers so far, algorithm, checksum value)``."""
    apply_request_checksum(params)
    moto_headers = _as_moto_sees_them(params)
    lowered = {name.lower(): value for name, value in moto_headers.items()}
    algorithm = lowered.get("x-amz-sdk-checksum-algorithm", "")
    checksum = lowered.get(f"x-amz-checksum-{algorithm.lower()}") if algorithm else None
    response_headers: dict[str, Any] = {}
    if checksum:
        response_headers[f"x-amz-checksum-{algorithm.lower()}"] = checksum
    return moto_headers, response_headers, algorithm, checksum


def _plain_request(
    params: dict[str, Any], context: dict[str, Any], *, bucket_level: bool = False
) -> tuple[str, str] | None:
    """``(bucket, key)`` of a request the shortcut can answer exactly as moto would, else None:
    an in-memory body, a header checksum (or none), only headers from a known set, a plain key
    (none for a ``bucket_level`` operation)."""
    if _body(params) is None:
        return None
    algorithm = context.get("checksum", {}).get("request_algorithm")
    if algorithm and not (isinstance(algorithm, dict) and algorithm.get("in") == "header"):
        return None  # a streamed trailer checksum: moto decodes the chunked body itself
    if not all(str(value).isascii() for value in params["headers"].values()):
        return None  # werkzeug's latin-1 round trip of other values is moto's to make
    if not _plain_header_names(tuple(params["headers"])):
        return None
    path = _split_url(str(params.get("url", ""))).path  # path-style: /bucket/key
    bucket_name, _, key_name = path.lstrip("/").partition("/")
    if bucket_level:
        return (bucket_name, "") if bucket_name and not key_name else None
    if not key_name or not _SIMPLE_KEY.match(key_name):
        return None
    return bucket_name, key_name


@functools.lru_cache(maxsize=256)
def _plain_header_names(names: tuple[str, ...]) -> bool:
    """Whether every request header is one the shortcut knows (the same few sets of names
    recur call after call: judged once per set)."""
    for name in names:
        lower = name.lower()
        if "_" in name or not (
            lower in _PLAIN_PUT_HEADERS
            or _SIMPLE_META.match(lower)
            or lower.startswith("x-amz-checksum-")
        ):
            return False
    return True


def _query(params: dict[str, Any]) -> dict[str, Any]:
    """The request's query: the operation's fixed part (in the URL, ``?uploads``) and its
    parameters (botocore adds them to the URL when it sends the request)."""
    return {**_fixed_query(_split_url(params["url"]).query), **params["query_string"]}


#: A request's URL is read twice (its path, then its query): split once.
_split_url = functools.lru_cache(maxsize=64)(urlsplit)


@functools.lru_cache(maxsize=64)
def _fixed_query(query: str) -> dict[str, str]:
    """The operation's fixed query (``uploads``, ``uploadId=``...), parsed once per text (the
    caller copies it)."""
    return dict(parse_qsl(query, True))


def _body(params: dict[str, Any]) -> bytes | None:
    """The request body when it is all in memory (bytes, or the BytesIO botocore makes of them)."""
    body = params.get("body")
    if isinstance(body, bytes):
        return body
    if isinstance(body, io.BytesIO) and body.tell() == 0:
        return body.getvalue()
    return None


def _plain_bucket(bucket: Any) -> bool:
    """A bucket with none of the features whose handling the shortcut leaves to moto."""
    return bool(
        not bucket.object_lock_enabled
        and not bucket.policy
        and not bucket.logging
        and not bucket.cors
        and not bucket.encryption
        and not bucket.notification_configuration
    )


def _as_moto_sees_them(params: dict[str, Any]) -> dict[str, str]:
    """The request's headers as moto reads them: signed by the simulation's signer (its three
    headers), spelled as werkzeug rebuilds them from the WSGI environ, with the body's length."""
    headers = {name.title(): str(value) for name, value in params["headers"].items()}
    headers.pop("Content-Length", None)
    headers["X-Amz-Date"] = _amz_date(moto_now())
    headers["X-Amz-Content-Sha256"] = "UNSIGNED-PAYLOAD"
    headers["Authorization"] = "simulated"
    headers["Content-Length"] = str(len(_body(params) or b""))
    return headers


@functools.lru_cache(maxsize=16)
def _amz_date(now: datetime) -> str:
    """The signer's ``X-Amz-Date`` for ``now`` (many calls share a virtual instant)."""
    return now.strftime("%Y%m%dT%H%M%SZ")


def _parsed(
    client: Any,
    model: Any,
    params: dict[str, Any],
    context: dict[str, Any],
    response: Sent,
) -> tuple[Any, dict[str, Any]]:
    """What botocore's endpoint makes of moto's answer (``Endpoint._send_request`` after the
    send: the same conversion, hooks and parser; one attempt, as the client is configured)."""
    endpoint = client._endpoint
    endpoint._update_retries_context(context, 1)
    headers, body, status = response
    http: Any = AWSResponse(params["url"], status, cast(Any, headers), MockRawResponse(body))
    response_dict = convert_to_response_dict(http, model)
    handle_checksum_body(http, response_dict, context, model)
    customized: dict[str, Any] = {}
    events = endpoint._event_emitter
    events.emit(
        f"before-parse.s3.{model.name}",
        operation_model=model,
        response_dict=response_dict,
        customized_response_dict=customized,
    )
    parser = _parser(endpoint._response_parser_factory, model.service_model.resolved_protocol)
    parsed: dict[str, Any] = _parse(parser, response_dict, model.output_shape)
    parsed.update(customized)
    if status >= 300:
        endpoint._add_modeled_error_fields(response_dict, parsed, model, parser)
    events.emit(
        f"response-received.s3.{model.name}",
        response_dict=response_dict,
        parsed_response=parsed,
        context=context,
        exception=None,
    )
    endpoint._needs_retry(1, model, params, (http, parsed), None)
    if "ResponseMetadata" in parsed:
        parsed["ResponseMetadata"]["RetryAttempts"] = 0
    return http, parsed


def _parse(parser: Any, response: dict[str, Any], shape: Any) -> dict[str, Any]:
    """``parser.parse(response, shape)``, for a success answer of botocore's REST-XML parser
    without its per-call walk of the output shape: which members are read from headers is
    worked out once per shape (:func:`_header_plan`), and each header is looked up once in a
    plain lower-cased copy instead of a case-insensitive mapping per member (a third of a
    shortcut call's parse). The values, the members' order and the response metadata are
    those ``parse`` makes; each value goes through the parser's own type handlers and the body
    through its own payload parsing. Anything else goes to ``parse`` itself."""
    if (
        type(parser) is not RestXMLParser
        or response["status_code"] >= 301
        or shape is None
        or shape.serialization.get("eventstream")
    ):
        return cast(dict[str, Any], parser.parse(response, shape))
    parser = cast(Any, parser)  # botocore's parser, untyped
    headers = response["headers"]
    _PARSER_LOG.debug("Response headers: %r", headers)
    _PARSER_LOG.debug("Response body:\n%r", response["body"])
    names = list(headers)
    lowered = {name.lower(): headers[name] for name in names}  # botocore's lowercase_dict
    metadata: dict[str, Any] = {}
    if "x-amzn-requestid" in lowered:
        metadata["RequestId"] = lowered["x-amzn-requestid"]
    elif "x-amz-request-id" in lowered:
        metadata["RequestId"] = lowered["x-amz-request-id"]
        metadata["HostId"] = lowered.get("x-amz-id-2", "")
    parsed: dict[str, Any] = {"ResponseMetadata": metadata}
    for name, location, header, member in _header_plan(shape):
        if location == "header":
            if header in lowered:
                parsed[name] = parser._parse_shape(member, lowered[header])
        elif location == "headers":
            parsed[name] = {
                original[len(header) :]: lowered[original.lower()]
                for original in names
                if original.lower().startswith(header)
            }
        else:
            parsed[name] = parser._parse_shape(member, response["status_code"])
    parser._parse_payload(response, shape, shape.members, parsed)
    response_metadata = parsed.get("ResponseMetadata", {})
    response_metadata["HTTPStatusCode"] = response["status_code"]
    response_metadata["HTTPHeaders"] = dict(lowered)
    parsed["ResponseMetadata"] = response_metadata
    parser._add_checksum_response_metadata(response, response_metadata)
    return parsed


_PARSER_LOG = logging.getLogger("botocore.parsers")  # where parse() logs what it parses
_header_plans: dict[int, tuple[Any, list[tuple[str, str, str, Any]]]] = {}


def _header_plan(shape: Any) -> list[tuple[str, str, str, Any]]:
    """``(member, location, lower-cased header name or prefix, member shape)`` of every member
    of ``shape`` read from the response's status or headers, in the shape's order (botocore's
    ``_parse_non_payload_attrs``)."""
    known = _header_plans.get(id(shape))
    if known is not None and known[0] is shape:
        return known[1]
    plan = []
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        if location in ("header", "headers"):
            default = name if location == "header" else ""
            header = str(member.serialization.get("name", default)).lower()
            plan.append((name, location, header, member))
        elif location == "statusCode":
            plan.append((name, location, "", member))
    _header_plans[id(shape)] = (shape, plan)
    return plan


_parsers: dict[tuple[int, str], tuple[Any, dict[str, Any], Any]] = {}


def _parser(factory: Any, protocol: str) -> Any:
    """``factory.create_parser(protocol)``, made again only when the factory's defaults (the
    options every parser it makes is given) have changed: botocore's parsers keep no state
    between responses."""
    known = _parsers.get((id(factory), protocol))
    if known is not None and known[0] is factory and known[1] == factory._defaults:
        return known[2]
    parser = factory.create_parser(protocol)
    _parsers[(id(factory), protocol)] = (factory, dict(factory._defaults), parser)
    return parser
