"""Application-generated identifiers.

IDs are ``<prefix>_<ULID>``: random (80 bits), time-ordered for index locality, and generated here rather
than by the database so that sharded PostgreSQL (Citus) never sees a volatile default in an UPDATE.
"""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two digits (ten bits) per step, 13 steps for a ULID's 26 digits: an activation makes three ids, and
# the digit-by-digit loop this replaced cost more CPU than the rest of the ids' work together (base64's
# base32 with the alphabet swapped took 5.3 µs an id here, this 3.3).
_PAIRS = tuple(high + low for high in _CROCKFORD for low in _CROCKFORD)
_SHIFTS = tuple(range(120, -1, -10))


def encode(value: int) -> str:
    """A 128-bit value as a ULID's 26 Crockford base32 digits (the first holds its top three bits)."""
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])


def ulid() -> str:
    return encode((int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big"))


def new_id(prefix: str) -> str:
    return f"{prefix}_{ulid()}"
