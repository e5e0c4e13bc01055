"""Who is calling, and what each role may see."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mvno_core.kernel.problems import Forbidden, NotFound


class Role(StrEnum):
    OPERATOR = "operator"
    PARTNER = "partner"
    REGULATOR = "regulator"
    # An app platform that unbinds accounts from recycled numbers (WeChat, a bank…): its key may call the
    # CAMARA number-recycling check and nothing else (``routing.ensure_role_may_call``).
    RECYCLING_PLATFORM = "recycling_platform"


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    role: Role
    mvno_id: str | None
    # The recycling platform a ``recycling_platform`` key speaks for; None for every other role.
    recycling_platform_id: str | None = None

    @property
    def is_partner(self) -> bool:
        return self.role is Role.PARTNER

    def mvno_scope(self) -> str | None:
        """The only MVNO this caller may see, or None for all (operator, regulator)."""
        return self.mvno_id if self.is_partner else None

    def narrow(self, requested_mvno_id: str | None) -> tuple[bool, str | None]:
        """Apply a partner's scope to a list filter: ``(anything_visible, mvno_id_to_filter_on)``.

        A partner asking for another MVNO's objects sees an empty list (they do not exist for it)."""
        if not self.is_partner:
            return True, requested_mvno_id
        return requested_mvno_id in (None, self.mvno_id), self.mvno_id

    def ensure_can_see(self, mvno_id: str | None, kind: str, ident: str) -> None:
        """A partner touching another MVNO's object gets the very 404 a missing object gets (same
        detail text), never 403: nothing tells it that the object exists."""
        if self.is_partner and mvno_id != self.mvno_id:
            raise NotFound.of(kind, ident)

    def ensure_operator(self) -> None:
        if self.role is not Role.OPERATOR:
            raise Forbidden("Only the operator back-office may do this.")


SYSTEM = Principal(key_id="system", role=Role.OPERATOR, mvno_id=None)
