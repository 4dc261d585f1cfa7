"""The runner: instances come and go as the timeline says, and the history shows it in order."""

from __future__ import annotations

from pytest import MonkeyPatch, approx

from harness.history import Kind
from harness.scenario.loader import load_text
from harness.sim.runner import run_scenario
from tests.sim.conftest import kinds, run


def test_uninterrupted_run_completes_on_one_instance() -> None:
    result = run()
    assert result.status == "passed"
    assert result.end_reason == "completed"
    order = [
        e.kind
        for e in kinds(
            result,
            Kind.RUN_STARTED,
            Kind.INSTANCE_STARTED,
            Kind.JOB_COMPLETED,
            Kind.INSTANCE_EXITED,
            Kind.RUN_FINISHED,
        )
    ]
    assert order == [
        Kind.RUN_STARTED,
        Kind.INSTANCE_STARTED,
        Kind.JOB_COMPLETED,
        Kind.INSTANCE_EXITED,
        Kind.RUN_FINISHED,
    ]
    assert kinds(result, Kind.JOB_COMPLETED)[0].t == approx(120.0)  # 12 items of 10 s


def test_same_scenario_and_seed_give_byte_identical_history() -> None:
    timeline = [
        {"at": "45s", "notice": {"action": "terminate", "lead": "30s"}},
        {"at": "3m", "s3": {"error": "SlowDown", "for": "20s"}},
    ]
    first, second = run(timeline), run(timeline)
    assert first.history.to_jsonl() == second.history.to_jsonl()
    assert len(first.history) > 50
    other_seed = run(timeline, seed=4)
    assert other_seed.history.to_jsonl() != first.history.to_jsonl()  # instance ids differ


def test_terminate_notice_ends_the_instance_at_its_deadline_and_wipes_its_disk() -> None:
    result = run([{"at": "45s", "notice": {"action": "terminate", "lead": "30s"}}])
    issued = kinds(result, Kind.NOTICE_ISSUED)[0]
    assert issued.t == 45.0 and issued.data["deadline"] == 75.0
    seen = next(e for e in kinds(result, "probe.imds") if e.data["status"] == 200)
    assert kinds(result, "probe.imds")[0].data["status"] == 404
    assert '"action": "terminate"' in seen.data["body"] and seen.t == 45.0
    killed = kinds(result, Kind.INSTANCE_KILLED)[0]
    assert (killed.t, killed.data["reason"], killed.data["local_wiped"]) == (75.0, "deadline", True)
    first, second = kinds(result, Kind.INSTANCE_STARTED)
    assert second.t == 105.0  # the replacement delay after the deadline
    assert second.data["incarnation"] == 2 and second.instance != first.instance
    assert second.data["local_dir"] != first.data["local_dir"]
    assert kinds(result, Kind.RESUMED)[1].data["position"] == 7  # what reached S3 before 75 s
    assert result.snapshot is not None and result.snapshot.files[first.data["local_dir"]] == {}


def test_stop_keeps_the_local_disk_for_the_next_incarnation() -> None:
    result = run([{"at": "45s", "notice": {"action": "stop", "lead": "30s"}}])
    first, second = kinds(result, Kind.INSTANCE_STARTED)
    assert second.data["local_dir"] == first.data["local_dir"]
    assert kinds(result, Kind.INSTANCE_KILLED)[0].data["local_wiped"] is False
    assert result.snapshot is not None
    assert result.snapshot.files[first.data["local_dir"]]["position"].data == b"12"


def test_hibernate_ends_the_instance_at_once() -> None:
    result = run([{"at": "45s", "notice": {"action": "hibernate"}}])
    killed = kinds(result, Kind.INSTANCE_KILLED)[0]
    assert killed.t == 45.0 and killed.data["action"] == "hibernate"


def test_hard_kill_comes_without_notice() -> None:
    result = run([{"at": "55s", "kill": {}}])
    assert kinds(result, Kind.NOTICE_ISSUED) == []
    killed = kinds(result, Kind.INSTANCE_KILLED)[0]
    assert (killed.t, killed.data["reason"]) == (55.0, "hard_kill")
    assert len(kinds(result, Kind.INSTANCE_STARTED)) == 2


def test_on_trigger_fires_after_the_nth_event_plus_delay() -> None:
    trigger = {"event": "job.item_done", "nth": 3, "delay": "5s"}
    result = run([{"on": trigger, "kill": {}}])
    third = kinds(result, Kind.ITEM_DONE)[2]
    killed = kinds(result, Kind.INSTANCE_KILLED)[0]
    assert (third.t, killed.t) == approx((30.0, 35.0))


