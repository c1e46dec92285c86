"""Opaque cursors for keyset pagination: the sort order and the last row's key and id.

A cursor is only valid for the order it was made for; anything else is refused with 422, never
passed to SQL as is.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from typing import Any

from agora.core.errors import ValidationFailed
from agora.core.serialization import dumps, loads


def encode_cursor(sort: str, key: tuple[Any, uuid.UUID]) -> str:
    """A cursor pointing after the row whose sort key and id are ``key``."""
    value, row_id = key
    return base64.urlsafe_b64encode(dumps([sort, value, str(row_id)])).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[Any, uuid.UUID]:
    """The sort key and id a cursor points after; 422 if it is malformed or for another order."""
    try:
        made_for, value, row_id = loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if made_for != sort:
            raise ValueError("cursor made for another order")
        return _typed_key(sort, value), uuid.UUID(row_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValidationFailed("The cursor is not valid here.", code="invalid_cursor") from exc


def _typed_key(sort: str, value: Any) -> Any:
    if sort == "newest" and isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    if sort in ("price_asc", "price_desc") and type(value) is int:
        return value
    if sort == "name" and isinstance(value, str):
        return value
    if sort == "relevance" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise ValueError("cursor key of the wrong type")
