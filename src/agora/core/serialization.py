"""Fast JSON for raw payloads (cache entries, events, problem documents) through orjson."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    """Serialise to JSON bytes; datetimes as ISO 8601, UUIDs as strings."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def loads(data: bytes | str) -> Any:
    """Parse JSON bytes or text."""
    return orjson.loads(data)
