"""Agora with password checks run on the event loop: the counterfactual of ``bench/auth.py``.

Only the login's password verification is swapped for a direct (blocking) call, so the table
shows what running argon2id in the hashing pool saves the other requests of the process.
"""

from __future__ import annotations

from fastapi import FastAPI

from agora.accounts import service
from agora.app import create_app as create_agora_app
from agora.core import security


async def _verify_on_the_loop(password_hash: str | None, password: str) -> bool:
    return security._verify(password_hash, password)


def create_app() -> FastAPI:
    """Agora, except that logins verify passwords on the event loop."""
    service.verify_password = _verify_on_the_loop  # type: ignore[attr-defined]
    return create_agora_app()
