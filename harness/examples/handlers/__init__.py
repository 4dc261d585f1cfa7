"""Spot handlers written the way teams write them, independent of the reference runtime.

They use only what a handler has on a real host (``ctx.s3_client``, a boto3 S3 client;
``ctx.redis``, a redis.asyncio client; ``ctx.local_dir``; the metadata endpoint; signals) and
report what they do with ``ctx.emit``. :mod:`careful` is correct; each of the others makes one
mistake seen in real handlers, and ``scenarios/known_bad/`` holds a scenario per mistake with
the check that catches it marked ``fails:``.
"""

#: Known-bad handler module -> the check its scenario in ``scenarios/known_bad/`` shows failing.
KNOWN_BAD = {
    "report_before_put": "durable",
    "imdsv1_poller": "saved_before_deadline",
    "thread_upload": "saved_before_deadline",
    "pointer_first": "durable",
    "save_in_place": "resume_correct",
    "exit_without_await": "saved_before_deadline",
}
