"""The AWS dialect: EC2 instance metadata (IMDSv1 and IMDSv2) for one spot instance.

Routes: ``PUT /latest/api/token``, ``GET /`` (versions), ``GET /<version>/...`` for
``meta-data``, ``dynamic`` and ``user-data``. Identity comes from :class:`AwsOptions`; interruption
signals are rendered from the plane's notices of cloud ``aws``:

* ``spot-interruption``: ``spot/instance-action`` (and ``spot/termination-time`` for terminate),
  its ``time`` being the notice's deadline, fixed when it was issued;
* ``rebalance``: ``events/recommendations/rebalance``;
* ``scheduled-event``: ``events/maintenance/scheduled`` while pending, then
  ``events/maintenance/history`` once completed or canceled;
* ``asg-termination``: ``autoscaling/target-lifecycle-state``;
* ``fis-spot-interruption``: a control-API shorthand that schedules a rebalance now, the notice
  2 minutes before the interruption, and the interruption ``lead`` after now, like FIS does.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import itertools
import json
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, cast

from aiohttp import web
from pydantic import AfterValidator, Field, StringConstraints, ValidationInfo, field_validator

from fake_imds import eventbridge
from fake_imds.control import At, Body, Duration, NoticeBody, NoticeSpec, ScheduledLead
from fake_imds.dispatch import NoticeDispatcher
from fake_imds.middleware import NOTE, Unfaked, error_page, forwarded
from fake_imds.model import MetadataPlane, Notice, latest
from fake_imds.server import DialectSite, ImdsV2Mode
from fake_imds.vocabulary import NoticeAction, ScheduledCode
from harness.bounds import DAY, HOUR

TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
MAX_TOKEN_TTL = 21600
#: A spot notice comes this long before the interruption (FIS and EC2 alike).
SPOT_LEAD = 120.0
API_VERSIONS = (
    "1.0",
    "2007-01-19",
    "2008-02-01",
    "2009-04-04",
    "2011-05-01",
    "2014-02-25",
    "2016-09-02",
    "2018-09-24",
    "2019-10-01",
    "2020-10-27",
    "2021-03-23",
    "2021-07-15",
    "2022-09-24",
    "2024-04-11",
    "latest",
)
_VERSION_PATTERN = "|".join(v.replace(".", r"\.") for v in API_VERSIONS)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CODE_DESCRIPTIONS = {
    "system-reboot": "scheduled reboot",
    "instance-reboot": "scheduled reboot",
    "system-maintenance": "scheduled maintenance",
    "instance-retirement": "scheduled retirement",
    "instance-stop": "The instance is running on degraded hardware",
}


#: The instance's OpenSSH key (a made-up one: the fake never serves a real key).
_FAKE_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHNwb3QtaGFybmVzcy1mYWtlLWtleS1ub3QtcmVhbA spot-harness"
)


@dataclass(frozen=True)
class AwsOptions:
    """Who the fake instance is. ``tags`` ``None`` means instance tags in metadata are off (404);
    ``asg_state`` ``None`` means the instance is not in an Auto Scaling group (404)."""

    instance_id: str = "i-0123456789abcdef0"
    instance_type: str = "g5.xlarge"
    region: str = "us-east-1"
    availability_zone: str = "us-east-1a"
    availability_zone_id: str = "use1-az1"
    ami_id: str = "ami-0abcdef1234567890"
    account_id: str = "123456789012"
    local_ipv4: str = "10.0.0.12"
    public_ipv4: str = "198.51.100.12"
    public_hostname: str = "ec2-198-51-100-12.compute-1.amazonaws.com"
    mac: str = "0e:11:22:33:44:55"
    hostname: str = "ip-10-0-0-12.ec2.internal"
    kernel_id: str = "aki-0f1e2d3c4b5a69788"
    ramdisk_id: str = "ari-0f1e2d3c4b5a69788"
    product_codes: tuple[str, ...] = ("5k2tq8w1xv3n9b7m0c6y4hjzr",)
    #: key-pair name -> OpenSSH public key (``public-keys/0=name``, ``public-keys/0/openssh-key``)
    public_keys: Mapping[str, str] = field(default_factory=lambda: {"spot-harness": _FAKE_KEY})
    #: virtual name -> device (``block-device-mapping/root`` -> ``/dev/xvda``)
    block_devices: Mapping[str, str] = field(
        default_factory=lambda: {"ami": "/dev/xvda", "root": "/dev/xvda", "ephemeral0": "sdb"}
    )
    role: str = "spot-harness-instance"
    lifecycle: str = "spot"
    user_data: str | None = None
    tags: Mapping[str, str] | None = None
    asg_state: str | None = None
    security_groups: tuple[str, ...] = ("default",)
    architecture: str = "x86_64"
    launched_at: str = "2026-01-01T00:00:00Z"
    credentials_ttl: float = 6 * 3600.0
    extra: Mapping[str, str] = field(default_factory=dict)


# -- notices from the control API ---------------------------------------------------------------
class AwsNotice(NoticeBody):
    cloud: Literal["aws"] = "aws"
    at: At = None


class AwsSpotInterruptionBody(AwsNotice):
    """``spot/instance-action`` (and ``spot/termination-time`` for terminate)."""

    kind: Literal["spot-interruption"] = "spot-interruption"
    action: NoticeAction = "terminate"
    lead: Duration | None = Field(
        default=None,
        description="notice to interruption; default 2m, 0s for hibernate (which starts at once)",
    )

    def specs(self, plane: MetadataPlane) -> Sequence[NoticeSpec]:
        lead = self.lead
        if lead is None:  # hibernation starts at once: the notice comes, but no warning
            lead = 0.0 if self.action == "hibernate" else SPOT_LEAD
        return [NoticeSpec("aws", self.kind, self.action, lead, self.at)]


class AwsRebalanceBody(AwsNotice):
    """``events/recommendations/rebalance``."""

    kind: Literal["rebalance"]

    def specs(self, plane: MetadataPlane) -> Sequence[NoticeSpec]:
        return [NoticeSpec("aws", self.kind, "rebalance", 0.0, self.at)]


class AwsScheduledEventBody(AwsNotice):
    """``events/maintenance/scheduled`` until ``NotBefore``, then ``history``."""

    kind: Literal["scheduled-event"]
    action: ScheduledCode = Field(default="system-reboot", description="the event code")
    lead: ScheduledLead = Field(default=14 * DAY, description="notice to NotBefore")
    window: Duration = Field(default=2 * HOUR, description="NotBefore to NotAfter")
    description: str | None = Field(
        default=None, min_length=1, max_length=1024, description="default: per code"
    )

    def specs(self, plane: MetadataPlane) -> Sequence[NoticeSpec]:
        description = self.description or _CODE_DESCRIPTIONS[self.action]
        params = {"window": self.window, "description": description}
        return [NoticeSpec("aws", self.kind, self.action, self.lead, self.at, params)]


class AwsAsgTerminationBody(AwsNotice):
    """``autoscaling/target-lifecycle-state``."""

    kind: Literal["asg-termination"]
    action: Literal["terminate"] = "terminate"
    state: str = Field(default="Terminated", min_length=1, max_length=1024)
    lead: Duration = 0.0

    def specs(self, plane: MetadataPlane) -> Sequence[NoticeSpec]:
        params = {"state": self.state}
        return [NoticeSpec("aws", self.kind, self.action, self.lead, self.at, params)]


class AwsFisSpotInterruptionBody(AwsNotice):
    """FIS ``aws:ec2:send-spot-instance-interruptions``: rebalance at the start, the notice two
    minutes before the interruption, the interruption ``lead`` (``durationBeforeInterruption``)
    after the start."""

    kind: Literal["fis-spot-interruption"]
    action: NoticeAction = "terminate"
    lead: Duration = Field(default=SPOT_LEAD, description="durationBeforeInterruption, >= 2m")

    @field_validator("lead")
    @classmethod
    def _at_least_the_notice(cls, lead: float) -> float:
        if lead < SPOT_LEAD:
            raise ValueError(
                f"'lead' (durationBeforeInterruption) must be at least 2m, got {lead:g}s"
            )
        return lead

    def specs(self, plane: MetadataPlane) -> Sequence[NoticeSpec]:
        start = plane.now() if self.at is None else self.at
        interruption = start + self.lead - SPOT_LEAD
        fis = {"fis": True}
        return [
            NoticeSpec("aws", "rebalance", "rebalance", 0.0, start, fis),
            NoticeSpec("aws", "spot-interruption", self.action, SPOT_LEAD, interruption, fis),
        ]


#: The AWS kinds of ``POST /_harness/v1/notices`` (see the module docstring), the default first.
NOTICE_BODIES: tuple[type[NoticeBody], ...] = (
    AwsSpotInterruptionBody,
    AwsRebalanceBody,
    AwsScheduledEventBody,
    AwsAsgTerminationBody,
    AwsFisSpotInterruptionBody,
)


# -- IMDSv2 tokens ------------------------------------------------------------------------------
class TokenStore:
    """Session tokens with a TTL on the plane's clock. Deterministic for a given seed.

    Each token has a serial number (1, 2, ...), so the request log can say which token a
    request carried, and whether it had expired, without ever holding a token."""

    def __init__(self, plane: MetadataPlane, seed: int) -> None:
        self._plane = plane
        self._random = random.Random(f"imds-tokens:{seed}")
        self._expiry: dict[str, float] = {}
        self._issued: dict[str, tuple[int, int]] = {}  # token -> (serial, ttl)
        self._serials = itertools.count(1)

    def issue(self, ttl: int) -> str:
        now = self._plane.now()
        if len(self._expiry) > 10_000:
            self._expiry = {t: e for t, e in self._expiry.items() if e > now}
            self._issued = {t: self._issued[t] for t in self._expiry}
        raw = bytes([1, 0, 4, 0]) + self._random.randbytes(36)
        token = base64.b64encode(raw).decode()
        self._expiry[token] = now + ttl
        self._issued[token] = (next(self._serials), ttl)
        return token

    def valid(self, token: str) -> bool:
        expiry = self._expiry.get(token)
        return expiry is not None and self._plane.now() < expiry

    def serial(self, token: str) -> int | None:
        """The token's serial number, or None for a token this store never issued."""
        issued = self._issued.get(token)
        return None if issued is None else issued[0]

    def note(self, token: str) -> dict[str, Any] | None:
        """What the request log notes about a token presented: its serial and TTL, and how
        long ago it expired if it has; None for a token never issued."""
        issued = self._issued.get(token)
        if issued is None:
            return None
        serial, ttl = issued
        note: dict[str, Any] = {"token": serial, "token_ttl": ttl}
        overdue = self._plane.now() - self._expiry[token]
        if overdue >= 0:
            note["token_expired_for"] = round(overdue, 3)
        return note


