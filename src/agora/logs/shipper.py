"""``agora logs ship FILE``: send a log file to the ingest API, following it like ``tail -F``.

The shipper remembers how far it got (the file's inode and byte offset, in a small state file)
and saves it only after the API accepted a batch, so a restart resumes without losing or
resending more than the batch in flight. It survives rotation (the file is renamed and a new
one created: the old one is read to its end, then the new one from its start) and truncation
(``copytruncate``: the file shrinks below the offset, so it is read again from the start).
A failed request (no connection, 429, 5xx) is retried with exponential backoff, honouring
``Retry-After``; a refusal that retrying cannot mend (401, 403, 415, 422) stops it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import httpx

ShipFormat = Literal["nginx", "json", "ndjson"]
BATCH_BYTES = 512 * 1024
BATCH_LINES = 2000
POLL_S = 0.25
MAX_BACKOFF_S = 30.0
_RETRIED = frozenset({408, 429, 500, 502, 503, 504})


class ShipRefused(RuntimeError):
    """The API refused a batch in a way that retrying cannot mend."""


@dataclass
class Position:
    """Where the shipper is in the file: which file (inode) and how many bytes in."""

    inode: int = 0
    offset: int = 0


@dataclass
class Progress:
    """What has been shipped so far."""

    sent: int = 0
    rejected: int = 0
    retries: int = 0
    batches: int = 0


def default_state_path(data_dir: Path, file: Path) -> Path:
    """Where the position of ``file`` is kept unless told otherwise."""
    digest = hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:16]
    return data_dir / "ship" / f"{file.name}.{digest}.json"


def load_position(state: Path) -> Position:
    """The saved position, or the start of the file."""
    try:
        saved = json.loads(state.read_text())
        return Position(inode=int(saved["inode"]), offset=int(saved["offset"]))
    except (OSError, ValueError, KeyError, TypeError):
        return Position()


def save_position(state: Path, position: Position) -> None:
    """Save the position atomically (a crash leaves the old or the new one, never half)."""
    state.parent.mkdir(parents=True, exist_ok=True)
    temporary = state.with_suffix(".tmp")
    temporary.write_text(json.dumps({"inode": position.inode, "offset": position.offset}))
    os.replace(temporary, state)


@dataclass
class Shipper:
    """Reads complete lines from a file from a position and posts them in batches."""

    file: Path
    state: Path
    url: str
    key: str
    fmt: ShipFormat = "nginx"
    on_progress: Callable[[Progress, Position], None] = lambda *_: None
    progress: Progress = field(default_factory=Progress)
    sleep: Callable[[float], None] = time.sleep

    def run(self, *, follow: bool, stop: Callable[[], bool] = lambda: False) -> Progress:
        """Ship until the end of the file (or, with ``follow``, until ``stop()``)."""
        position = load_position(self.state)
        with httpx.Client(timeout=30.0) as http:
            handle: BinaryIO | None = None
            try:
                while not stop():
                    handle, position = self._reopen(handle, position)
                    if handle is None:
                        if not follow:
                            return self.progress
                        self.sleep(POLL_S)
                        continue
                    shipped = self._ship_available(http, handle, position, final=not follow)
                    if not shipped and self._rotated(position) is None:
                        if not follow:
                            return self.progress
                        self.sleep(POLL_S)
            finally:
                if handle is not None:
                    handle.close()
        return self.progress

    def _reopen(
        self, handle: BinaryIO | None, position: Position
    ) -> tuple[BinaryIO | None, Position]:
        """The handle to read, following a rotation or a truncation."""
        if handle is not None:
            size = os.fstat(handle.fileno()).st_size
            if self._rotated(position) is None:
                if size < position.offset:  # truncated in place
                    position = Position(position.inode, 0)
                return handle, position
            if size > position.offset:
                return handle, position  # rotated: first read the old file to its end
            handle.close()
        try:
            handle = self.file.open("rb")
        except FileNotFoundError:
            return None, position
        inode = os.fstat(handle.fileno()).st_ino
        if inode != position.inode or os.fstat(handle.fileno()).st_size < position.offset:
            position = Position(inode, 0)
        handle.seek(position.offset)
        return handle, position

    def _rotated(self, position: Position) -> int | None:
        """The inode now at the file's path when it differs from the one being read."""
        try:
            inode = self.file.stat().st_ino
        except FileNotFoundError:
            return None
        return inode if position.inode and inode != position.inode else None

    def _ship_available(
        self, http: httpx.Client, handle: BinaryIO, position: Position, *, final: bool
    ) -> bool:
        """Post the complete lines available, batch by batch; whether any were posted."""
        shipped = False
        while True:
            handle.seek(position.offset)
            chunk = handle.read(BATCH_BYTES)
            if not chunk:
                return shipped
            end = _batch_end(chunk, final=final)
            if end == 0:
                return shipped
            self._post(http, chunk[:end])
            position.offset += end
            save_position(self.state, position)
            self.on_progress(self.progress, position)
            shipped = True

    def _post(self, http: httpx.Client, body: bytes) -> None:
        params = {} if self.fmt == "ndjson" else {"format": self.fmt}
        content_type = "application/x-ndjson" if self.fmt == "ndjson" else "text/plain"
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": content_type}
        delay = 0.5
        while True:
            try:
                answer = http.post(
                    self.url.rstrip("/") + "/api/v1/logs", content=body, params=params,
                    headers=headers,
                )  # fmt: skip
            except httpx.HTTPError:
                answer = None
            if answer is not None and answer.status_code == 202:
                result = answer.json()
                self.progress.sent += int(result["accepted"])
                self.progress.rejected += len(result["rejected"])
                self.progress.batches += 1
                return
            if answer is not None and answer.status_code not in _RETRIED:
                raise ShipRefused(f"the API answered {answer.status_code}: {answer.text[:300]}")
            self.progress.retries += 1
            wait = _retry_after(answer) or delay
            self.sleep(min(wait, MAX_BACKOFF_S))
            delay = min(delay * 2, MAX_BACKOFF_S)


def _batch_end(chunk: bytes, *, final: bool) -> int:
    """How many bytes of ``chunk`` make whole lines (at most ``BATCH_LINES``); at the end of a
    file that is not followed, a last line without a newline counts too."""
    end = 0
    for _ in range(BATCH_LINES):
        newline = chunk.find(b"\n", end)
        if newline < 0:
            break
        end = newline + 1
    if end == 0 and final and len(chunk) < BATCH_BYTES:
        return len(chunk)
    return end


def _retry_after(answer: httpx.Response | None) -> float | None:
    if answer is None:
        return None
    try:
        return float(answer.headers.get("Retry-After", ""))
    except ValueError:
        return None
