"""The cancellation blockers and the settlement netting, without a database."""

from __future__ import annotations

from datetime import date

from mvno_core.cancellations.rules import LineFacts, NetPayment, PairSum, blockers, net

TODAY = date(2026, 11, 30)


def _facts(**overrides: object) -> LineFacts:
    values: dict[str, object] = {
        "identity_passed": True,
        "subscriber_verified": True,
        "arrears_fen": 0,
        "arrears_paid_fen": 0,
        "contract_end": None,
        "today_in_china": TODAY,
        "accept_contract_penalty": False,
        "open_dispute_id": None,
    }
    values.update(overrides)
    return LineFacts(**values)  # type: ignore[arg-type]


def test_no_blockers_on_a_clean_line() -> None:
    assert blockers(_facts()) == []


def test_unverified_subscriber_blocks_even_after_a_passed_check() -> None:
    assert blockers(_facts(subscriber_verified=False)) == [{"code": "identity_not_verified"}]


def test_contract_ending_today_is_still_active_and_yesterday_is_not() -> None:
    assert blockers(_facts(contract_end=TODAY)) == [{"code": "contract_active", "contract_end": "2026-11-30"}]
    assert blockers(_facts(contract_end=date(2026, 11, 29))) == []
    assert blockers(_facts(contract_end=TODAY, accept_contract_penalty=True)) == []


def test_arrears_need_full_payment() -> None:
    assert blockers(_facts(arrears_fen=100, arrears_paid_fen=99)) == [
        {"code": "arrears_outstanding", "amount_fen": 1}
    ]
    assert blockers(_facts(arrears_fen=100, arrears_paid_fen=150)) == []


def test_net_per_unordered_pair() -> None:
    pairs = [
        PairSum("65", "54", 2, refund_fen=1005, arrears_fen=300),
        PairSum("54", "65", 1, refund_fen=200, arrears_fen=0),
        PairSum("11", "31", 1, refund_fen=0, arrears_fen=80),  # requested province owes home the arrears
        PairSum("44", "11", 1, refund_fen=50, arrears_fen=50),
    ]
    assert net(pairs) == [
        NetPayment("31", "11", 80),
        NetPayment("11", "44", 0),
        NetPayment("65", "54", 505),
    ]
