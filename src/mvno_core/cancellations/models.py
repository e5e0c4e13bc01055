"""Cancellations and the inter-province settlement entries cross-province ones leave behind."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from mvno_core.kernel.db import Base


class Cancellation(Base):
    """The subscriber ended a line at a service point in ``requested_province`` (any province)."""

    __tablename__ = "cancellations"
    __table_args__ = (
        CheckConstraint("status IN ('completed')", name="status"),
        CheckConstraint("cross_province = (home_province <> requested_province)", name="cross_province"),
        CheckConstraint("refund_fen >= 0 AND arrears_settled_fen >= 0", name="money_non_negative"),
        # A line ends once: at most one cancellation per line.
        Index("uq_cancellations_line_id", "line_id", unique=True),
        Index("ix_cancellations_mvno_id", "mvno_id", "id"),
        # A takeover repoints a subscriber's cancellations.
        Index("ix_cancellations_subscriber_id", "subscriber_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    line_id: Mapped[str] = mapped_column(String(40), ForeignKey("lines.id"))
    msisdn: Mapped[str] = mapped_column(String(11, collation="C"))
    mvno_id: Mapped[str] = mapped_column(String(40))
    subscriber_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))
    home_province: Mapped[str] = mapped_column(String(2))
    requested_province: Mapped[str] = mapped_column(String(2))
    cross_province: Mapped[bool] = mapped_column(Boolean)
    refund_fen: Mapped[int] = mapped_column(BigInteger)
    arrears_settled_fen: Mapped[int] = mapped_column(BigInteger)
    penalty_accepted: Mapped[bool] = mapped_column(Boolean)
    identity_method: Mapped[str] = mapped_column(String(32))
    completed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by_key_id: Mapped[str] = mapped_column(String(40))


class SettlementEntry(Base):
    """What a cross-province cancellation leaves between two provinces: the requested province paid the
    refund and collected the arrears on the home province's behalf."""

    __tablename__ = "settlement_entries"
    __table_args__ = (
        CheckConstraint("from_province <> to_province", name="cross_province"),
        CheckConstraint("refund_fen >= 0 AND arrears_fen >= 0", name="money_non_negative"),
        Index("uq_settlement_entries_cancellation_id", "cancellation_id", unique=True),
        Index("ix_settlement_entries_occurred_at", "occurred_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    cancellation_id: Mapped[str] = mapped_column(String(40), ForeignKey("cancellations.id"))
    from_province: Mapped[str] = mapped_column(String(2))
    to_province: Mapped[str] = mapped_column(String(2))
    refund_fen: Mapped[int] = mapped_column(BigInteger)
    arrears_fen: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
