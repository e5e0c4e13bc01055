"""API keys for recycling platforms: role ``recycling_platform``, bound to one platform
(``api_keys.recycling_platform_id``). Such a key may call only the CAMARA number-recycling check; the
platform's deactivation revokes it. ``api_keys.role`` and ``audit_entries.actor_role`` widen to 32
characters for the longer role name (a varchar widening: no table rewrite, no row touched, so the audit
ledger's append-only trigger and hash chain are unaffected).

Revision ID: 0014_platform_keys
Revises: 0013_recycling
Create Date: 2026-11-30 03:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0014_platform_keys"
down_revision: str | None = "0013_recycling"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("api_keys", "role", type_=sa.String(32), existing_nullable=False)
    op.alter_column("audit_entries", "actor_role", type_=sa.String(32), existing_nullable=False)
    op.add_column(
        "api_keys",
        sa.Column(
            "recycling_platform_id",
            sa.String(40),
            sa.ForeignKey(
                "recycling_platforms.id", name="fk_api_keys_recycling_platform_id_recycling_platforms"
            ),
            nullable=True,
        ),
    )
    op.create_index("ix_api_keys_recycling_platform_id", "api_keys", ["recycling_platform_id"])
    op.drop_constraint(op.f("ck_api_keys_role"), "api_keys", type_="check")
    op.create_check_constraint(
        op.f("ck_api_keys_role"),
        "api_keys",
        "role IN ('operator', 'partner', 'regulator', 'recycling_platform')",
    )
    op.create_check_constraint(
        op.f("ck_api_keys_platform_has_platform"),
        "api_keys",
        "(role = 'recycling_platform') = (recycling_platform_id IS NOT NULL)",
    )


def downgrade() -> None:
    op.execute("DELETE FROM api_keys WHERE role = 'recycling_platform'")
    op.drop_constraint(op.f("ck_api_keys_platform_has_platform"), "api_keys", type_="check")
    op.drop_constraint(op.f("ck_api_keys_role"), "api_keys", type_="check")
    op.create_check_constraint(
        op.f("ck_api_keys_role"), "api_keys", "role IN ('operator', 'partner', 'regulator')"
    )
    op.drop_index("ix_api_keys_recycling_platform_id", table_name="api_keys")
    op.drop_column("api_keys", "recycling_platform_id")
    op.alter_column("audit_entries", "actor_role", type_=sa.String(16), existing_nullable=False)
    op.alter_column("api_keys", "role", type_=sa.String(16), existing_nullable=False)
