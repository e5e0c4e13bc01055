"""Errors of the recycling domain: the kernel's problems, plus the database's word on duplicates."""

from __future__ import annotations

from mvno_core.kernel.problems import Conflict, Forbidden, register_constraints


class OperatorOrRegulatorOnly(Forbidden):
    """Recycling platforms and reissue batches are the operator's business (the regulator may read);
    a partner is refused outright, even on reads, since none of these objects belongs to an MVNO."""


# One active platform per name: a second registration of the same platform is a 409 ``conflict``.
register_constraints({"uq_recycling_platforms_active_name": Conflict})