def parse_ttl(raw: str | None) -> int | None:
    """The TTL header's value if it is ASCII digits (``60``) meaning 1..21600, else ``None``.

    ``str.isdigit`` alone would take full-width or other Unicode digits (``\\uff16\\uff10``),
    which AWS refuses with a 400.
    """
    if raw is None or not (raw.isascii() and raw.isdigit()) or len(raw) > 5:
        return None
    ttl = int(raw)
    return ttl if 1 <= ttl <= MAX_TOKEN_TTL else None


# -- the metadata tree --------------------------------------------------------------------------
Leaf = str | Callable[[], str | None]
Node = Leaf | dict[str, "Node"]


_TEXT_HEADERS = {"Server": "EC2ws", "Content-Type": "text/plain"}


def _text(body: str) -> web.Response:
    return web.Response(body=body.encode(), headers=_TEXT_HEADERS)


def _json_text(document: Any) -> str:
    return json.dumps(document, indent=2)


def _gmt(when: datetime) -> str:
    """``21 Jan 2019 09:00:43 GMT``, the scheduled-events format (locale-independent)."""
    return f"{when.day} {_MONTHS[when.month - 1]} {when.year} {when:%H:%M:%S} GMT"


def _stable_hex(*parts: object, length: int) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:length]


class AwsMetadata:
    """Renders the instance's metadata from its options and the plane's notices."""

    def __init__(self, plane: MetadataPlane, options: AwsOptions, seed: int) -> None:
        self.plane = plane
        self.options = options
        self.seed = seed
        self.tree = self._build_tree()
        self._nodes: dict[str, object] = {}
        self._action_bodies: dict[tuple[str, str, float], str] = {}

    # -- identity -------------------------------------------------------------------------------
    def _build_tree(self) -> dict[str, Node]:
        o = self.options
        meta: dict[str, Node] = {
            "ami-id": o.ami_id,
            "ami-launch-index": "0",
            "ami-manifest-path": "(unknown)",
            "hostname": o.hostname,
            "instance-action": "none",
            "instance-id": o.instance_id,
            "instance-life-cycle": o.lifecycle,
            "instance-type": o.instance_type,
            "kernel-id": o.kernel_id,
            "local-hostname": o.hostname,
            "local-ipv4": o.local_ipv4,
            "mac": o.mac,
            "product-codes": lambda: "\n".join(o.product_codes) or None,
            "public-hostname": o.public_hostname,
            "public-ipv4": o.public_ipv4,
            "public-keys": _public_keys(o.public_keys),
            "ramdisk-id": o.ramdisk_id,
            "block-device-mapping": dict(o.block_devices),
            "reservation-id": f"r-{_stable_hex(o.instance_id, 'r', length=17)}",
            "security-groups": "\n".join(o.security_groups),
            "placement": {
                "availability-zone": o.availability_zone,
                "availability-zone-id": o.availability_zone_id,
                "region": o.region,
            },
            "services": {"domain": "amazonaws.com", "partition": "aws"},
            "network": {"interfaces": {"macs": {o.mac: self._interface()}}},
            "iam": {
                "info": self._iam_info,
                "security-credentials": {o.role: self._credentials},
            },
            "spot": {"instance-action": self._instance_action, "termination-time": self._term},
            "events": {
                "maintenance": {
                    "scheduled": lambda: _json_text(self._scheduled(history=False)),
                    "history": lambda: _json_text(self._scheduled(history=True)),
                },
                "recommendations": {"rebalance": self._rebalance},
            },
            "autoscaling": {"target-lifecycle-state": self._asg_state},
        }
        if o.tags is not None:  # instance tags in metadata are off unless enabled
            meta["tags"] = {"instance": self._tags()}
        meta.update(o.extra)
        return {
            "meta-data": meta,
            "dynamic": {"instance-identity": {"document": self._identity_document}},
            "user-data": lambda: o.user_data,
        }

    def _interface(self) -> dict[str, Node]:
        o = self.options
        return {
            "device-number": "0",
            "interface-id": f"eni-{_stable_hex(o.instance_id, 'eni', length=17)}",
            "local-hostname": o.hostname,
            "local-ipv4s": o.local_ipv4,
            "mac": o.mac,
            "owner-id": o.account_id,
            "security-groups": "\n".join(o.security_groups),
        }

    def _tags(self) -> dict[str, Node]:
        tags = self.options.tags
        return {} if tags is None else {k: v for k, v in tags.items()}

    def set_options(self, options: AwsOptions) -> None:
        """A new identity: every path answers from it from now on."""
        self.options = options
        self.tree = self._build_tree()
        self._nodes.clear()

    def render_notice(self, notice: Notice) -> None:
        """Everything the metadata paths would show of ``notice`` (raises if they could not)."""
        if notice.cloud != "aws":
            return
        for state in ("active", "completed", "canceled"):
            self._scheduled_event(notice, state)
        json.dumps({"action": notice.action, "time": self.plane.iso(notice.deadline)})
        json.dumps({"noticeTime": self.plane.iso(notice.issued_at)})

    def _identity_document(self) -> str:
        o = self.options
        return _json_text(
            {
                "accountId": o.account_id,
                "architecture": o.architecture,
                "availabilityZone": o.availability_zone,
                "billingProducts": None,
                "devpayProductCodes": None,
                "marketplaceProductCodes": None,
                "imageId": o.ami_id,
                "instanceId": o.instance_id,
                "instanceType": o.instance_type,
                "kernelId": None,
                "pendingTime": o.launched_at,
                "privateIp": o.local_ipv4,
                "ramdiskId": None,
                "region": o.region,
                "version": "2017-09-30",
            }
        )

    def _iam_info(self) -> str:
        o = self.options
        return _json_text(
            {
                "Code": "Success",
                "LastUpdated": o.launched_at,
                "InstanceProfileArn": f"arn:aws:iam::{o.account_id}:instance-profile/{o.role}",
                "InstanceProfileId": "AIPA" + _stable_hex(o.role, length=17).upper(),
            }
        )

    def _credentials(self) -> str:
        """Role credentials rotated every hour, each valid for ``credentials_ttl``."""
        now = self.plane.calendar(self.plane.now())
        issued = now.replace(minute=0, second=0, microsecond=0)
        generation = int(issued.timestamp())
        key = _stable_hex(self.seed, self.options.role, generation, length=16).upper()
        secret = base64.b64encode(
            hashlib.sha256(f"secret:{self.seed}:{generation}".encode()).digest()
        ).decode()[:40]
        token = base64.b64encode(
            hashlib.sha512(f"token:{self.seed}:{generation}".encode()).digest()
        ).decode()
        expires = issued + timedelta(seconds=self.options.credentials_ttl)
        return _json_text(
            {
                "Code": "Success",
                "LastUpdated": f"{issued:%Y-%m-%dT%H:%M:%SZ}",
                "Type": "AWS-HMAC",
                "AccessKeyId": "ASIA" + key,
                "SecretAccessKey": secret,
                "Token": token,
                "Expiration": f"{expires:%Y-%m-%dT%H:%M:%SZ}",
            }
        )

    # -- interruption signals -------------------------------------------------------------------
    def _spot_notice(self) -> Notice | None:
        return latest(self.plane.visible_notices("aws", "spot-interruption"))

    def _instance_action(self) -> str | None:
        notice = self._spot_notice()
        if notice is None:
            return None
        key = (notice.id, notice.action, notice.deadline)
        body = self._action_bodies.get(key)
        if body is None:  # fixed once issued: rendered once per notice, not once per poll
            body = json.dumps({"action": notice.action, "time": self.plane.iso(notice.deadline)})
            self._action_bodies[key] = body
        return body

    def _term(self) -> str | None:
        notice = self._spot_notice()
        if notice is None or notice.action != "terminate":
            return None
        return self.plane.iso(notice.deadline)

    def _rebalance(self) -> str | None:
        notice = latest(self.plane.visible_notices("aws", "rebalance"))
        if notice is None:
            return None
        return json.dumps({"noticeTime": self.plane.iso(notice.issued_at)})

    def _asg_state(self) -> str | None:
        notice = latest(self.plane.visible_notices("aws", "asg-termination"))
        if notice is None:
            return self.options.asg_state
        return str(notice.params.get("state", "Terminated"))

    def _scheduled(self, *, history: bool) -> list[dict[str, str]]:
        now = self.plane.now()
        events = []
        for notice in sorted(self.plane.notices("aws", "scheduled-event"), key=_order):
            state = _scheduled_state(notice, now)
            if state is None or (state != "active") != history:
                continue
            events.append(self._scheduled_event(notice, state))
        return events

    def _scheduled_event(self, notice: Notice, state: str) -> dict[str, str]:
        not_before = self.plane.calendar(notice.deadline)
        window = float(notice.params.get("window", 7200.0))
        description = str(notice.params.get("description", ""))
        prefix = {"canceled": "[Canceled] ", "completed": "[Completed] "}.get(state, "")
        return {
            "NotBefore": _gmt(not_before),
            "Code": notice.action,
            "Description": prefix + description,
            "EventId": "instance-event-" + _stable_hex(self.seed, notice.id, length=17),
            "NotAfter": _gmt(not_before + timedelta(seconds=window)),
            "State": state,
        }

    # -- lookup ---------------------------------------------------------------------------------
    def lookup(self, rest: str) -> str | None:
        """The body for the path after ``/<version>`` (``/meta-data/mac``), or None if missing.

        Where a path leads in the tree never changes, so it is resolved once per path.
        """
        node = self._nodes.get(rest, _UNRESOLVED)
        if node is _UNRESOLVED:
            node = self._resolve([p for p in rest.split("/") if p])
            if len(self._nodes) < 4096:
                self._nodes[rest] = node
        if node is None:
            return None
        return self._render(cast(Node, node))

    def _resolve(self, parts: Sequence[str]) -> Node | None:
        node: Node = self.tree
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    @staticmethod
    def _render(node: Node) -> str | None:
        if isinstance(node, KeysDirectory):
            return "\n".join(f"{index}={name}" for index, name in node.names.items()) or None
        if isinstance(node, dict):
            listing = [
                name + ("/" if isinstance(child, dict) else "")
                for name, child in node.items()
                if _present(child)
            ]
            return "\n".join(sorted(listing)) if listing else None
        return node() if callable(node) else node


