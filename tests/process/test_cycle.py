"""Real child processes through the whole cycle: notice, signals, SIGKILL, wipe, restart, checks."""

from __future__ import annotations

from tests.process.conftest import check, first, gone, kinds, run

WORKER = "target: {command: [python, targets/worker.py], ready: {log: working from}}"


def test_aws_terminate_notice_kill_wipe_restart_and_recover() -> None:
    result = run(
        f"""
        description: terminate with a grandchild in the group
        {WORKER}
        job: {{items: 24, seconds_per_item: 0.05, grandchild: true}}
        env: {{cloud: aws, imdsv2: required, replacement: {{delay: 300ms}}, budget: 40s}}
        timeline:
          - at: 400ms
            notice: {{action: terminate, lead: 1500ms}}
        expect: [saved_before_deadline, exactly_once, resume_correct, completes]
        """
    )
    assert result.status == "passed", result.error or [c.result for c in result.checks]
    history = result.history
    one = first(history, "instance.started", incarnation=1)
    two = first(history, "instance.started", incarnation=2)
    mine = [
        k
        for k in kinds(history, one.instance)
        if k
        in (
            "instance.started",
            "notice.issued",
            "job.stopped",
            "instance.exited",
            "notice.deadline",
            "instance.killed",
        )
    ]
    assert mine == [
        "instance.started",
        "notice.issued",
        "job.stopped",
        "instance.exited",
        "notice.deadline",
        "instance.killed",
    ]
    killed = first(history, "instance.killed")
    assert killed.data["reason"] == "deadline" and killed.data["local_wiped"] is True
    assert killed.seq < two.seq and two.data["local_dir"] != one.data["local_dir"]
    resumed = [e for e in history if e.kind == "job.resumed" and e.instance == two.instance]
    stopped = first(history, "job.stopped")
    assert resumed[0].data["position"] == stopped.data["position"] > 0
    # The sleep the first incarnation left in its group died with the group at the deadline.
    grandchild = first(history, "test.grandchild")
    assert grandchild.instance == one.instance and gone(int(grandchild.data["pid"]))
    ops = [e for e in history if e.kind == "storage.op"]
    assert ops and all(e.source == "storage" and e.data["observed"] == "proxy" for e in ops)
    assert {"s3.put_object", "s3.get_object"} <= {e.data["op"] for e in ops}


def test_kubernetes_sigterm_then_sigkill_of_a_process_that_ignores_it() -> None:
    # Six seconds of work: still running at the deadline, since Kubernetes keeps at least 2 s
    # between SIGTERM and SIGKILL whatever the grace asked (a 2 s job could finish first).
    result = run(
        f"""
        description: eviction, SIGTERM ignored
        {WORKER}
        job: {{items: 120, seconds_per_item: 0.05, poll: false, ignore_term: true}}
        env: {{cloud: kubernetes, replacement: {{delay: 300ms}}, budget: 20s}}
        timeline:
          - at: 300ms
            notice: {{grace: 1s}}
        expect: [saved_before_deadline]
        """
    )
    history = result.history
    signal = first(history, "signal.sent")
    deadline = first(history, "notice.deadline")
    killed = first(history, "instance.killed")
    assert signal.data["signal"] == "SIGTERM"
    assert first(history, "notice.issued").seq < signal.seq < deadline.seq < killed.seq
    assert killed.data["returncode"] == -9
    assert "test.sigterm" not in kinds(history)
    verdict = check(result, "saved_before_deadline")  # no checkpoint reports: black box
    assert verdict.status == "failed"
    assert "was still running at the deadline" in verdict.violations[0].message


def test_kubernetes_sigterm_reaches_a_handler_that_saves_and_exits() -> None:
    result = run(
        f"""
        description: eviction, SIGTERM handled
        {WORKER}
        job: {{items: 30, seconds_per_item: 0.05, poll: false, report: false}}
        env: {{cloud: kubernetes, replacement: {{delay: 300ms}}, budget: 30s}}
        timeline:
          - at: 400ms
            notice: {{grace: 1500ms}}
        expect: [saved_before_deadline]
        """
    )
    assert result.status == "passed", result.error or [c.result for c in result.checks]
    history = result.history
    assert first(history, "signal.sent").seq < first(history, "test.sigterm").seq
    saved = check(result, "saved_before_deadline")
    assert saved.evidence == ("lifecycle", "s3.ops")
    assert "stopped on its own" in saved.summary


