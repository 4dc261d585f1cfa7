"""Small HTTP helpers shared by the polling adapters (aiohttp, IP-literal URLs only)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Reply:
    status: int
    text: str
    headers: dict[str, str]


class Unreachable(Exception):
    """No HTTP answer at all: refused, reset, timed out."""


@functools.lru_cache(maxsize=16)
def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=seconds)


def new_session() -> aiohttp.ClientSession:
    # No proxies from the environment: metadata endpoints are link-local.
    return aiohttp.ClientSession(trust_env=False)


async def request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: float,  # noqa: ASYNC109 - a per-request budget handed to aiohttp
    json: Any = None,
) -> Reply:
    try:
        async with session.request(
            method, url, headers=headers, json=json, timeout=_timeout(timeout)
        ) as response:
            # Metadata bodies are ASCII/UTF-8 text: skip charset detection.
            text = (await response.read()).decode("utf-8", errors="replace")
            return Reply(response.status, text, dict(response.headers))
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        raise Unreachable(f"{type(error).__name__}: {error}".rstrip(": ")) from None
