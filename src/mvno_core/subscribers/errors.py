"""Errors the subscribers domain raises, and the constraints it owns."""

from __future__ import annotations

from mvno_core.kernel.problems import Conflict, DomainError, register_constraints


class RealNameUnverified(DomainError):
    """Raised by activation (a later stage) for a subscriber without a passed verification."""

    status, code, title = 409, "real_name_unverified", "The subscriber's real name is not verified"


# The service turns a duplicate into a 409 with ``existing_id`` itself (ON CONFLICT DO NOTHING + a look-up);
# the mapping is the backstop for any other path that might hit the index.
register_constraints({"uq_subscribers_mvno_id_id_type_id_blind_index": Conflict})