def test_hibernation_freezes_the_group_and_keeps_the_disk() -> None:
    result = run(
        f"""
        description: hibernate
        {WORKER}
        job: {{items: 20, seconds_per_item: 0.05, poll: false, save_every_item: true}}
        env: {{cloud: aws, replacement: {{delay: 300ms}}, budget: 30s}}
        timeline:
          - at: 400ms
            notice: {{action: hibernate, lead: 1s}}
        expect: [durable]
        """
    )
    assert result.end_reason == "completed", result.error
    history = result.history
    issued = first(history, "notice.issued")
    frozen = first(history, "signal.sent", signal="SIGSTOP")
    killed = first(history, "instance.killed")
    assert issued.seq < frozen.seq < killed.seq
    assert killed.data["action"] == "hibernate" and killed.data["local_disk"] == "kept"
    one = first(history, "instance.started", incarnation=1)
    two = first(history, "instance.started", incarnation=2)
    assert two.data["local_dir"] == one.data["local_dir"]


def test_a_crash_at_a_storage_step_kills_before_the_request_reaches_s3() -> None:
    result = run(
        f"""
        description: crash at the third PutObject
        {WORKER}
        job: {{items: 12, seconds_per_item: 0.05, poll: false, save_every_item: true}}
        env: {{cloud: aws, replacement: {{delay: 300ms}}, budget: 30s}}
        timeline:
          - at: 0s
            crash: {{at: s3.put_object, nth: 3}}
        expect: [durable]
        """
    )
    assert result.end_reason == "completed", result.error
    history = result.history
    crash = first(history, "crash.point")
    killed = first(history, "instance.killed")
    assert crash.seq < killed.seq and killed.data["reason"] == "crash"
    puts = [
        e
        for e in history
        if e.kind == "storage.op"
        and e.instance == crash.instance
        and e.data["op"] == "s3.put_object"
    ]
    assert len(puts) == 2  # the third never reached storage
    assert first(history, "instance.started", incarnation=2).seq > killed.seq


def test_s3_errors_are_answered_by_the_proxy_and_recorded() -> None:
    result = run(
        f"""
        description: SlowDown on two PutObject
        {WORKER}
        job: {{items: 6, seconds_per_item: 0.05, poll: false}}
        env: {{cloud: aws, replacement: {{delay: 300ms}}, budget: 30s}}
        timeline:
          - at: 0s
            s3: {{error: SlowDown, ops: [s3.put_object], count: 2}}
        expect: [durable]
        """
    )
    refused = [e for e in result.history if e.kind == "storage.op" and e.data["status"] == 503]
    assert [(e.data["op"], e.data["status"], e.data["error"]) for e in refused[:2]] == [
        ("s3.put_object", 503, "SlowDown"),
        ("s3.put_object", 503, "SlowDown"),
    ]
    started = first(result.history, "fault.started")
    assert started.data["fault"] == "s3.error" and started.seq < refused[0].seq


def test_a_black_box_that_never_reads_the_notice_fails_on_what_the_harness_saw() -> None:
    result = run(
        f"""
        description: a black box that never polls
        {WORKER}
        job: {{items: 40, seconds_per_item: 0.05, poll: false, ignore_term: true, report: false}}
        env: {{cloud: aws, replacement: {{delay: 300ms}}, budget: 20s}}
        timeline:
          - at: 300ms
            notice: {{lead: 1s}}
        expect: [saved_before_deadline, detects_notice: {{within: 1s}}, durable]
        """
    )
    saved = check(result, "saved_before_deadline")
    assert saved.status == "failed" and "was still running at the deadline" in (
        saved.violations[0].message
    )
    detects = check(result, "detects_notice")
    assert detects.status == "failed" and "never read it" in detects.violations[0].message
    assert detects.evidence == ("imds.requests", "lifecycle")
    durable = check(result, "durable")
    assert durable.status == "unverified" and "reported no checkpoint" in durable.reason
    assert result.status == "failed"


