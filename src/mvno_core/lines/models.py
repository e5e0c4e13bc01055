"""Lines, their holds, re-verification requests and disputes.

Every child row carries the ``msisdn`` of its line, so that numbers, lines and their children can be
distributed together by ``msisdn`` (style.md, "Growing past one node"); one live line per number is a
partial unique index the database enforces, whatever the code does.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    text,
)
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
        CheckConstraint("imei ~ '^[0-9]{15}$'", name="imei_format"),
        Index("uq_lines_live_imei", "imei", unique=True, postgresql_where=LIVE),
        ForeignKeyConstraint(
            ["profile", "general_data"],
            ["line_profiles.profile", "line_profiles.general_data"],
            name="fk_lines_profile_line_profiles",
        ),
        Index("ix_lines_subscriber_id", "subscriber_id", "id"),
        # A number's lines, ended ones included (the live-number index above holds live lines only).
        Index("ix_lines_msisdn", "msisdn", "id"),
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
    # The profile the line was activated under and the rules it took from it (a snapshot: ending the
    # line decrements the counter of ``cap_class`` even if the profile's row changes later).
    profile: Mapped[str] = mapped_column(String(16), server_default=text("'consumer'"))
    general_data: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    cap_class: Mapped[str] = mapped_column(String(32), server_default=text("'standard'"))
    voice_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    sms_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    data_cap_mb: Mapped[int | None] = mapped_column(Integer)
    imei: Mapped[str | None] = mapped_column(String(15))


class LineProfile(Base):
    """The rules of one profile (consumer, iot, industry), per ``general_data`` (通用流量): data, not
    code. The activation statement reads the row it activates under."""

    __tablename__ = "line_profiles"
    __table_args__ = (
        PrimaryKeyConstraint("profile", "general_data"),
        CheckConstraint("profile ~ '^[a-z_]{1,16}$'", name="profile_format"),
        CheckConstraint("card_cap >= 1", name="card_cap_positive"),
        CheckConstraint("data_cap_mb IS NULL OR data_cap_mb > 0", name="data_cap_positive"),
    )

    profile: Mapped[str] = mapped_column(String(16))
    general_data: Mapped[bool] = mapped_column(Boolean)
    # Profiles with the same cap class share one counter per subscriber (and should share one cap).
    cap_class: Mapped[str] = mapped_column(String(32))
    card_cap: Mapped[int] = mapped_column(Integer)
    voice_enabled: Mapped[bool] = mapped_column(Boolean)
    sms_enabled: Mapped[bool] = mapped_column(Boolean)
    data_cap_mb: Mapped[int | None] = mapped_column(Integer)
    imei_required: Mapped[bool] = mapped_column(Boolean)
    # An enterprise subscriber must register the card's end user (Anti-Telecom-Fraud Law art. 12).
    end_user_required: Mapped[bool] = mapped_column(Boolean)


class CardSlot(Base):
    """Live lines of one subscriber in one cap class: the card cap is a conditional update of this row."""

    __tablename__ = "card_slots"
    __table_args__ = (
        PrimaryKeyConstraint("subscriber_id", "cap_class"),
        CheckConstraint("live_lines >= 0", name="live_lines_non_negative"),
    )

    subscriber_id: Mapped[str] = mapped_column(String(40), ForeignKey("subscribers.id"))
    cap_class: Mapped[str] = mapped_column(String(32))
    live_lines: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EndUser(Base):
    """Who uses an enterprise's card (Anti-Telecom-Fraud Law art. 12): name and ID number encrypted with
    the subscribers' PII key ring, masked copies for responses. One current registration per line;
    a new one (the device changed hands) replaces it and the old one keeps ``replaced_at``."""

    __tablename__ = "line_end_users"
    __table_args__ = (
        CheckConstraint("replaced_at IS NULL OR replaced_at >= registered_at", name="replaced_after"),
        Index("ix_line_end_users_line_id", "line_id", "registered_at"),
        Index(
            "uq_line_end_users_current", "line_id", unique=True, postgresql_where=text("replaced_at IS NULL")
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    line_id: Mapped[str] = mapped_column(String(40), ForeignKey("lines.id"))
    msisdn: Mapped[str] = mapped_column(String(11, collation="C"))
    mvno_id: Mapped[str] = mapped_column(String(40))
    id_type: Mapped[str] = mapped_column(String(32))
    name_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_number_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    name_masked: Mapped[str] = mapped_column(Text)
    id_number_masked: Mapped[str] = mapped_column(Text)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    registered_by_key_id: Mapped[str] = mapped_column(String(40))
    replaced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


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
