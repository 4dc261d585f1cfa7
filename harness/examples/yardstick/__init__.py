"""The yardstick: seeded bugs the harness must catch, one realistic mistake each.

Every entry of :data:`VARIANTS` is a small variant of the reference runtime
(:mod:`.runtime_variants`) or of the careful user-style handler (:mod:`.handler_variants`) with
one bug in one place, usable as ``target: {python: "harness.examples.yardstick:<name>"}``. An
entry says what real-world failure the bug models, where it is, which check should catch it
(``caught_by``) and the cheapest evidence that catches it today: one library scenario
(``scenario``), an exploration budget and seed (``explore``), or both (each is replayed).
Entries with neither are not caught yet;
``missing`` names what the harness lacks. ``benchmarks/explore.py`` measures the kill rate;
``tests/explore/test_yardstick.py`` replays the recorded evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.examples.handlers.basic import handler_target
from harness.examples.handlers.careful import Careful
from harness.examples.yardstick import handler_variants as hv
from harness.examples.yardstick import runtime_variants as rv
from harness.runtime.runtime import Runtime
from harness.target import Target

Base = Literal["reference", "careful"]
PACKAGE = "harness.examples.yardstick"


@dataclass(frozen=True)
class ExploreBudget:
    """A search that finds the bug: ``harness explore --seed SEED --examples EXAMPLES``."""

    seed: int
    examples: int


@dataclass(frozen=True)
class Variant:
    name: str
    base: Base  # the reference runtime, or the careful handler
    area: str
    models: str  # the real-world failure, in a sentence or two
    where: str  # the class and method holding the bug
    caught_by: tuple[str, ...]  # the check(s) that should catch it
    scenario: str | None = None  # library scenario that catches it today (`library:` name)
    explore: ExploreBudget | None = None  # or an exploration that does
    missing: str = ""  # not caught yet: the check, strategy or evidence it needs

    @property
    def target(self) -> str:
        return f"{PACKAGE}:{self.name}"

    @property
    def caught_today(self) -> bool:
        return self.scenario is not None or self.explore is not None


def _r(cls: type[Runtime]) -> Target:
    return rv.runtime_target(cls)


def _h(cls: type[Careful]) -> Target:
    return handler_target(cls)


# -- targets (attribute name = variant name) ------------------------------------------------------
token_cached_forever = _r(rv.TokenCachedForever)
error_is_a_notice = _r(rv.ErrorIsANotice)
naive_notice_time = _r(rv.NaiveNoticeTime)
rebalance_is_termination = _r(rv.RebalanceIsTermination)
lifecycle_ignored = _r(rv.LifecycleIgnored)
margin_added_to_budget = _r(rv.MarginAddedToBudget)
deadline_assumed_two_minutes = _r(rv.DeadlineAssumedTwoMinutes)
deadline_on_calendar_scale = _r(rv.DeadlineOnCalendarScale)
just_in_time_save = _r(rv.JustInTimeSave)
shared_epoch = _r(rv.SharedEpoch)
manifest_without_condition = _r(rv.ManifestWithoutCondition)
manifest_not_claimed_on_recovery = _r(rv.ManifestNotClaimedOnRecovery)
delete_old_before_upload = _r(rv.DeleteOldBeforeUpload)
local_rotation_deletes_newest = _r(rv.LocalRotationDeletesNewest)
restore_without_digest = _r(rv.RestoreWithoutDigest)
restore_oldest_first = _r(rv.RestoreOldestFirst)
restore_newest_or_nothing = _r(rv.RestoreNewestOrNothing)
multipart_never_aborted = _r(rv.MultipartNeverAborted)
multipart_parts_reordered = _r(rv.MultipartPartsReordered)
multipart_without_last_part = _r(rv.MultipartWithoutLastPart)
recovery_gives_up_on_outage = _r(rv.RecoveryGivesUpOnOutage)
redis_decides_fresh_start = _r(rv.RedisDecidesFreshStart)
checkpoint_ahead_of_outputs = _r(rv.CheckpointAheadOfOutputs)
output_rewritten_on_resume = _r(rv.OutputRewrittenOnResume)
azure_approves_before_saving = _r(rv.AzureApprovesBeforeSaving)
azure_ignores_preempt = _r(rv.AzureIgnoresPreempt)
gcp_hanging_get_without_timeout = _r(rv.GcpHangingGetWithoutTimeout)
gcp_maintenance_is_preemption = _r(rv.GcpMaintenanceIsPreemption)
sigterm_grace_ignored = _r(rv.SigtermGraceIgnored)
exit_before_flush = _r(rv.ExitBeforeFlush)

careful_no_token_retry = _h(hv.NoTokenRetry)
careful_naive_spot_time = _h(hv.NaiveSpotTime)
careful_lifecycle_ignored = _h(hv.LifecycleIgnoredHandler)
careful_acts_30s_before = _h(hv.ActsThirtySecondsBefore)
careful_pointer_without_fence = _h(hv.PointerWithoutFence)
careful_unpadded_checkpoint_keys = _h(hv.UnpaddedCheckpointKeys)
careful_pointer_checksum_ignored = _h(hv.PointerTrustedWithoutChecksum)
careful_object_vouches_for_itself = _h(hv.ObjectVouchesForItself)
careful_recovery_gives_up = _h(hv.RecoveryGivesUp)
careful_checkpoint_before_outputs = _h(hv.CheckpointBeforeOutputs)
careful_delete_older_before_save = _h(hv.DeleteOlderBeforeSave)
careful_emergency_save_not_retried = _h(hv.EmergencySaveNotRetried)
careful_azure_preempt_ignored = _h(hv.AzurePreemptIgnoredHandler)
careful_gcp_no_timeout = _h(hv.GcpNoTimeoutHandler)
careful_sigterm_grace_assumed = _h(hv.SigtermGraceAssumedHandler)
careful_exit_before_flush = _h(hv.ExitBeforeFlushHandler)


def _variants(*entries: Variant) -> dict[str, Variant]:
    return {entry.name: entry for entry in entries}


_RV = "harness/examples/yardstick/runtime_variants.py"
_HV = "harness/examples/yardstick/handler_variants.py"

#: Every seeded bug, by name (the target attribute of this package).
VARIANTS: dict[str, Variant] = _variants(
    # -- reference runtime: the metadata monitor ----------------------------------------------
    Variant(
        "token_cached_forever",
        "reference",
        "metadata monitor: IMDSv2 token refresh",
        "A handler fetches the IMDSv2 token once and keeps it in a module-level cache: after "
        "its TTL every poll gets a 401, and the retry presents the same cached token, so the "
        "monitor goes blind for the rest of the run (a notice is never seen).",
        f"{_RV}: _TokenCachedForever._auth_headers",
        ("token_renewed", "saved_before_deadline", "detects_notice"),
        scenario="aws/imdsv2_token_expiry",
    ),
    Variant(
        "error_is_a_notice",
        "reference",
        "metadata monitor: 404 versus 200",
        "`if r.status_code != 404: shutdown()`: a 5xx, a throttled or timed-out poll of "
        "spot/instance-action is taken for a termination notice, and a healthy job stops.",
        f"{_RV}: _ErrorIsANotice._poll",
        ("works_through_advisory", "completes", "exactly_once"),
        scenario="aws/imds_throttled",
    ),
    Variant(
        "naive_notice_time",
        "reference",
        "metadata monitor: parsing the instance-action time",
        "The notice time (UTC) is compared with `datetime.utcnow()` (naive): the subtraction "
        "raises TypeError, the watcher dies, and the notice is never acted on.",
        f"{_RV}: _NaiveCalendar.now",
        ("saved_before_deadline",),
        scenario="aws/terminate_mid_job",
    ),
    Variant(
        "rebalance_is_termination",
        "reference",
        "metadata monitor: rebalance versus termination",
        "A rebalance recommendation is handled like the interruption notice: the job saves in "
        "a hurry and stops on a machine that may run for hours more.",
        f"{_RV}: _RebalanceIsTermination._report",
        ("works_through_advisory",),
        scenario="aws/rebalance_only",
    ),
    Variant(
        "lifecycle_ignored",
        "reference",
        "metadata monitor: ASG lifecycle",
        "Only the spot notice is watched: an Auto Scaling scale-in (target-lifecycle-state "
        "Terminated) takes the instance with the work since the last checkpoint.",
        f"{_RV}: _LifecycleIgnored._poll_slow",
        ("saved_before_deadline",),
        scenario="aws/asg_termination",
    ),
    # -- deadline logic -------------------------------------------------------------------------
    Variant(
        "margin_added_to_budget",
        "reference",
        "deadline: safety margin",
        "The safety margin is added to the time left instead of subtracted: an emergency "
        "upload that cannot finish is started, cancelling the one in flight that could.",
        f"{_RV}: MarginAddedToBudget._budget",
        ("saved_before_deadline", "lost_work"),
        scenario="gcp/preemption_during_upload",
    ),
    Variant(
        "deadline_assumed_two_minutes",
        "reference",
        "deadline: lead arithmetic",
        "The notice's time field is ignored and two minutes from when it was seen are "
        "assumed: a notice seen late (IMDS outage, slow poll) leaves less time than believed.",
        f"{_RV}: _FixedLead.run",
        ("detects_notice", "saved_before_deadline"),
        scenario="aws/imds_timeouts",
    ),
    Variant(
        "just_in_time_save",
        "reference",
        "deadline: deferring the save",
        "The emergency save is deferred until the upload estimate says it must start, in case "
        "the event is cancelled or moved (Azure and GCP events may be): S3 throttling that "
        "begins late in the lead, as when a whole zone saves at once, leaves no time.",
        f"{_RV}: JustInTimeSave._emergency",
        ("saved_before_deadline", "lost_work"),
        scenario="storage/s3_throttled_during_notice",
    ),
    Variant(
        "deadline_on_calendar_scale",
        "reference",
        "deadline: wrong clock",
        "The deadline is taken in epoch seconds and compared with the monotonic clock: every "
        "deadline looks years away, so saves that cannot finish are started anyway.",
        f"{_RV}: DeadlineOnCalendarScale._emergency",
        ("true_deadline", "saved_before_deadline", "lost_work"),
        scenario="gcp/preemption_during_upload",
    ),
    # -- fencing --------------------------------------------------------------------------------
    Variant(
        "shared_epoch",
        "reference",
        "fencing: epochs",
        "The replacement claims the newest epoch it finds instead of the next one: it shares "
        "its predecessor's epoch, so neither ever sees the other as superseded.",
        f"{_RV}: _ReadNotClaim.claim_epoch",
        ("fenced",),
        scenario="crash/overlap_superseded_instance",
    ),
    Variant(
        "manifest_without_condition",
        "reference",
        "fencing: conditional writes",
        "The S3 manifest is written without If-Match: while Redis cannot fence, a superseded "
        "instance overwrites its successor's manifest.",
        f"{_RV}: _UnconditionalManifest._put_manifest",
        ("fenced",),
        scenario="crash/split_brain_zombie",
    ),
    Variant(
        "manifest_not_claimed_on_recovery",
        "reference",
        "fencing: the takeover's stamp",
        "Recovery claims the new epoch in Redis but never stamps it on the S3 manifest: a "
        "superseded host cut off from Redis still holds the manifest's current ETag, so its "
        "conditional write after the takeover succeeds.",
        f"{_RV}: _NoManifestClaim._claim_manifest",
        ("fenced",),
        scenario="crash/split_brain_zombie",
    ),
    # -- rotation / retention -------------------------------------------------------------------
    Variant(
        "delete_old_before_upload",
        "reference",
        "checkpoint rotation: deleting the last valid one",
        "Older S3 checkpoints are deleted to make room before the new one is uploaded: until it "
        "lands, or forever if it fails, S3 holds no valid checkpoint.",
        f"{_RV}: _CleanFirstReplicator.attempt",
        ("durable",),
        scenario="aws/terminate_mid_job",
        explore=ExploreBudget(seed=1, examples=5),
    ),
    Variant(
        "local_rotation_deletes_newest",
        "reference",
        "checkpoint rotation: inverted retention filter",
        "Local retention deletes the files the manifest lists instead of those it no longer "
        "lists; with one listed it deletes the checkpoint just saved.",
        f"{_RV}: _InvertedRotation.rotate",
        ("durable",),
        scenario="aws/terminate_mid_job",
    ),
    # -- restore --------------------------------------------------------------------------------
    Variant(
        "restore_without_digest",
        "reference",
        "restore: no digest check",
        "The checkpoint is restored once its header parses, without comparing its SHA-256 "
        "with the manifest's: a damaged body with an intact header is resumed from.",
        f"{_RV}: _HeaderOnlyTier.verify",
        ("resume_correct",),
        scenario="storage/s3_corrupted_newest_checkpoint",
    ),
    Variant(
        "restore_oldest_first",
        "reference",
        "restore: wrong ordering of candidates",
        "The candidate checkpoints are sorted ascending: the job resumes from the oldest one "
        "kept and redoes the work since.",
        f"{_RV}: _OldestFirst._first_valid",
        ("resume_correct",),
        scenario="aws/terminate_mid_job",
    ),
    Variant(
        "restore_newest_or_nothing",
        "reference",
        "restore: newest pointer even when invalid",
        "Only the newest checkpoint named anywhere is tried; when it is damaged or missing the "
        "job starts over from item 0 although older valid ones exist.",
        f"{_RV}: _FirstOrNothing._first_valid",
        ("resume_correct",),
        scenario="storage/s3_corrupted_newest_checkpoint",
    ),
    # -- multipart ------------------------------------------------------------------------------
    Variant(
        "multipart_never_aborted",
        "reference",
        "multipart: no abort",
        "A multipart upload that failed or was cut short is never aborted: its parts stay in "
        "S3, invisible and billed.",
        f"{_RV}: _NoAbortTier.abort_or_remember",
        ("no_leaked_uploads",),
        scenario="aws/notice_during_checkpoint_upload",
    ),
    Variant(
        "multipart_parts_reordered",
        "reference",
        "multipart: wrong part order",
        "Parts are numbered in the order their uploads finished, not by offset: the object "
        "holds the state's chunks in the wrong order, and is reported durable.",
        f"{_RV}: _ReversedParts._upload_parts",
        ("durable", "resume_correct"),
        scenario="storage/materialized_multipart_checkpoint",
    ),
    Variant(
        "multipart_without_last_part",
        "reference",
        "multipart: complete without all parts",
        "CompleteMultipartUpload is sent with every full-size part but not the short last one: "
        "the object is truncated, and reported durable.",
        f"{_RV}: _LastPartDropped._upload_parts",
        ("durable", "resume_correct"),
        scenario="storage/materialized_multipart_checkpoint",
    ),
    # -- recovery -------------------------------------------------------------------------------
    Variant(
        "recovery_gives_up_on_outage",
        "reference",
        "recovery: gives up on an outage",
        "Recovery tries S3 three times, then takes the outage for an empty bucket and starts "
        "the job over from item 0.",
        f"{_RV}: _Impatient._patiently",
        ("resume_correct",),
        scenario="storage/s3_outage_during_recovery",
    ),
    Variant(
        "redis_decides_fresh_start",
        "reference",
        "recovery: restarts from 0",
        "Redis is asked whether the job ever ran: after Redis restarts empty, the job starts "
        "over from item 0 although S3 holds its checkpoints.",
        f"{_RV}: _RedisIsTruth._s3_candidates",
        ("resume_correct",),
        scenario="storage/redis_restarted_empty",
    ),
    Variant(
        "checkpoint_ahead_of_outputs",
        "reference",
        "recovery: outputs lost behind a checkpoint",
        "The checkpoint covers the position reached, not the newest one whose outputs are "
        "committed: an output that failed to upload is never written after a resume.",
        f"{_RV}: CheckpointAheadOfOutputs._advance",
        (
            "exactly_once",
            "completes",
        ),
        scenario="storage/notice_during_output_retries",
    ),
    Variant(
        "output_rewritten_on_resume",
        "reference",
        "recovery: double-counts outputs",
        "The last output is flushed again on resume, like a buffered writer re-emitting its "
        "last batch: the object gets a second version (a double count downstream).",
        f"{_RV}: OutputRewrittenOnResume._recover",
        ("exactly_once",),
        scenario="aws/notice_during_recovery",
    ),
    # -- Azure, GCP, Kubernetes -----------------------------------------------------------------
    Variant(
        "azure_approves_before_saving",
        "reference",
        "Azure: approval before the save",
        "The Scheduled Event is approved (StartRequests) as soon as it is seen: the platform "
        "may evict at once, before the state is saved.",
        f"{_RV}: _ApproveAtOnce._poll",
        (
            "approved_after_save",
            "saved_before_deadline",
            "lost_work",
        ),
        scenario="azure/preempt",
    ),
    Variant(
        "azure_ignores_preempt",
        "reference",
        "Azure: ignores the Preempt type",
        "Terminate and Redeploy events are handled, Preempt (the spot eviction) is not.",
        f"{_RV}: _PreemptIgnored._poll",
        ("saved_before_deadline", "detects_notice"),
        scenario="azure/preempt",
    ),
    Variant(
        "gcp_hanging_get_without_timeout",
        "reference",
        "GCP: no timeout on the hanging GET",
        "The wait_for_change GET is sent without a client timeout: a connection the metadata "
        "server drops silently hangs the watcher for good.",
        f"{_RV}: _NoTimeout._watch_once",
        (
            "client_timeout",
            "polls_within_lead",
        ),
        scenario="gcp/hanging_get_blackholed",
    ),
    Variant(
        "gcp_maintenance_is_preemption",
        "reference",
        "GCP: maintenance taken for preemption",
        "Any maintenance-event value but NONE is taken for a preemption: a live migration "
        "stops the job in a hurry.",
        f"{_RV}: _MaintenanceIsPreemption._watch_once",
        ("works_through_advisory", "completes"),
        scenario="gcp/maintenance_is_not_an_interruption",
    ),
    Variant(
        "sigterm_grace_ignored",
        "reference",
        "Kubernetes: ignores the SIGTERM grace period",
        "Kubernetes' default 30 s grace is assumed whatever terminationGracePeriodSeconds "
        "says: with a shorter one, a save that cannot end is started.",
        f"{_RV}: _DefaultGrace.__init__",
        ("detects_notice", "no_leaked_uploads"),
        scenario="kubernetes/short_grace_period",
    ),
    Variant(
        "exit_before_flush",
        "reference",
        "Kubernetes: exits before the flush",
        "On SIGTERM the checkpoint is written and the process exits without waiting for the "
        "upload: the exit kills it in flight.",
        f"{_RV}: ExitBeforeFlush._drain",
        ("saved_before_deadline",),
        scenario="kubernetes/eviction",
    ),
    # -- the careful handler --------------------------------------------------------------------
    Variant(
        "careful_no_token_retry",
        "careful",
        "metadata monitor: IMDSv2 token refresh",
        "The first IMDSv2 token is kept and never renewed after a 401 (the ec2-metadata "
        "package's behaviour): once it expires, every poll fails.",
        f"{_HV}: _OneTry.get",
        (
            "token_renewed",
            "saved_before_deadline",
            "detects_notice",
        ),
        scenario="aws/imdsv2_token_expiry",
    ),
    Variant(
        "careful_naive_spot_time",
        "careful",
        "metadata monitor: parsing the instance-action time",
        "The notice's time is parsed without its Z: subtracting it from an aware time raises, "
        "the AWS watcher task dies silently, the notice is never acted on.",
        f"{_HV}: _NaiveTimeWatcher._poll_spot",
        ("saved_before_deadline",),
        scenario="aws/terminate_mid_job",
    ),
    Variant(
        "careful_lifecycle_ignored",
        "careful",
        "metadata monitor: ASG lifecycle",
        "The Auto Scaling lifecycle state is never polled: a scale-in terminates the instance "
        "without a save.",
        f"{_HV}: _NoLifecycleWatcher._poll_slow",
        ("saved_before_deadline",),
        scenario="aws/asg_termination",
    ),
    Variant(
        "careful_acts_30s_before",
        "careful",
        "deadline: lead arithmetic",
        "The save is deferred until 30 s before the deadline, a margin tuned for a small "
        "state: a larger one, or a slow link, does not fit.",
        f"{_HV}: _ActLateWatcher.due",
        ("saved_before_deadline",),
        scenario="storage/s3_throttled_during_notice",
    ),
    Variant(
        "careful_pointer_without_fence",
        "careful",
        "fencing: epochs",
        "The latest pointer is moved with a plain HSET, not a compare-and-set on the epoch: an "
        "instance that was replaced keeps moving it.",
        f"{_HV}: PointerWithoutFence.move_pointer",
        ("fenced",),
        scenario="crash/overlap_superseded_instance",
    ),
    Variant(
        "careful_unpadded_checkpoint_keys",
        "careful",
        "restore: wrong ordering of candidates",
        "Checkpoint keys carry the position without zero-padding and are sorted as text: "
        "`90-...` sorts after `540-...`, so an old checkpoint is resumed from.",
        f"{_HV}: UnpaddedCheckpointKeys.checkpoint_key",
        ("resume_correct",),
        scenario="crash/hard_kill_without_notice",
    ),
    Variant(
        "careful_pointer_checksum_ignored",
        "careful",
        "restore: no digest check",
        "The checkpoint the pointer names is loaded without comparing it with the pointer's "
        "checksum: a replaced or rolled-back body whose own self-check passes is resumed from.",
        f"{_HV}: PointerTrustedWithoutChecksum.load",
        ("resume_correct",),
        scenario="storage/s3_stale_checkpoint_on_restore",
    ),
    Variant(
        "careful_object_vouches_for_itself",
        "careful",
        "restore: the object's own digest",
        "Each checkpoint's SHA-256 is stored in the object's own metadata and a download is "
        "checked against that, not against the pointer: a whole object served stale (a replica "
        "behind a failover, a restore from an old backup) brings a digest that matches it.",
        f"{_HV}: ObjectVouchesForItself.load",
        ("resume_correct",),
        scenario="storage/s3_stale_checkpoint_on_restore",
    ),
    Variant(
        "careful_recovery_gives_up",
        "careful",
        "recovery: gives up on an outage",
        "The checkpoints are listed once; if S3 does not answer, the job starts over from 0.",
        f"{_HV}: RecoveryGivesUp.resume",
        ("resume_correct",),
        scenario="storage/s3_outage_during_recovery",
    ),
    Variant(
        "careful_checkpoint_before_outputs",
        "careful",
        "recovery: outputs lost behind a checkpoint",
        "A checkpoint is taken without waiting for the outputs it covers: an output whose "
        "upload failed is never written once a resume skips past it.",
        f"{_HV}: CheckpointBeforeOutputs.outputs_written",
        ("exactly_once",),
        scenario="storage/s3_slowdown_during_emergency_save",
    ),
    Variant(
        "careful_delete_older_before_save",
        "careful",
        "checkpoint rotation: deleting the last valid one",
        "Older checkpoints are deleted before the new one is written (keep one, save space): "
        "while it uploads, S3 holds no checkpoint at all.",
        f"{_HV}: DeleteOlderBeforeSave.save",
        ("durable",),
        scenario="aws/terminate_mid_job",
    ),
    Variant(
        "careful_emergency_save_not_retried",
        "careful",
        "deadline: no retry when it matters",
        "Periodic saves are retried, an emergency save gets a single attempt: one throttled "
        "request and the work since the last checkpoint is lost.",
        f"{_HV}: EmergencySaveNotRetried.patience",
        ("saved_before_deadline",),
        scenario="storage/s3_slowdown_during_emergency_save",
    ),
    Variant(
        "careful_azure_preempt_ignored",
        "careful",
        "Azure: ignores the Preempt type",
        "Terminate events are handled, Preempt (the spot eviction) is not.",
        f"{_HV}: _NoPreemptWatcher._azure_events",
        ("saved_before_deadline", "detects_notice"),
        scenario="azure/preempt",
    ),
    Variant(
        "careful_gcp_no_timeout",
        "careful",
        "GCP: no timeout on the hanging GET",
        "The hanging GET on instance/preempted has no timeout at all: a connection dropped "
        "silently leaves the watcher waiting forever.",
        f"{_HV}: _HangingWatcher.watch_gcp",
        ("client_timeout",),
        scenario="gcp/hanging_get_blackholed",
    ),
    Variant(
        "careful_sigterm_grace_assumed",
        "careful",
        "Kubernetes: ignores the SIGTERM grace period",
        "30 s of grace after SIGTERM are assumed whatever the pod's grace period: with a "
        "shorter one the save is deferred and the pod is killed first.",
        f"{_HV}: _DefaultGraceWatcher.watch_signals",
        ("detects_notice", "saved_before_deadline"),
        scenario="kubernetes/short_grace_period",
    ),
    Variant(
        "careful_exit_before_flush",
        "careful",
        "Kubernetes: exits before the flush",
        "On SIGTERM the handler stops at once and leaves the state to a shutdown hook that "
        "never runs: the work since the last checkpoint is lost.",
        f"{_HV}: ExitBeforeFlushHandler.on_notice",
        ("saved_before_deadline",),
        scenario="kubernetes/eviction",
    ),
)
