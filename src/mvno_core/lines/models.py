"""Lines, their holds, re-verification requests and disputes.

Every child row carries the ``msisdn`` of its line, so that numbers, lines and their children can be
distributed together by ``msisdn`` (style.md, "Growing past one node"); one live line per number is a
partial unique index the database enforces, whatever the code does.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, DateTime, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from mvno_core.kernel.db import Base

LIVE = text("status <> 'cancelled'")


class Line(Base):
    __tablename__ = "lines"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'suspended', 'cancelled')", name="status"),
        CheckConstraint("(status = 'cancelled') = (ended_at IS NOT NULL)", name="ended_at"),
        CheckConstraint(
            "end_reason IS NULL OR end_reason IN ('cancelled', 'fraudulent', 'arrears_termination')",
            name="end_reason",
        ),
        CheckConstraint("iccid ~ '^8986[0-9]{15,16}$'", name="iccid_format"),
        CheckConstraint("imsi ~ '^460[0-9]{12}$'", name="imsi_format"),
        CheckConstraint("balance_fen >= 0 AND arrears_fen >= 0", name="money_non_negative"),
        Index("uq_lines_live_msisdn", "msisdn", unique=True, postgresql_where=LIVE),
        Index("uq_lines_live_iccid", "iccid", unique=True, postgresql_where=LIVE),
        Index("uq_lines_live_imsi", "imsi", unique=True, postgresql_where=LIVE),
        Index("ix_lines_subscriber_id", "subscriber_id", "id"),
        Index("ix_lines_mvno_id", "mvno_id", "id"),
        Index("ix_lines_overdue_since", "overdue_since", postgresql_where=text("arrears_fen > 0")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    msisdn: Mapped[str] = mapped_column(String(11, collation="C"), ForeignKey("numbers.msisdn"))
    subscriber_id: Mapped[str] = mapped_column(String(40), ForeignKey("subscribers.id"))
    mvno_id: Mapped[str] = mapped_column(String(40), ForeignKey("mvnos.id"))
    status: Mapped[str] = mapped_column(String(16))
    iccid: Mapped[str] = mapped_column(String(20))
    imsi: Mapped[str] = mapped_column(String(15))
    plan_code: Mapped[str | None] = mapped_column(String(64))
    contract_end: Mapped[date | None] = mapped_column(Date)
    activated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_reason: Mapped[str | None] = mapped_column(String(32))
    # The account snapshot billing sends (PUT /v1/lines/{id}/account), in fen.
    balance_fen: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    arrears_fen: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    overdue_since: Mapped[date | None] = mapped_column(Date)
    account_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by_key_id: Mapped[str] = mapped_column(String(40))


class Hold(Base):
    """One reason a line is suspended. Open while ``lifted_at`` is NULL; one open hold per reason."""

    __tablename__ = "line_holds"
    __table_args__ = (
        CheckConstraint(
            "reason IN ('arrears', 'user_request', 'loss_report', 'risk_control', 'reverification', "
            "'regulatory', 'judicial')",
            name="reason",
        ),
        CheckConstraint("lifted_at IS NULL OR lifted_at >= placed_at", name="lifted_after_placed"),
        Index(
            "uq_line_holds_open_reason",
            "line_id",
            "reason",
            unique=True,
            postgresql_where=text("lifted_at IS NULL"),
        ),
        Index("ix_line_holds_line_id", "line_id", "placed_at"),
        Index(
            "ix_line_holds_open_arrears",
            "placed_at",
            postgresql_where=text("lifted_at IS NULL AND reason = 'arrears'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    line_id: Mapped[str] = mapped_column(String(40), ForeignKey("lines.id"))
    msisdn: Mapped[str] = mapped_column(String(11, collation="C"))
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    placed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    placed_by_key_id: Mapped[str] = mapped_column(String(40))
    placed_by_role: Mapped[str] = mapped_column(String(16))
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lifted_by_key_id: Mapped[str | None] = mapped_column(String(40))
    lifted_by_role: Mapped[str | None] = mapped_column(String(16))
    lift_note: Mapped[str | None] = mapped_column(Text)


class ReverificationRequest(Base):
    """A second face check (二次实人认证) the subscriber owes by ``deadline_at``."""

    __tablename__ = "reverification_requests"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'satisfied', 'overdue')", name="status"),
        Index("ix_reverification_requests_due", "deadline_at", postgresql_where=text("status = 'pending'")),
        Index("ix_reverification_requests_subscriber_id", "subscriber_id", "status"),
        Index("ix_reverification_requests_line_id", "line_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    line_id: Mapped[str] = mapped_column(String(40), ForeignKey("lines.id"))
    msisdn: Mapped[str] = mapped_column(String(11, collation="C"))
    subscriber_id: Mapped[str] = mapped_column(String(40), ForeignKey("subscribers.id"))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Dispute(Base):
    """ "Not my card": the person behind an ID says they never opened this line (一证通查)."""

    __tablename__ = "disputes"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'owner_confirmed', 'fraudulent')", name="status"),
        Index("uq_disputes_open_line_id", "line_id", unique=True, postgresql_where=text("status = 'open'")),
        Index("ix_disputes_line_id", "line_id", "opened_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    line_id: Mapped[str] = mapped_column(String(40), ForeignKey("lines.id"))
    msisdn: Mapped[str] = mapped_column(String(11, collation="C"))
    mvno_id: Mapped[str] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    hold_id: Mapped[str] = mapped_column(String(40))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    opened_by_key_id: Mapped[str] = mapped_column(String(40))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by_key_id: Mapped[str | None] = mapped_column(String(40))
