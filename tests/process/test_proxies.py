"""The S3 and Redis proxies: what they record, and the faults they inject."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from harness.history import History
from harness.process.faults import ActiveFault, FaultBook
from harness.process.redisproxy import RedisProxy
from harness.process.s3proxy import S3Proxy, classify
from harness.process.servers import MotoS3, RedisBackend, RedisKind, Watchdog


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "op"),
    [
        ("PUT", "/b/k", {}, {}, "s3.put_object"),
        ("PUT", "/b/k", {}, {"x-amz-copy-source": "/b/j"}, "s3.copy_object"),
        ("PUT", "/b/k", {"uploadId": "u", "partNumber": "1"}, {}, "s3.upload_part"),
        ("POST", "/b/k", {"uploads": ""}, {}, "s3.create_multipart"),
        ("POST", "/b/k", {"uploadId": "u"}, {}, "s3.complete_multipart"),
        ("DELETE", "/b/k", {"uploadId": "u"}, {}, "s3.abort_multipart"),
        ("DELETE", "/b/k", {}, {}, "s3.delete_object"),
        ("GET", "/b/k", {}, {}, "s3.get_object"),
        ("HEAD", "/b/k", {}, {}, "s3.head_object"),
        ("GET", "/b", {"list-type": "2"}, {}, "s3.list_objects"),
        ("GET", "/b/", {"uploads": ""}, {}, "s3.list_uploads"),
        ("POST", "/b", {"delete": ""}, {}, "s3.delete_objects"),
    ],
)
def test_requests_are_named_as_the_storage_steps(
    method: str, path: str, query: dict[str, str], headers: dict[str, str], op: str
) -> None:
    request = classify(method, path, query, headers)
    assert request.op == op
    assert request.bucket == "b"


def test_keys_are_url_decoded() -> None:
    assert classify("GET", "/b/outputs/a%20b", {}, {}).key == "outputs/a b"


def _s3_client(url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 3, "mode": "standard"}),
    )


def test_the_s3_proxy_records_every_request_and_injects_errors() -> None:
    async def scenario() -> History:
        moto = MotoS3()
        moto.create_bucket("bkt")
        clock = [0.0]
        history = History(lambda: clock[0])
        faults = FaultBook(lambda: clock[0])
        proxy = S3Proxy(moto.url, "i-1", history, faults, lambda _i, _op: False)
        url = await proxy.start()
        client = _s3_client(url)
        try:
            await asyncio.to_thread(client.put_object, Bucket="bkt", Key="a", Body=b"hello")
            got = await asyncio.to_thread(client.get_object, Bucket="bkt", Key="a")
            assert got["Body"].read() == b"hello"
            head = await asyncio.to_thread(client.head_object, Bucket="bkt", Key="a")
            assert head["ContentLength"] == 5
            faults.add(ActiveFault("f", "s3.error", 0.0, None, ("s3.put_object",), 1, "SlowDown"))
            put = await asyncio.to_thread(client.put_object, Bucket="bkt", Key="b", Body=b"x")
            assert put["ResponseMetadata"]["RetryAttempts"] == 1  # the SDK retried the 503
        finally:
            await proxy.close()
            moto.drop_bucket("bkt")
            moto.stop()
        return history

    history = asyncio.run(scenario())
    seen = [(e.data["op"], e.data["key"], e.data["status"], e.data["ok"]) for e in history]
    assert seen == [
        ("s3.put_object", "a", 200, True),
        ("s3.get_object", "a", 200, True),
        ("s3.head_object", "a", 200, True),
        ("s3.put_object", "b", 503, False),
        ("s3.put_object", "b", 200, True),
    ]
    first = next(iter(history))
    assert first.instance == "i-1" and first.source == "storage" and first.data["bytes"] == 5
    assert first.data["observed"] == "proxy" and first.data["version_id"]


@pytest.mark.parametrize("kind", ["fake", "real"])
def test_the_redis_proxy_records_commands_and_goes_down(kind: RedisKind, tmp_path: Path) -> None:
    async def scenario() -> History:
        watchdog = Watchdog()
        backend = RedisBackend(kind, tmp_path, watchdog)
        history = History(lambda: 0.0)
        faults = FaultBook(lambda: 0.0)
        proxy = RedisProxy(backend.open, "i-1", history, faults, lambda _i, _op: False)
        url = await proxy.start()
        client = aioredis.from_url(url)
        try:
            await client.hset("job", mapping={"position": "3"})
            assert await client.hget("job", "position") == b"3"
            async with client.pipeline(transaction=False) as pipe:
                # redis-py types a pipeline's commands as the client's awaitables; on a
                # pipeline each returns the pipeline, for chaining.
                pipe.set("a", "1").get("a")  # type: ignore[attr-defined]
                assert await pipe.execute() == [True, b"1"]
            with pytest.raises(Exception, match="WRONGTYPE"):
                await client.get("job")
            faults.add(ActiveFault("f", "redis.down", 0.0, None))
            proxy.cut()
            with pytest.raises(Exception):  # noqa: B017 - redis-py's connection error
                await aioredis.from_url(url).get("a")
        finally:
            await client.aclose()
            await proxy.close()
            backend.stop()
            watchdog.close()
        return history

    history = asyncio.run(scenario())
    seen = [(e.data["op"], e.data.get("command"), e.data["key"], e.data["ok"]) for e in history]
    assert seen[:5] == [
        ("redis.write", "HSET", "job", True),
        ("redis.read", "HGET", "job", True),
        ("redis.write", "SET", "a", True),
        ("redis.read", "GET", "a", True),
        ("redis.read", "GET", "job", False),
    ]
    assert seen[-1][0] == "redis.connect" and not seen[-1][3]
