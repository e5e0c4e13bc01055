"""MVNO lifecycle rules, without a database."""

from __future__ import annotations

import pytest

from mvno_core.mvnos.errors import MvnoNotActive
from mvno_core.mvnos.lifecycle import ALLOWED, MvnoStatus, can_move, ensure_move, ensure_takes_new_business
from tests.transitions import check_move

EXPECTED_MVNO_MOVES = {
    ("active", "restricted"),
    ("active", "exiting"),
    ("restricted", "active"),
    ("restricted", "exiting"),
    ("exiting", "terminated"),
}


@pytest.mark.parametrize("current", list(MvnoStatus))
@pytest.mark.parametrize("target", list(MvnoStatus))
def test_mvno_transition_table(current: MvnoStatus, target: MvnoStatus) -> None:
    check_move(current, target, EXPECTED_MVNO_MOVES, can_move, ensure_move)


def test_terminated_is_final() -> None:
    assert ALLOWED[MvnoStatus.TERMINATED] == frozenset()


@pytest.mark.parametrize("status", list(MvnoStatus))
def test_only_active_mvno_takes_new_business(status: MvnoStatus) -> None:
    if status is MvnoStatus.ACTIVE:
        ensure_takes_new_business(status)
    else:
        with pytest.raises(MvnoNotActive):
            ensure_takes_new_business(status)
