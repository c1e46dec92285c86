"""Cursor pagination: ``?cursor=&limit=`` in, ``{items, next_cursor}`` out.

A cursor is the sort key of the last item of a page, encoded as opaque URL-safe text, so the next
page is a keyset query (``WHERE (created_at, id) < (:a, :b)``) that stays fast and stable while
rows are inserted, unlike ``OFFSET``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel

from agora.core.errors import ValidationFailed

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list and the cursor of the next one (``null`` on the last page)."""

    items: list[T]
    next_cursor: str | None = None


def encode_cursor(*values: Any) -> str:
    """An opaque cursor holding the sort key of the last item shown."""
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    """The sort key held by ``cursor``; 422 ``invalid_cursor`` for anything not made here."""
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise ValidationFailed("The cursor is not valid.", code="invalid_cursor") from exc
    if not isinstance(values, list) or len(values) != size:
        raise ValidationFailed("The cursor is not valid.", code="invalid_cursor")
    return values
