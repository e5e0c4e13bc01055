"""MVNO lifecycle rules, without a database."""

from __future__ import annotations

import pytest

from mvno_core.kernel.problems import IllegalTransition
from mvno_core.mvnos.errors import MvnoNotActive
from mvno_core.mvnos.lifecycle import ALLOWED, MvnoStatus, can_move, ensure_move, ensure_takes_new_business

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
    legal = (current.value, target.value) in EXPECTED_MVNO_MOVES
    assert can_move(current, target) is legal
    if legal:
        assert ensure_move(current, target) is target
    else:
        with pytest.raises(IllegalTransition) as caught:
            ensure_move(current, target)
        assert caught.value.members["current_status"] == current.value


def test_terminated_is_final() -> None:
    assert ALLOWED[MvnoStatus.TERMINATED] == frozenset()


@pytest.mark.parametrize("status", list(MvnoStatus))
def test_only_active_mvno_takes_new_business(status: MvnoStatus) -> None:
    if status is MvnoStatus.ACTIVE:
        ensure_takes_new_business(status)
    else:
        with pytest.raises(MvnoNotActive):
            ensure_takes_new_business(status)