_UNRESOLVED = object()
_SLASHES = re.compile("/+")


class KeysDirectory(dict[str, Node]):
    """``public-keys/``: lists ``0=name`` while its children are ``0/openssh-key``."""

    def __init__(self, children: dict[str, Node], names: dict[str, str]) -> None:
        super().__init__(children)
        self.names = names


def _public_keys(keys: Mapping[str, str]) -> KeysDirectory:
    children: dict[str, Node] = {}
    names: dict[str, str] = {}
    for index, (name, key) in enumerate(keys.items()):
        children[str(index)] = {"openssh-key": key}
        names[str(index)] = name
    return KeysDirectory(children, names)


def _present(node: Node) -> bool:
    if isinstance(node, dict):
        return any(_present(child) for child in node.values())
    return (node() if callable(node) else node) is not None


def _order(notice: Notice) -> tuple[float, str]:
    return (notice.deadline, notice.id)


def _scheduled_state(notice: Notice, now: float) -> str | None:
    """``active`` while pending, ``completed`` / ``canceled`` in history, None if not yet shown."""
    if notice.issued_at > now:
        return None
    if notice.state == "canceled":
        canceled_at = float(notice.params.get("canceled_at", now))
        return "canceled" if canceled_at >= notice.issued_at else None
    return "completed" if now >= notice.deadline else "active"


