"""Price-watch fixtures: the crawler's, an app allowed to read loopback sites, a staff member."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from agora.app import create_app
from agora.core.db import Database
from agora.core.security import Role
from agora.settings import Settings
from tests.crawler.conftest import crawl_settings, crawler_process, frontier
from tests.factories import Account, create_user

__all__ = ["crawl_settings", "crawler_process", "frontier"]


@pytest.fixture
async def app(crawl_settings: Settings) -> AsyncIterator[FastAPI]:
    """The application, with the crawler's settings (sitemaps are read from local sites)."""
    application = create_app(crawl_settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def staff(database: Database, settings: Settings) -> Account:
    """A member of staff."""
    return await create_user(database, settings, Role.STAFF)
