"""Opening ``/ws`` the way clients do: the token in the ``Sec-WebSocket-Protocol`` header."""

from __future__ import annotations

from typing import Any

import websockets
from websockets.typing import Subprotocol

from tests.factories import Account
from tests.support import ApiProcess


def token_of(account: Account) -> str:
    """The access token in an account's headers."""
    return account.headers["Authorization"].removeprefix("Bearer ")


def connect(server: ApiProcess, token: str, stream: str = "orders", **options: Any) -> Any:
    """A WebSocket to ``server`` authenticated by ``token`` in its offered subprotocols."""
    return websockets.connect(
        f"ws://127.0.0.1:{server.port}/ws?stream={stream}",
        subprotocols=[Subprotocol("agora"), Subprotocol(f"bearer.{token}")],
        **options,
    )
