"""Loading scenario YAML: the design's example, every error at once with positions, hints."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from harness.scenario import ScenarioError, load_paths, load_text
from harness.scenario.loader import LoadedScenario
from harness.scenario.model import Scenario
from harness.scenario.schema import scenario_schema

DESIGN_EXAMPLE = textwrap.dedent(
    """\
    description: A 2-minute notice lands while the second periodic checkpoint is uploading.
    seed: 7
    target: reference            # or {python: "pkg.module:factory"}
    job: {items: 2000, seconds_per_item: 0.5, checkpoint_every: 5m, state_size: 64MiB}
    env:
      cloud: aws
      imdsv2: required
      s3: {upload: 100MB/s}
    timeline:
      - on: {event: checkpoint.upload_started, nth: 2}
        notice: {action: terminate, lead: 2m}
      - at: 11m
        s3: {error: SlowDown, for: 30s}
    expect: [saved_before_deadline, exactly_once, resume_correct, durable,
             {lost_work: {at_most: 30s}}]
    """
)


def problems_of(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load_text(text, "s.yaml")
    return [str(p) for p in caught.value.problems]


def test_the_design_example_loads_into_typed_values() -> None:
    (loaded,) = load_text(DESIGN_EXAMPLE, "example.yaml")
    scenario = loaded.scenario
    assert scenario.seed == 7 and scenario.target.reference
    assert scenario.env.imdsv2 == "required" and scenario.env.s3.upload == 100e6
    first, second = scenario.timeline
    assert first.on is not None and (first.on.event, first.on.nth) == (
        "checkpoint.upload_started",
        2,
    )
    assert first.notice is not None and first.notice.lead == 120.0
    assert second.at == 660.0 and second.s3 is not None and second.s3.for_ == 30.0
    assert [c.label for c in scenario.expect][-1] == "lost_work(at_most=30s)"
    assert scenario.expect[-1].params == {"at_most": 30.0}


def test_every_node_keeps_its_position() -> None:
    (loaded,) = load_text(DESIGN_EXAMPLE, "example.yaml")
    assert str(loaded.mark(("timeline", 1, "s3", "for"))) == "example.yaml:13:32"
    assert str(loaded.mark(("timeline", 0, "notice"))) == "example.yaml:11:13"
    assert loaded.line == 1


def test_model_is_frozen() -> None:
    (loaded,) = load_text(DESIGN_EXAMPLE)
    with pytest.raises(Exception, match="frozen"):
        loaded.scenario.seed = 8


def test_seed_override_replaces_only_the_seed() -> None:
    (loaded,) = load_text(DESIGN_EXAMPLE)
    replayed = loaded.scenario.with_seed(42)
    assert replayed.seed == 42 and replayed.timeline == loaded.scenario.timeline
    assert loaded.scenario.with_seed(None) is loaded.scenario


def test_all_errors_are_reported_at_once_with_file_line_col_and_hints() -> None:
    text = textwrap.dedent(
        """\
        descripton: oops
        env:
          cloud: asw
          s3: {upload: fast}
        timeline:
          - at: 1m
            notice: {action: terminate, lead_time: 2m}
          - at: 2m
          - at: 3m
            crash: {at: s3.complete_multpart}
        expect: [exactly_one]
        """
    )
    assert problems_of(text) == [
        "s.yaml:1:1: the scenario needs `description`",
        "s.yaml:1:1: unknown key `descripton` in the scenario; did you mean `description`?",
        "s.yaml:3:10: `cloud` cannot be `asw`, expected one of: aws, gcp, azure, webhook, "
        "kubernetes; did you mean `aws`?",
        "s.yaml:4:16: expected a bandwidth such as 100MB/s or 1Gbit/s, got 'fast'",
        "s.yaml:7:33: unknown key `lead_time` in `notice`; did you mean `lead`?",
        "s.yaml:8:5: a timeline entry takes exactly one of `notice`, `kill`, `crash`, `imds`, "
        "`s3`, `redis`, `disk`, `clock`, `overlap`",
        next(p for p in problems_of(text) if p.startswith("s.yaml:10:17: unknown persistence")),
        next(p for p in problems_of(text) if p.startswith("s.yaml:11:10: unknown check")),
    ]
    assert problems_of(text)[-2].endswith("did you mean `s3.complete_multipart`?")
    assert problems_of(text)[-1].endswith("did you mean `exactly_once`?")


def test_semantic_rules_point_at_the_field() -> None:
    text = textwrap.dedent(
        """\
        description: x
        env: {cloud: azure}
        timeline:
          - at: 1m
            notice: {kind: preemt}
          - at: 2m
            notice: {kind: preempt, lead: 10s}
          - on: {event: checkpoint.upload_start}
            kill: {}
          - at: 3m
            notice: {action: stop}
        """
    )
    problems = problems_of(text)
    assert problems[0].startswith("s.yaml:5:20: unknown azure notice kind `preemt`")
    assert problems[0].endswith("did you mean `preempt`?")
    assert problems[1] == "s.yaml:7:35: Azure gives a Preempt at least 30s notice"
    assert problems[2] == (
        "s.yaml:8:17: unknown event `checkpoint.upload_start`; "
        "did you mean `checkpoint.upload_started`?"
    )
    assert problems[3] == "s.yaml:11:22: `stop` notices exist on aws, gcp, webhook, not on azure"


def test_custom_event_kinds_are_allowed_when_not_a_near_miss() -> None:
    text = "description: x\ntimeline:\n  - on: {event: trainer.epoch_end}\n    kill: {}\n"
    (loaded,) = load_text(text)
    assert loaded.scenario.timeline[0].on is not None


def test_reference_job_parameters_are_checked_with_a_hint() -> None:
    problems = problems_of("description: x\njob: {items: 10, itemz: 3}\n")
    assert problems[0].startswith("s.yaml:2:18: job: unknown job parameter(s) 'itemz'")
    assert problems[0].endswith("did you mean `items`?")


def test_job_problems_are_reported_with_the_other_problems() -> None:
    problems = problems_of(
        "description: x\njob: {items: 10, seconds_per_item: 1x}\nenv: {cloud: awz}\n"
    )
    assert len(problems) == 2
    assert problems[0].startswith("s.yaml:2:18: job: job.seconds_per_item: expected a duration")
    assert problems[1].startswith("s.yaml:3:14: `cloud` cannot be `awz`")


def test_yaml_syntax_error_has_a_position() -> None:
    assert problems_of("description: x\ntimeline: [\n") == [
        "s.yaml:3:1: not valid YAML: expected the node content in flow context, but got "
        "'<stream end>'"
    ] or problems_of("description: x\ntimeline: [\n")[0].startswith("s.yaml:3:1: not valid YAML")


def test_duplicate_keys_are_refused() -> None:
    problems = problems_of("description: x\nseed: 1\nseed: 2\n")
    assert problems == ["s.yaml:3:1: duplicate key `seed` (first at line 2); keep one"]


def test_on_is_a_key_not_yaml_1_1_true() -> None:
    (loaded,) = load_text("description: x\ntimeline:\n  - on: {event: job.completed}\n    kill:\n")
    entry = loaded.scenario.timeline[0]
    assert entry.on is not None and entry.kill is not None


def test_empty_file_and_non_mapping_are_explained() -> None:
    assert problems_of("") == [
        "s.yaml:1:1: no scenario here: the file is empty; start with `description:`"
    ]
    assert problems_of("- a\n- b\n")[0].startswith("s.yaml:1:1: a scenario is a mapping")


def test_multi_document_files_give_one_scenario_per_document() -> None:
    text = "description: one\n---\ndescription: two\nseed: 2\n"
    first, second = load_text(text, "multi.yaml")
    assert (first.name, second.name) == ("multi[1]", "multi[2]")
    assert (first.line, second.line) == (1, 3)


def test_load_paths_collects_directories_and_reports_missing_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.yaml").write_text("description: one\n")
    (tmp_path / "a" / "bad.yml").write_text("description: [\n")
    (tmp_path / "a" / "notes.txt").write_text("not a scenario")
    loaded, problems = load_paths([tmp_path / "a", tmp_path / "missing.yaml"])
    assert [item.name for item in loaded] == ["one"]
    assert [p.mark.file.rsplit("/", 1)[-1] for p in problems] == ["bad.yml", "missing.yaml"]


def test_durations_sizes_and_check_targets_share_the_units_grammar() -> None:
    text = textwrap.dedent(
        """\
        description: x
        target: {python: "tests.sim.probe:probe_target"}
        env: {budget: PT2H, disk: {write: 1Gbit/s}}
        timeline:
          - at: 1h30m
            clock: {skew: -90s}
          - at: 250ms
            s3: {bandwidth: 512KiB/s, for: 90}
        expect: [{completes: {within: 2h}}]
        """
    )
    (loaded,) = load_file_from_text(text)
    scenario = loaded.scenario
    assert scenario.env.budget == 7200.0 and scenario.env.disk.write == 125e6
    assert scenario.timeline[0].at == 5400.0
    assert scenario.timeline[0].clock is not None and scenario.timeline[0].clock.skew == -90.0
    assert scenario.timeline[1].s3 is not None and scenario.timeline[1].s3.bandwidth == 512 * 1024
    assert scenario.expect[0].params == {"within": 7200.0}


def load_file_from_text(text: str) -> list[LoadedScenario]:
    return load_text(text, "inline.yaml")


def test_known_bad_marking() -> None:
    text = 'description: x\nexpect: [durable, {exactly_once: {fails: "writes twice"}}]\n'
    (loaded,) = load_text(text)
    assert [c.name for c in loaded.scenario.known_bad] == ["exactly_once"]
    assert loaded.scenario.known_bad[0].fails == "writes twice"


def test_json_schema_accepts_the_example_and_rejects_a_typo() -> None:
    schema = scenario_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    example = yaml.safe_load(DESIGN_EXAMPLE.replace("- on:", "- 'on':"))
    assert list(validator.iter_errors(example)) == []
    example["timeline"][0]["notice"]["lead_time"] = "2m"
    assert any("lead_time" in e.message for e in validator.iter_errors(example))


def test_schema_covers_every_timeline_action() -> None:
    entry = scenario_schema()["$defs"]["TimelineEntry"]["properties"]
    assert {
        "at",
        "on",
        "notice",
        "kill",
        "crash",
        "imds",
        "s3",
        "redis",
        "disk",
        "clock",
        "overlap",
    } <= set(entry)
    assert json.dumps(scenario_schema())  # serialisable as is


def test_python_api_validation_matches_the_loader() -> None:
    with pytest.raises(ValueError, match="exactly one trigger"):
        Scenario.model_validate({"description": "x", "timeline": [{"kill": {}}]})
