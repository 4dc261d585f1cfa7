"""Bad input never breaks the fake: every value has a range, every body is validated and
rendered before anything is stored, and no body, header or path makes it answer 500.

Issue 12, item by item: out-of-range bodies (the 500s that stayed stored), the request log past
its cap, the IMDSv2 TTL header, ``//latest/...``; and a Hypothesis fuzz of the control API and
the metadata paths.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fake_imds.model import MetadataPlane, ServedRequest
from fake_imds.sync import SyncFakeImds
from harness.cli import main
from tests.fake_imds.imds_client import META, TRANSPORTS, Imds, runner_for

V1 = "/_harness/v1"


@pytest.fixture(params=sorted(TRANSPORTS))
def run(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return runner_for(request.param)


def state(plane: MetadataPlane) -> tuple[Any, ...]:
    """Everything a control call could change, as JSON."""
    return (
        [n.to_json(plane) for n in plane.notices()],
        [(f.id, f.kind, f.pattern, f.end) for f in plane.faults()],
    )


# Each body once answered 500 (and stayed stored) or 201 and then broke a metadata path.
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/notices", {"lead": 1e308}, "lead"),
        ("/notices", {"lead": "99999999999h"}, "lead"),
        ("/notices", {"cloud": "gcp", "lead": 1e300}, "lead"),
        ("/notices", {"cloud": "azure", "kind": "terminate", "lead": 1e300}, "lead"),
        ("/notices", {"cloud": "kubernetes", "grace": 1e300}, "grace"),
        ("/notices", {"kind": "scheduled-event", "window": 1e308}, "window"),
        ("/notices", {"kind": "scheduled-event", "lead": "9999999d"}, "lead"),
        ("/notices", {"at": "9999-12-31T23:59:59Z"}, "at"),
        ("/notices", {"at": "0001-01-01T00:00:00+23:59"}, "at"),
        ("/notices", {"at": "+99999999999h"}, "at"),
        ("/faults", {"kind": "status", "for": 1e308}, "for"),
        ("/faults", {"kind": "latency", "latency": 1e308}, "latency"),
        ("/faults", {"kind": "throttle", "limit": 10**30}, "limit"),
    ],
)
def test_out_of_range_bodies_are_400_naming_field_value_and_range_and_nothing_is_stored(
    run: Callable[..., Any], path: str, body: dict[str, Any], field: str
) -> None:
    async def test(imds: Imds) -> None:
        before = state(imds.plane)
        reply = await imds.request("POST", V1 + path, json=body)
        assert reply.status == 400, reply.text
        assert reply.json()["field"] == field
        assert field in reply.json()["error"]
        assert state(imds.plane) == before
        for after in (
            V1 + "/notices",
            V1 + "/faults",
            META + "spot/instance-action",
            META + "events/maintenance/scheduled",
            "/metadata/scheduledevents",
        ):
            assert (await imds.get(after)).status < 500

    run(test)


def test_a_bound_message_names_the_field_the_value_and_the_range(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        reply = await imds.request("POST", V1 + "/notices", json={"lead": "99999999999h"})
        assert reply.json()["error"] == "lead = 99999999999h is out of range: expected 0s to 1d"

    run(test)


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000,
        b'{"a":' * 50_000,
        b'{"lead": ' + b"9" * 5000 + b"}",
        b'{"lead": NaN}',
        b'{"lead": Infinity}',
        b'{"lead": 1e400}',
        b"\xff\xfe\x00",
        b'{"x": "' + b"a" * 70_000 + b'"}',
    ],
    ids=["deep-array", "deep-object", "huge-int", "nan", "infinity", "overflow", "binary", "big"],
)
def test_bodies_that_are_too_deep_too_big_or_not_json_are_400(
    run: Callable[..., Any], raw: bytes
) -> None:
    async def test(imds: Imds) -> None:
        for path in ("/notices", "/faults"):
            reply = await imds.request("POST", V1 + path, data=raw)
            assert reply.status == 400, reply.text
            assert reply.json()["field"] in ("body", "lead")
        assert state(imds.plane) == ([], [])

    run(test)


def test_harness_notice_refuses_a_lead_past_a_day_before_calling(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # No server at this URL: the refusal comes before any call is made.
    assert main(["notice", "--url", "http://127.0.0.1:9", "--lead", "99999999999h"]) == 2
    err = capsys.readouterr().err
    assert "lead = 99999999999h is out of range: expected 0s to 1d" in err


# -- the request log ---------------------------------------------------------------------------
def served(n: int) -> ServedRequest:
    return ServedRequest(float(n), "GET", f"/latest/meta-data/{n}", 200, "127.0.0.1", "aws")


def test_the_request_log_keeps_sequence_numbers_past_its_cap(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        log = imds.plane.requests
        for n in range(log.maxlen or 0):
            log.append(served(n))
        tail = (await imds.request("GET", V1 + "/requests?since=4")).json()
        assert [r["seq"] for r in tail["requests"]] == [4]
        for n in range(5, 8):
            log.append(served(n))
        answer = (await imds.request("GET", V1 + "/requests?since=5")).json()
        assert (answer["total"], answer["dropped"], answer["limit"]) == (8, 3, 5)
        assert [(r["seq"], r["path"]) for r in answer["requests"]] == [
            (5, "/latest/meta-data/5"),
            (6, "/latest/meta-data/6"),
            (7, "/latest/meta-data/7"),
        ]
        older = (await imds.request("GET", V1 + "/requests?since=0")).json()
        assert [r["seq"] for r in older["requests"]] == [3, 4, 5, 6, 7]  # 0-2 were dropped
        assert (await imds.request("GET", V1 + "/requests?since=8")).json()["requests"] == []
        refused = await imds.request("GET", V1 + "/requests?since=-1")
        assert (refused.status, refused.json()["field"]) == (400, "since")

    async def with_small_log(imds: Imds) -> None:
        imds.plane.requests.__init__(5)  # type: ignore[misc]
        await test(imds)

    run(with_small_log)


def test_harness_serve_sets_the_request_log_limit() -> None:
    with SyncFakeImds(request_log_limit=3) as imds:
        for _ in range(5):
            requests.get(imds.url + META + "instance-id", timeout=10)
        answer = requests.get(imds.control_url + "/requests", timeout=10).json()
        assert (answer["limit"], answer["total"], answer["dropped"]) == (3, 5, 2)


# -- protocol edges ----------------------------------------------------------------------------
@pytest.mark.parametrize("ttl", ["\uff16\uff10", "\u0666\u0660", "60\u00b2", "+60", "0", "21601"])
def test_the_token_ttl_is_ascii_digits_meaning_1_to_21600(
    run: Callable[..., Any], ttl: str
) -> None:
    async def test(imds: Imds) -> None:
        reply = await imds.put_token(ttl)
        assert reply.status == 400, reply.text

    run(test)


def test_a_doubled_slash_is_answered_like_one() -> None:
    """``$URL/latest/...`` with a URL ending in ``/``: EC2's service takes ``//`` as ``/``."""
    with SyncFakeImds() as imds:
        ttl = {"X-aws-ec2-metadata-token-ttl-seconds": "60"}
        token = requests.put(imds.url + "//latest/api/token", headers=ttl, timeout=10)
        assert token.status_code == 200 and "<html" not in token.text
        reply = requests.get(
            imds.url + "//latest/meta-data//instance-id",
            headers={"X-aws-ec2-metadata-token": token.text},
            timeout=10,
        )
        assert (reply.status_code, reply.text) == (200, "i-0123456789abcdef0")


