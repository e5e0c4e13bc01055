"""Application-generated identifiers.

IDs are ``<prefix>_<ULID>``: random (80 bits), time-ordered for index locality, and generated here rather
than by the database so that sharded PostgreSQL (Citus) never sees a volatile default in an UPDATE.
"""

from __future__ import annotations

import base64
import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# RFC 4648 base32 (in C) with Crockford's alphabet swapped in: an activation makes three ids, and the
# digit-by-digit loop this replaced cost more CPU than the rest of the ids' work together.
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD.encode())


def ulid() -> str:
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    # 20 bytes are 32 base32 digits, grouped from the right as a ULID is; its 26 are the last ones.
    return base64.b32encode(value.to_bytes(20, "big"))[6:].translate(_TO_CROCKFORD).decode()


def new_id(prefix: str) -> str:
    return f"{prefix}_{ulid()}"
