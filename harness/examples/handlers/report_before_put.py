"""Known bad: the checkpoint is reported saved before it is uploaded.

The handler logs "checkpoint saved" (``checkpoint.durable``) and then calls ``put_object``, the
way a handler that writes its bookkeeping first and its upload second does. When the upload
fails, or the machine dies during it, the job believes in a checkpoint S3 never held. Caught by
``durable``: the harness sees no write of the key before the report (and, when the put fails,
no object at all). Scenario: ``scenarios/known_bad/report_before_put.yaml``.
"""

from __future__ import annotations

from harness.examples.handlers.basic import Handler, handler_target


class ReportBeforePut(Handler):
    """Reports ``checkpoint.durable`` first, then uploads with ``put_object``."""

    async def save(self, key: str, body: bytes, position: int) -> bool:
        self.durable(key, body, position)  # the mistake: reported before the upload
        try:
            self.ctx.s3_client.put_object(Bucket=self.ctx.bucket, Key=key, Body=body)
        except Exception as error:
            self.ctx.emit("checkpoint.failed", checkpoint_id=key, tier="s3", error=repr(error))
            return False
        return True


target = handler_target(ReportBeforePut)
