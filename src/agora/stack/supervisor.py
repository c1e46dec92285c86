"""Run a set of processes, restart the ones that die, stop them all on a signal.

Each program runs in its own session (process group), so a stop reaches its children too (a
Celery pool, nginx workers) and a Ctrl-C in the terminal reaches only the supervisor, which then
stops the programs in order. The pids of the running groups are kept in a state file, so that
``agora stack down`` can stop a stack started in another terminal and leave nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

_POLL_S = 0.2
_FIRST_BACKOFF_S = 0.5
_MAX_BACKOFF_S = 15.0
_HEALTHY_AFTER_S = 30.0
_STOP_GRACE_S = 15.0


@dataclass(frozen=True)
class Program:
    """One supervised process: its name, command line and extra environment."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Running:
    program: Program
    process: subprocess.Popen[bytes]
    started_at: float
    backoff_s: float = _FIRST_BACKOFF_S
    restart_at: float | None = None


class Supervisor:
    """Keeps every program running until asked to stop."""

    def __init__(
        self,
        programs: Sequence[Program],
        state_file: Path,
        log: Callable[[str], None] = print,
    ) -> None:
        self._programs = list(programs)
        self._state_file = state_file
        self._log = log
        self._running: list[_Running] = []
        self._stopping = False

    def run(self, on_started: Callable[[], None] | None = None) -> None:
        """Start every program, then restart any that exits, until SIGINT or SIGTERM."""
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        try:
            self._running = [self._spawn(program) for program in self._programs]
            self._write_state()
            if on_started is not None:
                threading.Thread(target=on_started, daemon=True).start()
            while not self._stopping:
                self._restart_exited()
                time.sleep(_POLL_S)
        finally:
            self._stop_all()
            self._state_file.unlink(missing_ok=True)

    def _request_stop(self, signum: int, _: FrameType | None) -> None:
        self._stopping = True

    def _spawn(self, program: Program) -> _Running:
        process = subprocess.Popen(  # noqa: S603 - our own programs, no shell
            list(program.argv),
            env={**os.environ, **program.env},
            start_new_session=True,
        )
        self._log(f"started {program.name} (pid {process.pid})")
        return _Running(program, process, started_at=time.monotonic())

    def _restart_exited(self) -> None:
        now = time.monotonic()
        changed = False
        for running in self._running:
            if running.restart_at is None and running.process.poll() is not None:
                if now - running.started_at > _HEALTHY_AFTER_S:
                    running.backoff_s = _FIRST_BACKOFF_S
                running.restart_at = now + running.backoff_s
                self._log(
                    f"{running.program.name} exited with {running.process.returncode}; "
                    f"restarting in {running.backoff_s:.1f}s"
                )
                _kill_group(running.process.pid, signal.SIGKILL)
            if running.restart_at is not None and now >= running.restart_at:
                fresh = self._spawn(running.program)
                running.process, running.started_at = fresh.process, fresh.started_at
                running.backoff_s = min(running.backoff_s * 2, _MAX_BACKOFF_S)
                running.restart_at = None
                changed = True
        if changed:
            self._write_state()

    def _write_state(self) -> None:
        state = {
            "supervisor": os.getpid(),
            "groups": {r.program.name: r.process.pid for r in self._running},
        }
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        self._state_file.write_text(json.dumps(state))

    def _stop_all(self) -> None:
        # The proxy goes first (no new requests), then the others, all at once.
        for running in reversed(self._running):
            if running.process.poll() is None:
                _kill_group(running.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_S
        for running in self._running:
            try:
                running.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._log(f"{running.program.name} did not stop in time; killing it")
            _kill_group(running.process.pid, signal.SIGKILL)
            running.process.wait()
        self._log("every process stopped")


def stop_stack(state_file: Path, timeout_s: float = _STOP_GRACE_S + 10) -> bool:
    """Stop the stack whose supervisor wrote ``state_file``; whether one was running."""
    try:
        state = json.loads(state_file.read_text())
    except (FileNotFoundError, ValueError):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(state["supervisor"]), signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while state_file.exists() and time.monotonic() < deadline:
        time.sleep(_POLL_S)
    # A supervisor that died without cleaning up leaves its groups: stop them here.
    for pid in state["groups"].values():
        _kill_group(int(pid), signal.SIGKILL)
    state_file.unlink(missing_ok=True)
    return True


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
