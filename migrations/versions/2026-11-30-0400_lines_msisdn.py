"""An index on ``lines (msisdn, id)``: a number's lines, ended ones included (``GET /v1/lines?msisdn=``,
the console's number page). The unique index on live lines' numbers covers only live ones, so finding a
number's ended lines read the whole table.

Revision ID: 0015_lines_msisdn
Revises: 0014_platform_keys
Create Date: 2026-11-30 04:00
"""

from __future__ import annotations

from alembic import op

revision: str = "0015_lines_msisdn"
down_revision: str | None = "0014_platform_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_lines_msisdn", "lines", ["msisdn", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_lines_msisdn", table_name="lines")
