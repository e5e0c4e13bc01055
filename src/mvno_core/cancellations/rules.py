"""Cancellation blockers and settlement netting, as pure functions (unit-tested without a database).

Blockers are all reported together, so the service point can clear every one in one visit:
- ``identity_not_verified``: the identity check at the counter did not pass, or the subscriber has no
  passed real-name verification;
- ``arrears_outstanding`` (``amount_fen``): arrears not covered by ``arrears_paid_fen``;
- ``contract_active`` (``contract_end``): a contract running to today or later (China date), unless the
  subscriber accepts its penalty;
- ``open_dispute`` (``dispute_id``): a "not my card" dispute must be resolved first.

Netting (``GET /v1/settlements``): for a cross-province cancellation the requested province's outlet pays
the refund to the subscriber and collects the arrears on behalf of the home province. So for each entry
the home province owes the requested province ``refund_fen`` and the requested province owes the home
province ``arrears_fen``. Per ordered pair (home → requested) the sums are reported as they are; per
unordered pair the two directions are netted into one payment, ``payer → payee, amount_fen > 0``
(pairs that net to zero are listed with ``amount_fen = 0`` and the lower code as payer).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any


@dataclass(frozen=True, slots=True)
class LineFacts:
    identity_passed: bool
    subscriber_verified: bool
    arrears_fen: int
    arrears_paid_fen: int
    contract_end: date | None
    today_in_china: date
    accept_contract_penalty: bool
    open_dispute_id: str | None


def blockers(facts: LineFacts) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if not (facts.identity_passed and facts.subscriber_verified):
        found.append({"code": "identity_not_verified"})
    if facts.arrears_fen > facts.arrears_paid_fen:
        found.append(
            {"code": "arrears_outstanding", "amount_fen": facts.arrears_fen - facts.arrears_paid_fen}
        )
    if (
        facts.contract_end is not None
        and facts.contract_end >= facts.today_in_china
        and not facts.accept_contract_penalty
    ):
        found.append({"code": "contract_active", "contract_end": facts.contract_end.isoformat()})
    if facts.open_dispute_id is not None:
        found.append({"code": "open_dispute", "dispute_id": facts.open_dispute_id})
    return found


@dataclass(frozen=True, slots=True)
class PairSum:
    from_province: str
    to_province: str
    entries: int
    refund_fen: int
    arrears_fen: int


@dataclass(frozen=True, slots=True)
class NetPayment:
    payer_province: str
    payee_province: str
    amount_fen: int


def net(pairs: Iterable[PairSum]) -> list[NetPayment]:
    """One payment per unordered province pair (integer fen): what the lower-coded province owes the
    higher one, minus what it is owed; the sign picks the payer."""
    owed: dict[tuple[str, str], int] = {}
    for pair in pairs:
        low, high = sorted((pair.from_province, pair.to_province))
        # home (from) owes requested (to) the refund; requested owes home the arrears.
        home_owes = pair.refund_fen - pair.arrears_fen
        owed[(low, high)] = owed.get((low, high), 0) + (
            home_owes if pair.from_province == low else -home_owes
        )
    payments = []
    for (low, high), amount in sorted(owed.items()):
        if amount >= 0:
            payments.append(NetPayment(low, high, amount))
        else:
            payments.append(NetPayment(high, low, -amount))
    return payments
