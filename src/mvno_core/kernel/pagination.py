"""Keyset pagination: ``?limit=`` (1–500, default 50) and an opaque ``?cursor=``."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from mvno_core.kernel.problems import ValidationFailed

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=500, description="Page size (1–500).")]
# What ``encode_cursor`` produces: unpadded base64url. Declared so that the schema admits what the decoder
# reads; a string of this shape that the server never issued (it does not decode to a cursor) is still a
# 422 ``validation_error``, like any other forged or truncated cursor.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"
CURSOR_MAX_LENGTH = 512
Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=CURSOR_MAX_LENGTH,
        pattern=CURSOR_PATTERN,
        description="Opaque cursor from next_cursor (a forged or damaged one is a 422).",
    ),
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def page_of(rows: list[T], limit: int, key: Callable[[T], Any]) -> Page[T]:
    """Build a page from ``limit + 1`` fetched rows: the extra row only says that a next page exists."""
    items = rows[:limit]
    has_more = len(rows) > limit
    return Page(items=items, next_cursor=encode_cursor(key(items[-1])) if has_more else None)


def encode_cursor(*values: Any) -> str:
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(
    cursor: str | None, *types: type, loc: tuple[str, ...] = ("query", "cursor")
) -> tuple[Any, ...] | None:
    """Decode and type-check a cursor; a malformed one is a 422, never a 500."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed("Malformed cursor.", loc=loc) from exc
    if (
        not isinstance(values, list)
        or len(values) != len(types)
        or not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(values, types, strict=True))
    ):
        raise ValidationFailed("Malformed cursor.", loc=loc)
    return tuple(values)