def test_a_black_box_that_polls_is_judged_by_its_metadata_requests() -> None:
    result = run(
        f"""
        description: a black box that polls and saves
        {WORKER}
        job: {{items: 30, seconds_per_item: 0.05, report: false}}
        env: {{cloud: aws, imdsv2: required, replacement: {{delay: 300ms}}, budget: 30s}}
        timeline:
          - at: 400ms
            notice: {{lead: 1500ms}}
        expect: [saved_before_deadline, detects_notice: {{within: 1s}}, exactly_once,
                 resume_correct, durable]
        """
    )
    statuses = {c.spec.name: c.result.status for c in result.checks}
    assert statuses == {
        "saved_before_deadline": "passed",
        "detects_notice": "passed",
        "exactly_once": "passed",
        "resume_correct": "passed",
        "durable": "unverified",
    }
    assert result.status == "unverified"  # never a pass while a guarantee could not be judged


def test_resume_correct_compares_a_black_box_with_its_uninterrupted_run() -> None:
    result = run(
        f"""
        description: a black box that writes something else after a restart
        {WORKER}
        job: {{items: 20, seconds_per_item: 0.05, report: false, wrong_after_restart: true}}
        env: {{cloud: aws, replacement: {{delay: 300ms}}, budget: 30s}}
        timeline:
          - at: 400ms
            notice: {{lead: 1500ms}}
        expect: [resume_correct]
        """
    )
    verdict = check(result, "resume_correct")
    assert verdict.status == "failed"
    assert "differs from the uninterrupted run's" in verdict.violations[0].message
    assert verdict.evidence == ("golden", "storage.snapshot")


def test_a_target_that_dies_before_it_is_ready_is_an_error_with_its_output() -> None:
    result = run(
        """
        description: broken target
        target:
          command: [python, -c, "import sys; print('boom: no config'); sys.exit(3)"]
          ready: {log: never}
        env: {budget: 20s}
        expect: [durable]
        """
    )
    assert result.status == "error"
    assert result.error is not None
    assert "the target exited (exit status 3) before it was ready" in result.error
    assert "its last output: boom: no config" in result.error


def test_a_supervisor_on_aws_sends_the_stop_signal_with_the_notice() -> None:
    result = run(
        """
        description: aws with a supervisor
        target:
          command: [python, targets/worker.py]
          ready: {log: working from}
          supervisor: true
          stop_signal: SIGTERM
        job: {items: 40, seconds_per_item: 0.05, poll: false, report: false}
        env: {cloud: aws, replacement: {delay: 300ms}, budget: 30s}
        timeline:
          - at: 300ms
            notice: {lead: 1500ms}
        expect: [saved_before_deadline]
        """
    )
    history = result.history
    issued = first(history, "notice.issued")
    signal = first(history, "signal.sent")
    assert issued.seq < signal.seq < first(history, "test.sigterm").seq
    assert signal.data["signal"] == "SIGTERM"
    assert check(result, "saved_before_deadline").passed


def test_a_corrupted_output_is_found_against_the_uninterrupted_run() -> None:
    result = run(
        f"""
        description: bit rot in the newest output
        {WORKER}
        job: {{items: 12, seconds_per_item: 0.05, poll: false}}
        env: {{cloud: aws, replacement: {{delay: 300ms}}, budget: 30s}}
        timeline:
          - on: {{event: job.item_done, where: {{position: 6}}}}
            s3: {{corrupt: "outputs/*"}}
        expect: [exactly_once]
        """
    )
    corrupted = first(result.history, "fault.started")
    assert corrupted.data["fault"] == "s3.corrupt" and corrupted.data["params"]["key"]
    verdict = check(result, "exactly_once")
    assert verdict.status == "failed"
    assert "differ from the golden content" in verdict.violations[0].message


def test_an_approved_azure_event_ends_the_process_at_the_approval() -> None:
    result = run(
        """
        description: azure terminate, approved at once
        target: {command: [python, targets/azure_approver.py], ready: {log: working from}}
        job: {items: 10}
        env: {cloud: azure, budget: 4s}
        timeline:
          - at: 300ms
            notice: {kind: terminate, lead: 3s}
        expect: [durable]
        """
    )
    history = result.history
    issued = first(history, "notice.issued")
    approved = first(history, "notice.approved")
    deadline = first(history, "notice.deadline")
    killed = first(history, "instance.killed")
    assert issued.seq < approved.seq < deadline.seq < killed.seq
    assert approved.source == "harness" and approved.data["notice_id"] == issued.data["notice_id"]
    assert killed.t - issued.t < 2.0 < float(issued.data["deadline"]) - issued.t
