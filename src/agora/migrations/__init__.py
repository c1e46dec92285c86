"""Alembic migrations, shipped inside the package so ``agora migrate`` works from a wheel."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent


def alembic_config(database_url: str) -> Config:
    """An Alembic configuration for ``database_url``, without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "heads") -> None:
    """Upgrade the database to ``revision`` (default: the newest of every branch)."""
    command.upgrade(alembic_config(database_url), revision)
