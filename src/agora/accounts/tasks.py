"""Celery tasks of accounts: forgetting refresh tokens long expired."""

from __future__ import annotations

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.accounts import service
from agora.accounts.service import PURGE_REFRESH_TOKENS_TASK
from agora.core.jobs import celery_app, worker_runtime

__all__ = ["PURGE_REFRESH_TOKENS_TASK"]


@celery_app.task(name=PURGE_REFRESH_TOKENS_TASK)
def purge_refresh_tokens() -> int:
    """Delete refresh tokens expired for more than a week (periodic; safe to run twice)."""

    async def purge(session: AsyncSession, _: Redis) -> int:
        return await service.purge_expired_refresh_tokens(session)

    return worker_runtime().run(purge)