# -- the fuzz -----------------------------------------------------------------------------------
_FIELDS = [
    "cloud",
    "kind",
    "action",
    "lead",
    "at",
    "window",
    "grace",
    "shutdown",
    "state",
    "description",
    "source",
    "duration",
    "path",
    "for",
    "status",
    "latency",
    "limit",
    "public_ipv4",
    "instance_id",
    "tags",
    "product_codes",
    "public_keys",
]
_NASTY = st.sampled_from(
    [
        1e308,
        -1,
        0,
        10**30,
        2**63,
        1.5,
        True,
        None,
        "",
        "2m",
        "99999999999h",
        "PT2M",
        "-5s",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "+30s",
        "+9999999d",
        "aws",
        "gcp",
        "azure",
        "kubernetes",
        "webhook",
        "spot-interruption",
        "scheduled-event",
        "preemption",
        "preempt",
        "freeze",
        "eviction",
        "status",
        "latency",
        "throttle",
        "timeout",
        "reset",
        "/latest/*",
        "\x00",
        "\uff16",
        "a" * 3000,
        [],
        {},
        ["x"],
        {"k": "v"},
    ]
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
#: A few fields, mostly the ones each endpoint reads, mostly with values at or past an edge.
_EXTRA = st.dictionaries(
    st.sampled_from(_FIELDS) | st.text(max_size=6), _NASTY | _NASTY | _JSON, min_size=1, max_size=3
)
#: Valid starting points, so that the nasty fields reach the code past the kind and cloud checks.
_KINDS = {
    "aws": ["spot-interruption", "rebalance", "scheduled-event", "asg-termination",
            "fis-spot-interruption"],
    "gcp": ["preemption", "maintenance"],
    "azure": ["preempt", "terminate", "freeze", "reboot", "redeploy"],
    "webhook": ["interruption"],
    "kubernetes": ["eviction"],
}  # fmt: skip
_NOTICE_BASES = [
    {
        "cloud": cloud,
        "kind": kind,
        **({"url": "http://127.0.0.1:9/hook"} if cloud == "webhook" else {}),
    }
    for cloud, kinds in _KINDS.items()
    for kind in kinds
]
_BASES = {
    "POST /notices": st.sampled_from(_NOTICE_BASES),
    "POST /faults": st.sampled_from(
        [{"kind": kind} for kind in ("status", "latency", "timeout", "reset", "throttle")]
    ),
    "PATCH /identity/aws": st.just({}),
}
_ENDPOINTS = [
    *_BASES,
    *_BASES,
    *_BASES,
    "GET /requests",
    "GET /notices",
    "DELETE /notices/notice-0001",
    "DELETE /faults/x",
    "GET /identity/gcp",
    "POST /nothing",
]
_CONTROL = st.sampled_from(_ENDPOINTS).flatmap(
    lambda endpoint: st.tuples(
        st.just(endpoint),
        st.builds(lambda base, extra: {**base, **extra}, _BASES.get(endpoint, st.just({})), _EXTRA),
    )
)
_PREFIXES = [
    "/",
    "/latest/",
    "//latest/",
    "/latest/meta-data/",
    "/2021-07-15/meta-data/",
    "/latest/dynamic/",
    "/computeMetadata/v1/",
    "/computeMetadata/v1/instance/",
    "/metadata/scheduledevents",
    "/metadata/instance",
    "/_harness/v1/requests",
]
_QUERIES = [
    "",
    "?recursive=true",
    "?alt=json",
    "?alt=x",
    "?since=5",
    "?since=-1",
    "?since=99999999999999999999999",
    "?api-version=2020-07-01",
    "?api-version=x",
]
_PATHS = st.tuples(
    st.sampled_from(["GET", "PUT", "POST", "HEAD", "DELETE"]),
    st.sampled_from(_PREFIXES),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_./=", max_size=30),
    st.sampled_from(_QUERIES),
    st.dictionaries(
        st.sampled_from(
            [
                "X-aws-ec2-metadata-token-ttl-seconds",
                "X-aws-ec2-metadata-token",
                "Metadata-Flavor",
                "Metadata",
                "X-Forwarded-For",
            ]
        ),
        st.sampled_from(["60", "0", "21601", "true", "Google", "x", "99999999999999999999"]),
        max_size=3,
    ),
)


_QUIET: tuple[str, str, str, str, dict[str, str]] = (
    "GET",
    "/latest/meta-data/",
    "events/maintenance/scheduled",
    "",
    {},
)


def _identity(imds: SyncFakeImds) -> Any:
    return requests.get(imds.control_url + "/identity/aws", timeout=10).json()


def test_fuzz_no_body_header_or_path_gets_a_500_and_a_4xx_changes_nothing() -> None:
    """Random control calls and metadata requests: never a 5xx; after any 4xx the notices,
    faults and identity are exactly as before. Each success is undone (reset), so a random
    fault never slows the next example."""
    with SyncFakeImds() as imds, requests.Session() as http:
        base = imds.url

        def snapshot() -> tuple[Any, ...]:
            return (imds.call(state), _identity(imds))

        def settle(status: int, before: tuple[Any, ...], what: str) -> None:
            assert status < 500, what
            if 400 <= status < 500:
                assert snapshot() == before, what
            else:
                http.post(imds.control_url + "/reset", timeout=10)

        @settings(
            max_examples=80,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(_CONTROL, _PATHS)
        @example(("POST /notices", {"lead": 1e308}), _QUIET)  # the reproductions
        @example(("POST /faults", {"kind": "status", "for": 1e308}), _QUIET)
        @example(("POST /notices", {"kind": "scheduled-event", "window": 1e308}), _QUIET)
        def probe(control: tuple[str, dict[str, Any]], metadata: tuple[Any, ...]) -> None:
            method, path = control[0].split(" ")
            before = snapshot()
            data = json.dumps(control[1])
            reply = http.request(method, imds.control_url + path, data=data, timeout=10)
            settle(reply.status_code, before, f"{control} -> {reply.text[:200]}")
            verb, prefix, rest, query, headers = metadata
            before = snapshot()
            reply = http.request(verb, base + prefix + rest + query, headers=headers, timeout=10)
            settle(reply.status_code, before, f"{metadata} -> {reply.status_code}")

        probe()
