"""The lean lane's refusal: a statement that must not take effect raises, so it can run in autocommit.

The lean lane (kernel/lean.py) sends a partner's whole activation as ONE statement in autocommit: no
BEGIN and no COMMIT round trips. A statement in autocommit commits whatever it did unless it fails, so
when a gate refused, the Idempotency-Key was in flight or already used, the statement's last expression
calls this function, which raises: everything the statement did is undone, and the lane hands the
request to the full stack.

Revision ID: 0011_lean_lane
Revises: 0010_retention
Create Date: 2026-11-29 23:00
"""

from __future__ import annotations

from alembic import op

revision: str = "0011_lean_lane"
down_revision: str | None = "0010_retention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION lean_lane_decline(reason text) RETURNS boolean
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'lean lane declines: ' || reason;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION lean_lane_decline(text)")