# -- identity through the control API ----------------------------------------------------------
def _ipv4(value: str, info: ValidationInfo) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        message = f"`{info.field_name}` must be an IPv4 address such as 198.51.100.12"
        raise ValueError(message) from None


Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
IPv4 = Annotated[str, AfterValidator(_ipv4)]


class AwsIdentityBody(Body):
    """``PATCH /_harness/v1/identity/aws``: any of the :class:`AwsOptions` identity fields."""

    instance_id: Annotated[str, StringConstraints(pattern=r"^i-[0-9a-f]{8,17}$")] | None = None
    instance_type: Name | None = None
    region: Name | None = None
    availability_zone: Name | None = None
    availability_zone_id: Name | None = None
    ami_id: Annotated[str, StringConstraints(pattern=r"^ami-[0-9a-f]{8,17}$")] | None = None
    account_id: Annotated[str, StringConstraints(pattern=r"^\d{12}$")] | None = None
    local_ipv4: IPv4 | None = None
    public_ipv4: IPv4 | None = None
    public_hostname: Name | None = None
    hostname: Name | None = None
    mac: Annotated[str, StringConstraints(pattern=r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")] | None = None
    kernel_id: Name | None = None
    ramdisk_id: Name | None = None
    product_codes: tuple[Name, ...] | None = Field(default=None, max_length=16)
    public_keys: dict[Name, Annotated[str, StringConstraints(max_length=16384)]] | None = Field(
        default=None, max_length=16
    )
    block_devices: dict[Name, Name] | None = Field(default=None, max_length=32)
    tags: (
        dict[
            Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^/]+$")],
            Annotated[str, StringConstraints(max_length=256)],
        ]
        | None
    ) = Field(default=None, max_length=50)
    asg_state: Name | None = None
    lifecycle: Literal["spot", "on-demand", "scheduled"] | None = None
    user_data: Annotated[str, StringConstraints(max_length=16384)] | None = None

    def changes(self) -> dict[str, Any]:
        """The fields given, as :class:`AwsOptions` arguments."""
        changes = self.model_dump(exclude_unset=True)
        if changes.get("product_codes") is not None:
            changes["product_codes"] = tuple(changes["product_codes"])
        return changes


#: The identity fields ``GET /_harness/v1/identity/aws`` shows.
IDENTITY_FIELDS = tuple(AwsIdentityBody.model_fields)


class AwsIdentity:
    """The AWS dialect's :class:`~fake_imds.control.IdentityHook`."""

    def __init__(self, metadata: AwsMetadata, emitter: EventEmitter | None) -> None:
        self.metadata = metadata
        self.emitter = emitter

    def show(self) -> dict[str, Any]:
        options = self.metadata.options
        shown = {name: getattr(options, name) for name in IDENTITY_FIELDS}
        as_json: dict[str, Any] = json.loads(json.dumps(shown, default=dict))
        return as_json  # tuples and mappings as JSON

    def update(self, body: Mapping[str, Any]) -> dict[str, Any]:
        options = replace(self.metadata.options, **AwsIdentityBody.parse(body).changes())
        self.metadata.set_options(options)
        if self.emitter is not None:
            self.emitter.options = options
        return self.show()


# -- HTTP ---------------------------------------------------------------------------------------
class AwsHandlers:
    def __init__(
        self, metadata: AwsMetadata, tokens: TokenStore, mode: ImdsV2Mode, passthrough: bool
    ) -> None:
        self.metadata = metadata
        self.tokens = tokens
        self.mode = mode
        self.passthrough = passthrough

    async def root(self, request: web.Request) -> web.StreamResponse:
        if request.method != "GET":
            return error_page(405, {"Allow": "GET"})
        return _text("\n".join(API_VERSIONS))

    async def versioned(self, request: web.Request) -> web.StreamResponse:
        rest = request.match_info["rest"]
        if "//" in rest:
            rest = _SLASHES.sub("/", rest)
        if rest.rstrip("/") == "/api/token":
            return self.token(request, request.match_info["version"])
        if request.method not in ("GET", "HEAD"):
            return error_page(405, {"Allow": "GET"})
        denied = self.check_access(request)
        if denied is not None:
            return denied
        body = self.metadata.lookup(rest)
        if body is not None:
            return _text(body)
        if self.passthrough:
            raise Unfaked  # the server's fallback answers
        return error_page(404)

    def token(self, request: web.Request, version: str) -> web.Response:
        if request.method != "PUT":
            return error_page(405, {"Allow": "PUT"})
        if self.mode == "disabled" or version != "latest" or forwarded(request):
            return error_page(403)
        ttl = parse_ttl(request.headers.get(TOKEN_TTL_HEADER))
        if ttl is None:
            return error_page(400)
        token = self.tokens.issue(ttl)
        request[NOTE] = {"token": self.tokens.serial(token), "token_ttl": ttl}
        response = _text(token)
        response.headers[TOKEN_TTL_HEADER] = str(ttl)
        return response

    def check_access(self, request: web.Request) -> web.Response | None:
        if self.mode == "disabled":
            return error_page(403)
        token = request.headers.get(TOKEN_HEADER)
        if token is None:
            return error_page(401) if self.mode == "required" else None
        note = self.tokens.note(token)
        if note is not None:
            request[NOTE] = note
        return None if self.tokens.valid(token) else error_page(401)


def install(site: DialectSite) -> None:
    """Serve the AWS metadata paths; emit EventBridge events if the server has a sink."""
    options = cast(AwsOptions, site.options(AwsOptions()))
    metadata = AwsMetadata(site.plane, options, site.config.seed)
    tokens = TokenStore(site.plane, site.config.seed)
    handlers = AwsHandlers(metadata, tokens, site.config.imdsv2, site.has_fallback)
    site.add_route("*", "/", handlers.root)
    # Like EC2's service, repeated slashes count as one: //latest/meta-data//mac is answered.
    versioned = rf"/{{slashes:/*}}{{version:{_VERSION_PATTERN}}}{{rest:(/.*)?}}"
    site.add_route("*", versioned, handlers.versioned)
    site.plane.add_renderer(metadata.render_notice)
    emitter = None
    if site.config.events is not None:
        emitter = EventEmitter(site.plane, options, site.config.events, site.config.seed)
        site.plane.subscribe(emitter.on_change)
        site.on_cleanup(emitter.drain)  # events already on their way arrive before shutdown
        site.on_reset(emitter.forget)
    site.identity(AwsIdentity(metadata, emitter))


# -- EventBridge --------------------------------------------------------------------------------
class EventEmitter(NoticeDispatcher):
    """Sends one EventBridge event per spot or rebalance notice, when it is issued."""

    def __init__(
        self,
        plane: MetadataPlane,
        options: AwsOptions,
        sink: eventbridge.EventSink,
        seed: int,
    ) -> None:
        super().__init__(plane)
        self.options = options
        self.sink = sink
        self.seed = seed
        self._sent: set[str] = set()

    def on_change(self, notice: Notice) -> None:
        if notice.cloud != "aws" or notice.id in self._sent or not notice.visible(self.plane.now()):
            return
        event = self.event_for(notice)
        if event is None:
            return
        self._sent.add(notice.id)
        self.spawn(self.sink.send(event))

    def event_for(self, notice: Notice) -> dict[str, Any] | None:
        if notice.kind == "spot-interruption":
            detail_type = eventbridge.SPOT_WARNING
            detail = {"instance-id": self.options.instance_id, "instance-action": notice.action}
        elif notice.kind == "rebalance":
            detail_type = eventbridge.REBALANCE
            detail = {"instance-id": self.options.instance_id}
        else:
            return None
        return eventbridge.ec2_event(
            detail_type=detail_type,
            detail=detail,
            event_uuid=eventbridge.event_id(self.seed, notice.id, detail_type),
            time=self.plane.iso(notice.issued_at),
            account=self.options.account_id,
            region=self.options.region,
            instance_id=self.options.instance_id,
        )

    def forget(self) -> None:
        self._sent.clear()
