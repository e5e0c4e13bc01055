"""One check for every transition table: the legal moves are exactly the expected ones, a legal move
returns its target, and an illegal one raises ``illegal_transition`` naming the current status."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

import pytest

from mvno_core.kernel.problems import IllegalTransition

S = TypeVar("S", bound=StrEnum)


def check_move(
    current: S,
    target: S,
    expected: set[tuple[str, str]],
    can_move: Callable[[Any, Any], bool],
    ensure_move: Callable[[Any, Any], Any],
) -> None:
    legal = (current.value, target.value) in expected
    assert can_move(current, target) is legal
    if legal:
        assert ensure_move(current, target) is target
    else:
        with pytest.raises(IllegalTransition) as caught:
            ensure_move(current, target)
        assert caught.value.members["current_status"] == current.value
