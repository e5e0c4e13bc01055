"""Application-generated identifiers.

IDs are ``<prefix>_<ULID>``: random (80 bits), time-ordered for index locality, and generated here rather
than by the database so that sharded PostgreSQL (Citus) never sees a volatile default in an UPDATE.
"""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid() -> str:
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    return f"{prefix}_{ulid()}"
