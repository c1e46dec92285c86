"""Fast JSON for raw payloads (cache entries, events, problem documents) through orjson."""

from __future__ import annotations

import uuid
from typing import Any

import orjson


def _fallback(value: Any) -> Any:
    """Types orjson does not take natively: UUID subclasses (asyncpg returns its own)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """Serialise to JSON bytes; datetimes as ISO 8601, UUIDs as strings."""
    return orjson.dumps(value, default=_fallback, option=orjson.OPT_NON_STR_KEYS)


def loads(data: bytes | str) -> Any:
    """Parse JSON bytes or text."""
    return orjson.loads(data)
