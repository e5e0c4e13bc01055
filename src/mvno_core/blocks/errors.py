"""Errors of block allocation, and the constraints blocks own."""

from __future__ import annotations

from mvno_core.kernel.problems import DomainError, register_constraints


class HostMismatch(DomainError):
    status, code, title = 422, "host_mismatch", "Host operator not among the MVNO's hosts"


class RegionNotLicensed(DomainError):
    status, code, title = 422, "region_not_licensed", "Province outside the MVNO's licensed area"


class BlockUnavailable(DomainError):
    status, code, title = 409, "block_unavailable", "Block not available"


# Two allocations racing for one H-code: the loser's insert breaks one of these.
register_constraints(
    {"pk_blocks": BlockUnavailable, "uq_blocks_prefix": BlockUnavailable, "pk_numbers": BlockUnavailable}
)
