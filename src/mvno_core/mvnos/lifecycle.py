"""MVNO status: the legal moves as data.

``active`` ⇄ ``restricted`` (regulator-ordered rectification, via restrict/reinstate); either may start an
exit (``exiting``, from a takeover) which ends ``terminated``. Only an ``active`` MVNO may take new blocks,
reservations or activations; existing lines keep working in every status.
"""

from __future__ import annotations

from enum import StrEnum

from mvno_core.kernel.problems import IllegalTransition
from mvno_core.mvnos.errors import MvnoNotActive


class MvnoStatus(StrEnum):
    ACTIVE = "active"
    RESTRICTED = "restricted"
    EXITING = "exiting"
    TERMINATED = "terminated"


ALLOWED: dict[MvnoStatus, frozenset[MvnoStatus]] = {
    MvnoStatus.ACTIVE: frozenset({MvnoStatus.RESTRICTED, MvnoStatus.EXITING}),
    MvnoStatus.RESTRICTED: frozenset({MvnoStatus.ACTIVE, MvnoStatus.EXITING}),
    MvnoStatus.EXITING: frozenset({MvnoStatus.TERMINATED}),
    MvnoStatus.TERMINATED: frozenset(),
}


def can_move(current: MvnoStatus, target: MvnoStatus) -> bool:
    return target in ALLOWED[current]


def ensure_move(current: MvnoStatus, target: MvnoStatus) -> MvnoStatus:
    if not can_move(current, target):
        raise IllegalTransition(
            f"An MVNO in status {current} cannot become {target}.", current_status=current.value
        )
    return target


def ensure_takes_new_business(status: MvnoStatus) -> None:
    """New blocks, reservations and activations need an ``active`` MVNO."""
    if status is not MvnoStatus.ACTIVE:
        raise MvnoNotActive(f"The MVNO is {status}; it cannot take on new numbers or lines.")
