"""Running blocking calls (boto3, file I/O) from async code, in the way the tier allows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class BlockingCaller:
    """Calls a blocking function inline (simulation: the io_hook models its duration and threads
    are refused in virtual time) or in a worker thread (real mode: the loop keeps running)."""

    def __init__(self, *, inline: bool) -> None:
        self.inline = inline

    async def __call__(self, func: Callable[..., T], *args: object) -> T:
        if self.inline:
            return func(*args)
        return await asyncio.to_thread(func, *args)
