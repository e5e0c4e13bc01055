from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Computed, DateTime, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from mvno_core.kernel.db import Base


class Number(Base):
    """One MSISDN. Its block (and so MVNO, host, province) is the block whose prefix it starts with.

    ``reserved`` with ``reserved_until`` in the past means *available*: every read and claim treats it
    so, and the sweeper tidies the row later. The number row is the single truth for who holds it (one
    reservation id, later one line id), so claims race on this row alone.
    """

    __tablename__ = "numbers"
    __table_args__ = (
        CheckConstraint("msisdn ~ '^1[0-9]{10}$'", name="msisdn_format"),
        CheckConstraint("status IN ('available', 'reserved', 'in_use', 'quarantined')", name="status"),
        CheckConstraint("grade IN ('standard', 'premium')", name="grade"),
        CheckConstraint(
            "status <> 'reserved' OR (reservation_id IS NOT NULL AND reserved_until IS NOT NULL)",
            name="reserved_has_reservation",
        ),
        # A number waits in a reissue batch (recycling/) only while it is quarantined.
        CheckConstraint(
            "reissue_batch_id IS NULL OR status = 'quarantined'", name="reissue_batch_quarantined"
        ),
        Index(
            "ix_numbers_reissue_batch_id",
            "reissue_batch_id",
            postgresql_where=text("reissue_batch_id IS NOT NULL"),
        ),
        # Live per-block counts come from an index-only scan of this index.
        Index("ix_numbers_block_prefix_status", "block_prefix", "status", "reserved_until"),
        # Suffix searches (*8888): reverse(msisdn) LIKE '8888%' is a range scan here.
        Index("ix_numbers_msisdn_reversed", text("reverse(msisdn)")),
        # Numbers that may be claimable (numbers.repository.CLAIMABLE), by msisdn: claims and "available"
        # searches range-scan a block here and never walk its taken numbers.
        Index("ix_numbers_claimable", "msisdn", postgresql_where=text("status IN ('available', 'reserved')")),
        # The sweeper's write-downs: lapsed reservations and ended quarantines, oldest first.
        Index("ix_numbers_reserved_until", "reserved_until", postgresql_where=text("status = 'reserved'")),
        Index(
            "ix_numbers_quarantine_until", "quarantine_until", postgresql_where=text("status = 'quarantined'")
        ),
        Index(
            "ix_numbers_premium",
            "msisdn",
            postgresql_where=text("grade = 'premium'"),
        ),
        Index(
            "ix_numbers_msisdn_trgm",
            "msisdn",
            postgresql_using="gin",
            postgresql_ops={"msisdn": "gin_trgm_ops"},
        ),
    )

    msisdn: Mapped[str] = mapped_column(String(11, collation="C"), primary_key=True)
    block_prefix: Mapped[str] = mapped_column(
        String(7, collation="C"),
        Computed("substr(msisdn, 1, 7)", persisted=True),
        ForeignKey("blocks.prefix"),
    )
    status: Mapped[str] = mapped_column(String(16))
    grade: Mapped[str] = mapped_column(String(16))
    reservation_id: Mapped[str | None] = mapped_column(String(40))
    reserved_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Filled by the later lifecycle stages (activation, cancellation, quarantine).
    line_id: Mapped[str | None] = mapped_column(String(40))
    quarantine_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set while the number waits, still quarantined, for the recycling platforms to unbind it (recycling/).
    reissue_batch_id: Mapped[str | None] = mapped_column(String(40))
    # When a previously used number last became available again: "new to the network" for apps.
    reissued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
