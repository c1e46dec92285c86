"""A host name whose DNS answer changes after the first look-ups, as in a rebinding attack: for
tests of code that must connect to the very address it checked.

The process's resolver (``socket.getaddrinfo``, which asyncio's ``getaddrinfo`` calls) answers the
made-up name with loopback for its first ``answers`` look-ups and not at all afterwards; every
other name resolves as usual. A client that resolves the name again after the check cannot
connect, and ``lookups`` says how many times it asked.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass
class RebindingName:
    """One made-up name and what the resolver has answered for it so far."""

    name: str
    answers: int = 1
    lookups: int = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> RebindingName:
        """Answer for the name in this process until the test ends."""
        resolve = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host != self.name:
                return resolve(host, port, *args, **kwargs)
            self.lookups += 1
            if self.lookups > self.answers:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return resolve("127.0.0.1", port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return self

    def rearm(self, answers: int = 1) -> None:
        """Forget the look-ups so far and answer ``answers`` more."""
        self.lookups = 0
        self.answers = answers
