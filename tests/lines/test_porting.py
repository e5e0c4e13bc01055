"""Porting eligibility: each condition alone, all together, and over HTTP."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from mvno_core.lines.porting import PortingFacts, porting_reasons
from tests.factories import assert_problem
from tests.lines.conftest import Scene

NOW = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)  # 12:00 in China
ELIGIBLE = PortingFacts(
    verified=True,
    status="active",
    arrears_fen=0,
    contract_end=None,
    last_ported_at=None,
    segments_portable=True,
)


def test_a_line_meeting_every_condition_is_eligible() -> None:
    assert porting_reasons(ELIGIBLE, NOW) == []


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"verified": False}, "real_name_unverified"),
        ({"status": "suspended"}, "line_not_normal"),
        ({"arrears_fen": 1}, "arrears_outstanding"),
        ({"contract_end": date(2026, 11, 29)}, "contract_active"),  # ends today (China): still running
        ({"last_ported_at": NOW - timedelta(days=119)}, "ported_recently"),
        ({"segments_portable": False}, "segment_not_portable"),
    ],
)
def test_each_condition_alone(change: dict[str, object], code: str) -> None:
    reasons = porting_reasons(replace(ELIGIBLE, **change), NOW)  # type: ignore[arg-type]
    assert [reason.code for reason in reasons] == [code]


def test_boundaries_that_pass() -> None:
    passed_contract = replace(ELIGIBLE, contract_end=date(2026, 11, 28))
    old_port = replace(ELIGIBLE, last_ported_at=NOW - timedelta(days=120))
    assert porting_reasons(passed_contract, NOW) == []
    assert porting_reasons(old_port, NOW) == []


def test_all_together_in_a_fixed_order_with_their_figures() -> None:
    facts = PortingFacts(
        verified=False,
        status="suspended",
        arrears_fen=1_234,
        contract_end=date(2027, 6, 30),
        last_ported_at=NOW - timedelta(days=3),
        segments_portable=False,
    )
    reasons = porting_reasons(facts, NOW)
    assert [reason.code for reason in reasons] == [
        "real_name_unverified",
        "line_not_normal",
        "arrears_outstanding",
        "contract_active",
        "ported_recently",
        "segment_not_portable",
    ]
    assert reasons[2].amount_fen == 1_234
    assert reasons[3].contract_end == date(2027, 6, 30)


async def test_porting_eligibility_over_http(
    client: httpx.AsyncClient, scene: Scene, other_scene: Scene
) -> None:
    line = (await scene.activate(client, scene.number(500), contract_end="2030-01-01")).json()
    url = f"/v1/lines/{line['id']}/porting-eligibility"
    await client.put(
        f"/v1/lines/{line['id']}/account", json={"balance_fen": 0, "arrears_fen": 300}, headers=scene.partner
    )
    answer = (await client.get(url, headers=scene.partner)).json()
    assert answer["eligible"] is False
    # MVNO segments are excluded by default (MVNO_SEGMENTS_PORTABLE=false).
    assert [r["code"] for r in answer["reasons"]] == [
        "arrears_outstanding",
        "contract_active",
        "segment_not_portable",
    ]
    assert answer["reasons"][0]["amount_fen"] == 300
    assert_problem(await client.get(url, headers=scene.other_partner), 404, "not_found")
