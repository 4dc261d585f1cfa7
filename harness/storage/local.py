"""The local disk ("NVMe") facade: crash-safe file replacement and reads, hook before each step.

A write goes to a temp file in the same directory, is fsynced, renamed over the target, and the
directory is fsynced, so a crash at any point leaves either the old file or the new one, never a
torn one. Temp files have the suffix :data:`TEMP_SUFFIX` and are ignored (and cleaned) by readers.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from harness.storage.blocking import BlockingCaller
from harness.target import IoHook

TEMP_SUFFIX = ".tmp"


class LocalDisk:
    """Files under ``root``; names are relative POSIX paths such as ``checkpoints/x.ckpt``."""

    def __init__(
        self, root: Path, hook: IoHook, *, inline_io: bool = True, sync: bool | None = None
    ) -> None:
        """``sync``: call fsync for real (default: in real mode only). In simulation a crash is
        a simulated one, the page cache survives it, and the io_hook models the fsync's time."""
        self.root = root
        self._hook = hook
        self._call = BlockingCaller(inline=inline_io)
        self._sync = (not inline_io) if sync is None else sync

    @property
    def call(self) -> BlockingCaller:
        """How blocking work on this disk's data runs: inline (simulation) or in a thread."""
        return self._call

    def path(self, name: str) -> Path:
        return self.root / name

    async def write_atomic(self, name: str, data: bytes, *, nominal: int | None = None) -> None:
        """Replace ``name`` with ``data`` durably (temp file, fsync, rename, fsync dir)."""
        target = self.path(name)
        temp = target.with_name(target.name + TEMP_SUFFIX)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbytes = len(data) if nominal is None else nominal
        temp_name = name + TEMP_SUFFIX
        try:
            await self._hook("local.write", nbytes=nbytes, key=temp_name)
            handle = await self._call(_open_and_write, temp, data)
            try:
                await self._hook("local.fsync", nbytes=nbytes, key=temp_name)
                if self._sync:
                    await self._call(os.fsync, handle)
            finally:
                os.close(handle)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        await self._hook("local.rename", key=name)
        os.replace(temp, target)
        await self._hook("local.fsync_dir", key=name)
        if self._sync:
            await self._call(_fsync_dir, target.parent)

    async def read(self, name: str, *, nominal: int | None = None) -> bytes | None:
        """The content of ``name``, or ``None`` if there is no such file."""
        target = self.path(name)
        if not target.is_file():
            return None
        await self._hook("local.read", nbytes=nominal or target.stat().st_size, key=name)
        try:
            return await self._call(target.read_bytes)
        except FileNotFoundError:
            return None

    async def delete(self, name: str) -> None:
        await self._hook("local.delete", key=name)
        with contextlib.suppress(FileNotFoundError):
            self.path(name).unlink()

    def names(self, folder: str, suffix: str = "") -> list[str]:
        """Complete files in ``folder`` ending with ``suffix`` (temp files excluded), sorted."""
        directory = self.path(folder)
        if not directory.is_dir():
            return []
        return sorted(
            f"{folder}/{entry.name}"
            for entry in directory.iterdir()
            if entry.is_file()
            and entry.name.endswith(suffix)
            and not entry.name.endswith(TEMP_SUFFIX)
        )

    def remove_temp_files(self, folder: str) -> list[str]:
        """Delete leftovers of interrupted writes; returns their names."""
        directory = self.path(folder)
        if not directory.is_dir():
            return []
        removed = []
        for entry in sorted(directory.iterdir()):
            if entry.name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
                removed.append(f"{folder}/{entry.name}")
        return removed


def _open_and_write(path: Path, data: bytes) -> int:
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(handle, view)
            view = view[written:]
    except BaseException:
        os.close(handle)
        raise
    return handle


def _fsync_dir(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
