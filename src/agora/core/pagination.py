"""Cursor pagination: ``?cursor=&limit=`` in, ``{items, next_cursor}`` out.

A cursor is the sort key of the last item of a page, encoded as opaque URL-safe text, so the next
page is a keyset query (``WHERE (created_at, id) < (:a, :b)``) that stays fast and stable while
rows are inserted, unlike ``OFFSET``. Each cursor names the order it was made for (``newest``,
``price_asc`` …): one made for another order, or not made here at all, is refused with 422
``invalid_cursor``, never passed to SQL as is.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from agora.core.errors import ValidationFailed
from agora.core.serialization import dumps, loads

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list and the cursor of the next one (``null`` on the last page)."""

    items: list[T]
    next_cursor: str | None = None


def encode_cursor(order: str, *key: Any) -> str:
    """An opaque cursor pointing after the item whose sort key is ``key``, in ``order``."""
    return base64.urlsafe_b64encode(dumps([order, *key])).decode().rstrip("=")


def decode_cursor(cursor: str, order: str, parse: Callable[..., T]) -> T:
    """The sort key a cursor made for ``order`` points after, typed by ``parse`` (called with the
    key's values; it raises ``ValueError`` or ``TypeError`` for a value of the wrong type).

    422 ``invalid_cursor`` when the cursor is malformed, made for another order or holds a key
    ``parse`` refuses.
    """
    try:
        made_for, *key = loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if made_for != order:
            raise ValueError("cursor made for another order")
        return parse(*key)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValidationFailed("The cursor is not valid here.", code="invalid_cursor") from exc
