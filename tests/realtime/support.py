"""Opening ``/ws`` the way clients do: the token in the ``Sec-WebSocket-Protocol`` header."""

from __future__ import annotations

from typing import Any

from tests.factories import Account
from tests.support import ApiProcess


def token_of(account: Account) -> str:
    """The access token in an account's headers."""
    return account.headers["Authorization"].removeprefix("Bearer ")


def connect(server: ApiProcess, token: str, stream: str = "orders", **options: Any) -> Any:
    """A WebSocket to ``server`` authenticated by ``token`` in its offered subprotocols."""
    return server.socket(f"/ws?stream={stream}", token, **options)
