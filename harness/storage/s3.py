"""The S3 facade: a boto3 client, one bucket, the io_hook before every request.

Conditional writes (``If-None-Match: *``, ``If-Match: <etag>``) and a SHA-256 checksum per object
(and per part) are sent on every write. Where the server is weaker than S3 (moto accepts wrong
checksums and ignores ``If-Match`` on multipart completion) the runtime verifies content itself
when it reads a checkpoint back, so correctness never rests on the fake.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from botocore.config import Config
from botocore.exceptions import ClientError

from harness.storage.blocking import BlockingCaller
from harness.target import IoHook

#: botocore's retries, set explicitly for every S3 client of the runtime, simulated or real: one
#: attempt per call. The runtime's own backoff (:mod:`harness.retry`, seeded jitter) is the only
#: retry layer, and it resumes after the last step that succeeded, which botocore cannot. The
#: simulator injects faults in front of botocore, so any retry botocore made would happen in
#: real mode only (and how many would depend on AWS_RETRY_MODE / AWS_MAX_ATTEMPTS or a profile).
CLIENT_MAX_ATTEMPTS = 1


def client_config(addressing_style: Literal["auto", "virtual", "path"] = "auto") -> Config:
    """The botocore configuration of a runtime S3 client."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": CLIENT_MAX_ATTEMPTS},
        s3={"addressing_style": addressing_style},
    )


_PRECONDITION_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_MISSING_CODES = {"NoSuchKey", "404", "NotFound", "NoSuchUpload"}


