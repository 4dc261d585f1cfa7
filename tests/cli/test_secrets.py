"""No secret is ever logged or printed: IMDSv2 tokens, control tokens, agent tokens and the
instance credentials stay out of the request log, the CLI's output and its error messages."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from fake_imds.sync import SyncFakeImds
from harness.cli import EXIT_ENVIRONMENT, main

CONTROL_TOKEN = "control-7f3a9c1e5b2d"
WRONG_TOKEN = "wrong-0d9e8f7a6b5c"
CREDENTIALS = "/latest/meta-data/iam/security-credentials/"


def test_the_request_log_records_no_token_and_no_credentials(
    fake_imds_factory: Callable[..., SyncFakeImds],
) -> None:
    imds = fake_imds_factory(imdsv2="required", control_token=CONTROL_TOKEN)
    put = requests.put(
        imds.url + "/latest/api/token",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"},
        timeout=5,
    )
    imds_token = put.text
    headers = {"X-aws-ec2-metadata-token": imds_token}
    role = requests.get(imds.url + CREDENTIALS, headers=headers, timeout=5).text.strip()
    credentials = requests.get(imds.url + CREDENTIALS + role, headers=headers, timeout=5).json()
    control = {"Authorization": f"Bearer {CONTROL_TOKEN}"}
    log = requests.get(imds.url + "/_harness/v1/requests", headers=control, timeout=5)

    assert log.status_code == 200
    served = [(r["method"], r["path"], r["status"]) for r in log.json()["requests"]]
    assert served[:3] == [
        ("PUT", "/latest/api/token", 200),
        ("GET", CREDENTIALS, 200),
        ("GET", CREDENTIALS + role, 200),
    ]
    for secret in (
        imds_token,
        CONTROL_TOKEN,
        credentials["SecretAccessKey"],
        credentials["Token"],
    ):
        assert secret and secret not in log.text


def test_a_refused_control_token_is_not_echoed(
    fake_imds_factory: Callable[..., SyncFakeImds], capsys: pytest.CaptureFixture[str]
) -> None:
    imds = fake_imds_factory(control_token=CONTROL_TOKEN)
    answer = requests.get(
        imds.url + "/_harness/v1/notices",
        headers={"Authorization": f"Bearer {WRONG_TOKEN}"},
        timeout=5,
    )
    assert answer.status_code == 401 and WRONG_TOKEN not in answer.text

    argv = ["notice", "--url", imds.url, "--token", WRONG_TOKEN, "--lead", "2m"]
    assert main(argv) == EXIT_ENVIRONMENT
    out = capsys.readouterr()
    assert "HTTP 401" in out.err
    assert WRONG_TOKEN not in out.out + out.err


def test_inject_through_the_agent_never_prints_its_token(
    fake_imds_factory: Callable[..., SyncFakeImds], capsys: pytest.CaptureFixture[str]
) -> None:
    imds = fake_imds_factory(control_token=CONTROL_TOKEN)
    target = ["inject", "--target", imds.url, "--no-wait"]

    assert main([*target, "--token", CONTROL_TOKEN, "--dry-run"]) == 0
    out = capsys.readouterr()
    assert "token    given (not shown)" in out.out
    assert CONTROL_TOKEN not in out.out + out.err

    assert main([*target, "--token", WRONG_TOKEN, "--yes"]) == EXIT_ENVIRONMENT
    out = capsys.readouterr()
    assert "refused the token (401)" in out.err
    assert WRONG_TOKEN not in out.out + out.err

    assert main([*target, "--token", CONTROL_TOKEN, "--yes"]) == 0
    out = capsys.readouterr()
    assert "spot-interruption" in out.out and CONTROL_TOKEN not in out.out + out.err
    assert [n.kind for n in imds.call(lambda plane: plane.notices())] == ["spot-interruption"]