def test_on_trigger_can_match_event_data() -> None:
    trigger = {"event": "job.item_done", "where": {"position": 5}}
    result = run([{"on": trigger, "kill": {}}])
    assert kinds(result, Kind.INSTANCE_KILLED)[0].t == approx(50.0)


def test_crash_point_ends_the_instance_before_the_nth_step() -> None:
    result = run([{"at": 0, "crash": {"at": "s3.put_object", "nth": 2}}])
    puts = [e for e in kinds(result, Kind.STORAGE_OP) if e.data["op"] == "s3.put_object"]
    assert puts[0].data["ok"] is True and puts[1].data["error"] == "crash"
    killed = kinds(result, Kind.INSTANCE_KILLED)[0]
    assert killed.data["reason"] == "crash" and killed.t == puts[1].t
    # The crashed step never happened: the next incarnation resumes from the first put.
    assert kinds(result, Kind.RESUMED)[1].data["position"] == 1
    # A process crash keeps the machine's disk.
    first, second = kinds(result, Kind.INSTANCE_STARTED)
    assert second.data["local_dir"] == first.data["local_dir"]


def test_overlap_keeps_the_superseded_instance_running_after_its_replacement_starts() -> None:
    result = run(
        [
            {"at": 0, "overlap": {"for": "40s"}},
            {"at": "45s", "notice": {"action": "terminate", "lead": "30s"}},
        ],
        job={"items": 30, "step": 10},
    )
    first, second = kinds(result, Kind.INSTANCE_STARTED)
    superseded = kinds(result, "instance.superseded")[0]
    assert superseded.t == 75.0 and superseded.instance == first.instance
    assert second.t == 105.0
    killed = kinds(result, Kind.INSTANCE_KILLED)[0]
    assert (killed.instance, killed.t, killed.data["reason"]) == (
        first.instance,
        145.0,
        "superseded",
    )
    late_work = [
        e
        for e in kinds(result, Kind.ITEM_DONE)
        if e.instance == first.instance and second.t < e.t < killed.t
    ]
    assert late_work, "the old instance kept working beside its replacement"


def test_a_replacement_booted_from_a_zombies_trigger_outlives_the_zombie() -> None:
    """Found by explore: a notice fired by the old instance's own event scheduled, through its
    deadline, the replacement's boot in that instance's context, so the replacement's process
    belonged to the zombie and ended with it at the end of the overlap (a clean exit with the
    job half done). The world's timers and tasks belong to no instance."""
    result = run(
        [
            {"at": 0, "overlap": {"for": "40s"}},
            {"on": {"event": "job.item_done", "nth": 2}, "notice": {"lead": "30s"}},
        ],
        job={"items": 30, "step": 10},
    )
    first, second = kinds(result, Kind.INSTANCE_STARTED)[:2]
    killed = kinds(result, Kind.INSTANCE_KILLED)[0]
    assert (killed.instance, killed.data["reason"]) == (first.instance, "superseded")
    ended = [
        (e.kind, e.instance)
        for e in kinds(result, Kind.INSTANCE_EXITED, Kind.INSTANCE_KILLED, Kind.JOB_COMPLETED)
    ]
    assert ended == [
        (Kind.INSTANCE_KILLED, first.instance),
        (Kind.JOB_COMPLETED, second.instance),
        (Kind.INSTANCE_EXITED, second.instance),
    ]
    assert result.end_reason == "completed"


def test_budget_ends_a_run_that_cannot_complete() -> None:
    result = run(env={"budget": "1m"}, expect=["durable"])
    assert result.end_reason == "budget"
    assert kinds(result, Kind.RUN_FINISHED)[0].t == 60.0


def test_replacement_can_come_up_on_another_cloud() -> None:
    result = run(
        [{"at": "45s", "notice": {"lead": "30s"}}],
        env={"cloud": "aws", "replacement": {"delay": "10s", "cloud": "gcp"}},
    )
    clouds = [e.data["cloud"] for e in kinds(result, Kind.INSTANCE_STARTED)]
    assert clouds == ["aws", "gcp"]


def test_a_failing_expectation_names_the_check() -> None:
    result = run(expect=[{"completes": {"within": "1m"}}])
    assert result.status == "failed"
    assert [c.spec.name for c in result.failed_checks] == ["completes"]


def test_known_bad_expectation_is_xfailed_and_an_unexpected_pass_is_xpassed() -> None:
    bad = run(expect=[{"completes": {"within": "1m", "fails": "too slow on purpose"}}])
    assert bad.status == "xfailed" and bad.ok
    good = run(expect=[{"completes": {"within": "1h", "fails": "claims to be slow"}}])
    assert good.status == "xpassed" and not good.ok


