"""Builders for hand-written histories and snapshots: one good run, and ways to break it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from harness.checks import Blob, Golden, ObjectVersion, StorageSnapshot, sha256_digest
from harness.history import Event, History, Kind, Source

STATE = {p: f"state-{p}".encode() for p in range(0, 21)}
OUTPUT = b"embeddings 1..20"


class Story:
    """A history written by hand, with an explicit clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.history = History(time=lambda: self.now)

    def at(self, t: float) -> Story:
        self.now = t
        return self

    def record(self, source: Source, kind: str, instance: str | None, data: dict[str, Any]) -> None:
        # Appended directly: data may hold keys (``source``) that ``History.record`` reserves.
        events = self.history._events
        events.append(Event(len(events), self.now, source, kind, instance, MappingProxyType(data)))

    def harness(self, kind: str, instance: str | None = None, **data: Any) -> Story:
        self.record("harness", kind, instance, data)
        return self

    def target(self, kind: str, instance: str, **data: Any) -> Story:
        self.record("target", kind, instance, data)
        return self

    def op(self, instance: str, op: str, key: str, ok: bool = True) -> Story:
        self.record("harness", Kind.STORAGE_OP, instance, {"op": op, "key": key, "ok": ok})
        return self

    def items(self, instance: str, first: int, last: int, start: float, step: float = 1.0) -> Story:
        for n, position in enumerate(range(first, last + 1)):
            self.at(start + n * step).target(Kind.ITEM_DONE, instance, position=position)
        return self

    def checkpoint(
        self,
        instance: str,
        position: int,
        tier: str = "s3",
        t: float | None = None,
        checksum: str | None = None,
    ) -> Story:
        if t is not None:
            self.at(t)
        key = f"checkpoints/{position:06d}" if tier == "s3" else f"ckpt-{position}.bin"
        op = "s3.put_object" if tier == "s3" else "local.rename"
        self.op(instance, op, key)
        self.target(
            Kind.CHECKPOINT_DURABLE,
            instance,
            checkpoint_id=f"c{position}",
            tier=tier,
            position=position,
            key=key,
            checksum=checksum or sha256_digest(STATE[position]),
        )
        return self


@dataclass
class Run:
    story: Story
    versions: list[tuple[str, bytes | None]] = field(default_factory=list)
    uploads: list[tuple[str, str]] = field(default_factory=list)
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    golden: Golden = field(
        default_factory=lambda: Golden(
            items=20,
            outputs={"outputs/part-0000": sha256_digest(OUTPUT)},
            states={p: sha256_digest(s) for p, s in STATE.items()},
        )
    )

    @property
    def history(self) -> History:
        return self.story.history

    def snapshot(self) -> StorageSnapshot:
        counts: dict[str, int] = {}
        versions = []
        for key, data in self.versions:
            index = counts.get(key, 0)
            counts[key] = index + 1
            versions.append(
                ObjectVersion(
                    key=key,
                    version_id=f"v{key}{index}",
                    index=index,
                    is_latest=False,
                    delete_marker=data is None,
                    blob=None if data is None else Blob.of(data),
                )
            )
        from harness.checks import MultipartUpload

        return StorageSnapshot(
            bucket="bucket",
            versions=tuple(versions),
            uploads=tuple(MultipartUpload(key=k, upload_id=u) for k, u in self.uploads),
            files={d: {p: Blob.of(b) for p, b in f.items()} for d, f in self.files.items()},
        )


Tweak = Callable[[Story], None]


def good_run(
    *,
    before_notice: Tweak | None = None,
    emergency: Tweak | None = None,
    after_resume: Tweak | None = None,
    resume_at: int = 12,
    action: str = "terminate",
) -> Run:
    """Instance i-1 works to item 12, gets a 2-minute notice, saves to S3 and is killed at the
    deadline; i-2 resumes at 12 and finishes at 20, writing one output."""
    s = Story()
    s.at(0).harness(Kind.RUN_STARTED, scenario="good", seed=1)
    s.harness(Kind.INSTANCE_STARTED, "i-1", incarnation=1, cloud="aws", local_dir="/l/1")
    s.target(Kind.EPOCH, "i-1", epoch=1)
    s.target(Kind.RESUMED, "i-1", position=0, checkpoint_id=None, tier=None)
    s.items("i-1", 1, 10, start=1)
    s.checkpoint("i-1", 10, t=10.5)
    s.at(10.6).target(Kind.METADATA_COMMITTED, "i-1", checkpoint_id="c10", position=10, epoch=1)
    s.items("i-1", 11, 12, start=11)
    if before_notice:
        before_notice(s)
    s.at(12.5).harness(
        Kind.NOTICE_ISSUED,
        "i-1",
        notice_id="n-1",
        cloud="aws",
        notice_kind="spot",
        action=action,
        deadline=132.5,
    )
    s.at(15).target(Kind.NOTICE_SEEN, "i-1", source="aws", action=action, deadline=132.5)
    if emergency:
        emergency(s)
    else:
        s.checkpoint("i-1", 12, t=16)
        s.at(16.5).target(Kind.METADATA_COMMITTED, "i-1", checkpoint_id="c12", position=12, epoch=1)
        s.at(17).target(Kind.JOB_STOPPED, "i-1", position=12, reason="notice")
    s.at(132.5).harness(Kind.NOTICE_DEADLINE, "i-1", notice_id="n-1", action=action)
    s.harness(Kind.INSTANCE_KILLED, "i-1", reason="deadline")
    s.at(140).harness(
        Kind.INSTANCE_STARTED,
        "i-2",
        incarnation=2,
        cloud="aws",
        local_dir="/l/1" if action == "stop" else "/l/2",
    )
    s.target(Kind.EPOCH, "i-2", epoch=2)
    s.target(Kind.RESUMED, "i-2", position=resume_at, checkpoint_id=f"c{resume_at}", tier="s3")
    s.items("i-2", resume_at + 1, 20, start=141)
    if after_resume:
        after_resume(s)
    s.at(160).op("i-2", "s3.put_object", "outputs/part-0000")
    s.target(
        Kind.OUTPUT_COMMITTED,
        "i-2",
        key="outputs/part-0000",
        first=1,
        last=20,
        checksum=sha256_digest(OUTPUT),
    )
    s.checkpoint("i-2", 20, t=161)
    s.at(162).target(Kind.JOB_COMPLETED, "i-2", position=20)
    s.harness(Kind.INSTANCE_EXITED, "i-2", clean=True, error=None)
    s.harness(Kind.RUN_FINISHED, reason="completed")
    run = Run(story=s)
    run.versions = [
        ("checkpoints/000010", STATE[10]),
        ("checkpoints/000012", STATE[12]),
        ("checkpoints/000020", STATE[20]),
        ("outputs/part-0000", OUTPUT),
    ]
    return run