def error_code(error: BaseException) -> str:
    """The S3 error code of a botocore ``ClientError`` (``""`` for anything else)."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def is_precondition_failed(error: BaseException) -> bool:
    """A conditional write lost: the object exists (412) or changed concurrently (409)."""
    return error_code(error) in _PRECONDITION_CODES


def is_missing(error: BaseException) -> bool:
    return error_code(error) in _MISSING_CODES


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


class ChecksumMismatch(RuntimeError):
    """The server reported a checksum different from the one computed locally."""


@dataclass(frozen=True)
class Upload:
    """An incomplete multipart upload."""

    key: str
    upload_id: str


class S3Store:
    """Object operations on ``bucket`` (keys are used as given)."""

    def __init__(self, client: Any, bucket: str, hook: IoHook, *, inline_io: bool = True) -> None:
        self.client = client
        self.bucket = bucket
        self._hook = hook
        self._call = BlockingCaller(inline=inline_io)

    async def _request(self, method: str, **params: Any) -> Any:
        return await self._call(lambda: getattr(self.client, method)(Bucket=self.bucket, **params))

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        nominal: int | None = None,
        if_none_match: bool = False,
        if_match: str | None = None,
        metadata: dict[str, str] | None = None,
        sha256_hex: str | None = None,
    ) -> dict[str, Any]:
        """PutObject with a SHA-256 checksum; returns ``{"etag", "version_id"}``.

        ``sha256_hex``: the content's SHA-256 if already known (then it is not computed again,
        and S3 checks it against the bytes that arrive). Raises ``ClientError`` (use
        :func:`is_precondition_failed`) when a condition fails.
        """
        await self._hook("s3.put_object", nbytes=len(data) if nominal is None else nominal, key=key)
        if sha256_hex:
            digest = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
        else:
            digest = await self._call(sha256_b64, data)  # a worker thread in real mode
        params: dict[str, Any] = {
            "Key": key,
            "Body": data,
            "ChecksumSHA256": digest,
            "Metadata": metadata or {},
        }
        if if_none_match:
            params["IfNoneMatch"] = "*"
        if if_match is not None:
            params["IfMatch"] = if_match
        response = await self._request("put_object", **params)
        _verify_checksum(response, params["ChecksumSHA256"], key)
        return {"etag": response.get("ETag"), "version_id": response.get("VersionId")}

    async def get(self, key: str, *, nominal: int | None = None) -> tuple[bytes, str] | None:
        """``(content, etag)`` of ``key``, or ``None`` if it does not exist."""
        await self._hook("s3.get_object", nbytes=nominal or 0, key=key)
        try:
            response = await self._request("get_object", Key=key)
            body = await self._call(response["Body"].read)
        except ClientError as error:
            if is_missing(error):
                return None
            raise
        return bytes(body), str(response.get("ETag"))

    async def head(self, key: str) -> dict[str, Any] | None:
        await self._hook("s3.head_object", key=key)
        try:
            response: dict[str, Any] = await self._request("head_object", Key=key)
        except ClientError as error:
            if is_missing(error):
                return None
            raise
        return response

    async def list_objects(self, prefix: str) -> list[dict[str, Any]]:
        """Every object under ``prefix`` (``Key``, ``Size``, ``ETag``), following pagination."""
        objects: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            await self._hook("s3.list_objects", key=prefix)
            params: dict[str, Any] = {"Prefix": prefix}
            if token:
                params["ContinuationToken"] = token
            page = await self._request("list_objects_v2", **params)
            objects.extend(page.get("Contents", []))
            token = page.get("NextContinuationToken")
            if not token:
                return objects

    async def delete(self, key: str) -> None:
        await self._hook("s3.delete_object", key=key)
        await self._request("delete_object", Key=key)

    # -- multipart ----------------------------------------------------------------------------
    async def create_multipart(self, key: str, metadata: dict[str, str]) -> Upload:
        await self._hook("s3.create_multipart", key=key)
        response = await self._request(
            "create_multipart_upload", Key=key, ChecksumAlgorithm="SHA256", Metadata=metadata
        )
        return Upload(key=key, upload_id=str(response["UploadId"]))

    async def upload_part(
        self, upload: Upload, number: int, data: bytes, *, nominal: int | None = None
    ) -> dict[str, Any]:
        """Upload part ``number`` (1-based); returns the part entry for completion."""
        nbytes = len(data) if nominal is None else nominal
        await self._hook("s3.upload_part", nbytes=nbytes, key=upload.key)
        digest = await self._call(sha256_b64, data)  # a worker thread in real mode
        response = await self._request(
            "upload_part",
            Key=upload.key,
            UploadId=upload.upload_id,
            PartNumber=number,
            Body=data,
            ChecksumSHA256=digest,
        )
        _verify_checksum(response, digest, f"{upload.key} part {number}")
        return {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": digest}

    async def model_part(self, upload: Upload, *, nbytes: int) -> None:
        """A part that exists only in the time model (compact simulated content): no request;
        the hook times, faults and records it as the part it stands for."""
        await self._hook("s3.upload_part", nbytes=nbytes, key=upload.key, physical=False)

    async def complete_multipart(
        self, upload: Upload, parts: list[dict[str, Any]], *, if_none_match: bool = True
    ) -> dict[str, Any]:
        await self._hook("s3.complete_multipart", key=upload.key)
        params: dict[str, Any] = {
            "Key": upload.key,
            "UploadId": upload.upload_id,
            "MultipartUpload": {"Parts": parts},
        }
        if if_none_match:
            params["IfNoneMatch"] = "*"
        response = await self._request("complete_multipart_upload", **params)
        return {"etag": response.get("ETag"), "version_id": response.get("VersionId")}

    async def abort_multipart(self, upload: Upload) -> None:
        await self._hook("s3.abort_multipart", key=upload.key)
        try:
            await self._request("abort_multipart_upload", Key=upload.key, UploadId=upload.upload_id)
        except ClientError as error:
            if not is_missing(error):
                raise

    async def list_uploads(self, prefix: str) -> list[Upload]:
        """Incomplete multipart uploads under ``prefix``."""
        await self._hook("s3.list_uploads", key=prefix)
        response = await self._request("list_multipart_uploads", Prefix=prefix)
        return [
            Upload(key=str(item["Key"]), upload_id=str(item["UploadId"]))
            for item in response.get("Uploads", [])
        ]


def _verify_checksum(response: dict[str, Any], expected: str, what: str) -> None:
    # Real S3 echoes the checksum it computed; moto may not. A mismatch means the bytes that
    # arrived are not the bytes that were sent.
    returned = response.get("ChecksumSHA256")
    if returned and returned != expected:
        raise ChecksumMismatch(f"S3 stored {what} with checksum {returned}, sent {expected}")