def test_an_unimportable_target_is_a_run_error_not_a_crash() -> None:
    from harness.scenario import load_text
    from harness.sim.runner import run_scenario

    text = "description: x\ntarget: {python: 'no_such_module_xyz:target'}\n"
    result = run_scenario(load_text(text)[0].scenario)
    assert result.status == "error" and "no_such_module_xyz" in (result.error or "")


def test_reference_runtime_runs_are_byte_identical_too() -> None:
    from harness.scenario import load_text
    from harness.sim.runner import run_scenario

    text = """\
description: reference target, notice during an upload
seed: 9
job: {items: 240, seconds_per_item: 1s, checkpoint_every: 1m, state_size: 64MiB}
timeline:
  - on: {event: checkpoint.upload_started, nth: 2}
    notice: {action: terminate, lead: 30s}
"""
    scenario = load_text(text)[0].scenario
    first, second = run_scenario(scenario), run_scenario(scenario)
    assert first.status == "passed", [c.result.violations for c in first.failed_checks]
    assert first.history.to_jsonl() == second.history.to_jsonl()
    assert len(kinds(first, Kind.INSTANCE_STARTED)) == 2


async def _quitter(ctx: object) -> None:
    """Exits at once without finishing: every incarnation gives up."""


async def _crasher(ctx: object) -> None:
    raise RuntimeError("bug in the handler")


def test_a_target_that_never_finishes_uses_up_its_instances() -> None:
    from harness.checks import Golden
    from harness.scenario import load_text
    from harness.sim.runner import run_scenario

    text = "description: x\nenv: {max_instances: 3, replacement: {delay: 10s}}\nexpect: []\n"
    result = run_scenario(load_text(text)[0].scenario, target=_quitter, golden=Golden())
    assert result.end_reason == "gave_up"
    starts = kinds(result, Kind.INSTANCE_STARTED)
    assert [e.t for e in starts] == [0.0, 10.0, 20.0]
    assert all(e.data["clean"] for e in kinds(result, Kind.INSTANCE_EXITED))


def test_a_target_exception_is_recorded_and_the_next_instance_boots() -> None:
    from harness.checks import Golden
    from harness.scenario import load_text
    from harness.sim.runner import run_scenario

    text = "description: x\nenv: {max_instances: 2}\nexpect: []\n"
    result = run_scenario(load_text(text)[0].scenario, target=_crasher, golden=Golden())
    exits = kinds(result, Kind.INSTANCE_EXITED)
    assert [(e.data["clean"], e.data["error"]) for e in exits] == [
        (False, "RuntimeError: bug in the handler"),
        (False, "RuntimeError: bug in the handler"),
    ]


def test_a_crashing_check_is_a_run_error_not_a_traceback(monkeypatch: MonkeyPatch) -> None:
    import harness.sim.runner as runner

    def broken(*args: object) -> None:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(runner, "evaluate", broken)
    result = run()
    assert result.status == "error" and result.error == "a check crashed: ZeroDivisionError: oops"
    assert result.sim_seconds > 0 and len(result.history) > 10


async def _stubborn(ctx: object) -> None:
    """Swallows every cancellation: the run must still end."""
    import asyncio

    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            continue


def test_a_target_that_swallows_cancellation_cannot_hang_the_run() -> None:
    from harness.checks import Golden
    from harness.scenario import load_text
    from harness.sim.runner import run_scenario

    text = "description: x\nenv: {budget: 1h}\nexpect: []\n"
    result = run_scenario(load_text(text)[0].scenario, target=_stubborn, golden=Golden())
    assert result.end_reason == "budget"
    assert [e.kind for e in result.history][-1] == "instance.unkillable"


def test_a_notice_of_the_first_cloud_skips_a_replacement_running_on_another() -> None:
    """Validated against `env.cloud`; the instance up when it fires is the replacement's cloud.
    (Found by `harness explore --seed 1`: it used to end the run in an error.)"""
    from harness.scenario import load_text
    from harness.sim.runner import run_scenario

    text = """
description: a GCP preemption after the GCP machine died and an AWS one replaced it
seed: 0
target: reference
job: {items: 120, seconds_per_item: 1s, checkpoint_every: 90s, state_size: 64MiB}
env: {cloud: gcp, replacement: {delay: 5s, cloud: aws}}
timeline:
  - at: 0s
    kill: {}
  - at: 6s
    notice: {kind: preemption}
expect: [exactly_once, durable, completes]
"""
    (loaded,) = load_text(text)
    result = run_scenario(loaded.scenario)
    assert result.error is None and result.status == "passed"
    (skipped,) = result.history.of_kind("timeline.skipped")
    assert skipped.data["reason"].startswith("a `preemption` notice does not exist on aws")


