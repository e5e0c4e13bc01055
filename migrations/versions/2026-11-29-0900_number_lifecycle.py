"""Number lifecycle: indexes the sweeper's write-downs walk (lapsed reservations, ended quarantines).

Revision ID: 0003_number_lifecycle
Revises: 0002_numbering
Create Date: 2026-11-29 09:00
"""

from __future__ import annotations

from alembic import op

revision: str = "0003_number_lifecycle"
down_revision: str | None = "0002_numbering"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The sweeper frees numbers whose reservation lapsed, oldest first, and releases ended quarantines:
    # both walk only the few rows in that status.
    op.create_index(
        "ix_numbers_reserved_until",
        "numbers",
        ["reserved_until"],
        postgresql_where="status = 'reserved'",
    )
    op.create_index(
        "ix_numbers_quarantine_until",
        "numbers",
        ["quarantine_until"],
        postgresql_where="status = 'quarantined'",
    )


def downgrade() -> None:
    op.drop_index("ix_numbers_quarantine_until", table_name="numbers")
    op.drop_index("ix_numbers_reserved_until", table_name="numbers")
