"""Errors the MVNO registry raises, and the constraints it owns."""

from __future__ import annotations

from mvno_core.kernel.problems import Conflict, DomainError, register_constraints


class MvnoNotActive(DomainError):
    status, code, title = 409, "mvno_not_active", "The MVNO is not active for this action"


register_constraints({"uq_mvnos_code": Conflict})