def test_an_azure_reboot_keeps_the_vm_disk_as_a_stop_does() -> None:
    """Found by explore: an Azure Reboot restarts the VM on its host, its temporary disk kept;
    played as a termination it wiped the disk the handler had rightly saved to."""
    result = run(
        [{"at": "45s", "notice": {"kind": "reboot", "lead": "30s"}}],
        env={"cloud": "azure", "replacement": {"delay": "10s"}},
        job={"items": 30, "step": 10},
    )
    (issued,) = kinds(result, Kind.NOTICE_ISSUED)
    assert (issued.data["notice_kind"], issued.data["action"]) == ("reboot", "stop")
    killed = kinds(result, Kind.INSTANCE_KILLED)[0]
    assert (killed.data["action"], killed.data["local_disk"]) == ("stop", "kept")
    first, second = kinds(result, Kind.INSTANCE_STARTED)[:2]
    assert second.data["local_dir"] == first.data["local_dir"]


def test_a_notice_written_for_aws_reaches_a_kubernetes_pod_with_the_grace_it_was_told() -> None:
    """Found by explore: an AWS hibernation (0 s of lead) landing on a Kubernetes replacement
    became an eviction with a 2 s grace while the pod had been told 30 s; the grace of an
    eviction is the pod's own."""
    result = run(
        [
            {"at": "45s", "notice": {"lead": "30s"}},
            {"at": "90s", "notice": {"action": "hibernate", "lead": "0s"}},
        ],
        env={"cloud": "aws", "replacement": {"delay": "10s", "cloud": "kubernetes"}},
        job={"items": 30, "step": 10},
    )
    evicted = kinds(result, Kind.NOTICE_ISSUED)[1]
    assert (evicted.data["cloud"], evicted.data["action"]) == ("kubernetes", "terminate")
    assert evicted.data["deadline"] - evicted.t == approx(30.0)


def test_a_foreign_notice_on_a_kubernetes_pod_takes_the_grace_the_pod_was_told() -> None:
    """The pod is told the grace of the scenario's own Kubernetes eviction (10 s here, not the
    default 30 s): a notice written for AWS that lands on it takes that grace too."""
    result = run(
        [
            {"at": "45s", "notice": {"lead": "30s"}},
            {"at": "90s", "notice": {"action": "hibernate", "lead": "0s"}},
            {"at": "200s", "notice": {"cloud": "kubernetes", "grace": "10s"}},
        ],
        env={"cloud": "aws", "replacement": {"delay": "10s", "cloud": "kubernetes"}},
        job={"items": 60, "step": 10},
    )
    issued = kinds(result, Kind.NOTICE_ISSUED)
    assert [(e.data["cloud"], e.data["deadline"] - e.t) for e in issued[1:]] == [
        ("kubernetes", approx(10.0)),
        ("kubernetes", approx(10.0)),
    ]


def test_a_target_that_never_lets_time_pass_ends_its_run_with_an_error_naming_it() -> None:
    """Found by explore: a GCP watcher that asks again at once, with no pause, when it gets an
    error answer spun at one virtual instant and the run never ended. The loop counts its
    iterations at one instant; past the bound the run ends in an error that says so."""
    from harness.scenario.model import TargetSpec
    from harness.sim.runner import TargetStalled

    (loaded,) = load_text(
        "description: spins\nseed: 0\njob: {items: 10}\nexpect: [exactly_once]\n", file="<t>"
    )
    scenario = loaded.scenario.model_copy(
        update={"target": TargetSpec(python="tests.sim.observed_targets:spins_on_refusal")}
    )
    result = run_scenario(scenario)
    assert result.status == "error"
    assert result.error is not None and result.error.startswith(TargetStalled.__name__)
    assert "at t=5s without letting virtual time pass" in result.error
    assert result.history.of_kind(Kind.RUN_FINISHED)[-1].data["reason"] == "error"


def test_the_tasks_a_process_leaves_end_in_the_order_they_started() -> None:
    """At its exit the process's remaining tasks are cancelled, and their handlers run, in the
    order they started; the order of their memory addresses (a set's) differed from process to
    process and made runs of one schedule differ (found by explore's coverage steering)."""
    import asyncio

    from harness.checks import Golden
    from harness.scenario import load_text
    from harness.sim.runner import run_scenario

    ended: list[int] = []

    async def helper(index: int) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            ended.append(index)
            raise

    async def leaves_tasks(ctx: object) -> None:
        started = [asyncio.ensure_future(helper(index)) for index in range(40)]
        await asyncio.sleep(1)  # every helper is waiting when the process exits
        assert not any(task.done() for task in started)

    text = "description: x\nenv: {max_instances: 1}\nexpect: []\n"
    run_scenario(load_text(text)[0].scenario, target=leaves_tasks, golden=Golden())
    assert ended == list(range(40))
