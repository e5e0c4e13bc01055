"""Line profiles (consumer, IoT, industry) as data; card counters per cap class; end-user registrations.

``line_profiles`` holds each profile's rules, one row per (profile, general_data): the card cap per ID
and the cap class it counts in, voice/SMS, the data cap, whether the SIM is locked to a device (IMEI)
and whether an enterprise subscriber must register the card's end user (Anti-Telecom-Fraud Law art.
12). The activation statement reads these rows; no code branches on a profile's name. ``card_slots``
is the race-free card counter per subscriber and cap class (``subscribers.live_lines`` stays the
total, which 一证通查 and retention read). A line records its profile, its cap class and the rules it
was activated under, so ending it decrements the counter it took even if the table changes later.

Revision ID: 0012_profiles
Revises: 0011_lean_lane
Create Date: 2026-11-30 01:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0012_profiles"
down_revision: str | None = "0011_lean_lane"
branch_labels = None
depends_on = None

MSISDN = sa.String(length=11, collation="C")
LIVE = sa.text("status <> 'cancelled'")

# The seeded rules (domain facts: 5 cards per ID at one MVNO; IoT: voice and SMS off, small data,
# SIM locked to a device; general-data IoT cards need personal registration, at most 10 per ID). An
# operator changes them with SQL; the figures marked M in the domain notes are meant to be edited.
PROFILES = [
    # profile, general_data, cap_class, card_cap, voice, sms, data_cap_mb, imei_required, end_user_required
    ("consumer", False, "standard", 5, True, True, None, False, False),
    ("industry", False, "standard", 5, True, True, None, False, True),
    ("iot", False, "standard", 5, False, False, 1024, True, True),
    ("iot", True, "iot_general", 10, False, False, 5120, True, True),
]


def upgrade() -> None:
    profiles = op.create_table(
        "line_profiles",
        sa.Column("profile", sa.String(16), nullable=False),
        sa.Column("general_data", sa.Boolean(), nullable=False),
        sa.Column("cap_class", sa.String(32), nullable=False),
        sa.Column("card_cap", sa.Integer(), nullable=False),
        sa.Column("voice_enabled", sa.Boolean(), nullable=False),
        sa.Column("sms_enabled", sa.Boolean(), nullable=False),
        sa.Column("data_cap_mb", sa.Integer(), nullable=True),
        sa.Column("imei_required", sa.Boolean(), nullable=False),
        sa.Column("end_user_required", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("profile", "general_data", name="pk_line_profiles"),
        sa.CheckConstraint("profile ~ '^[a-z_]{1,16}$'", name="ck_line_profiles_profile_format"),
        sa.CheckConstraint("card_cap >= 1", name="ck_line_profiles_card_cap_positive"),
        sa.CheckConstraint(
            "data_cap_mb IS NULL OR data_cap_mb > 0", name="ck_line_profiles_data_cap_positive"
        ),
    )
    op.bulk_insert(
        profiles,
        [
            dict(
                zip(
                    (
                        "profile",
                        "general_data",
                        "cap_class",
                        "card_cap",
                        "voice_enabled",
                        "sms_enabled",
                        "data_cap_mb",
                        "imei_required",
                        "end_user_required",
                    ),
                    row,
                    strict=True,
                )
            )
            for row in PROFILES
        ],
    )

    op.create_table(
        "card_slots",
        sa.Column(
            "subscriber_id",
            sa.String(40),
            sa.ForeignKey("subscribers.id", name="fk_card_slots_subscriber_id_subscribers"),
            nullable=False,
        ),
        sa.Column("cap_class", sa.String(32), nullable=False),
        sa.Column("live_lines", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subscriber_id", "cap_class", name="pk_card_slots"),
        sa.CheckConstraint("live_lines >= 0", name="ck_card_slots_live_lines_non_negative"),
    )
    # Every line so far is a consumer line: the whole counter is the standard class.
    op.execute(
        "INSERT INTO card_slots (subscriber_id, cap_class, live_lines, updated_at) "
        "SELECT id, 'standard', live_lines, now() FROM subscribers WHERE live_lines > 0"
    )

    for column in (
        sa.Column("profile", sa.String(16), server_default=sa.text("'consumer'"), nullable=False),
        sa.Column("general_data", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("cap_class", sa.String(32), server_default=sa.text("'standard'"), nullable=False),
        sa.Column("voice_enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("sms_enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("data_cap_mb", sa.Integer(), nullable=True),
        sa.Column("imei", sa.String(15), nullable=True),
    ):
        op.add_column("lines", column)
    op.create_foreign_key(
        "fk_lines_profile_line_profiles",
        "lines",
        "line_profiles",
        ["profile", "general_data"],
        ["profile", "general_data"],
    )
    op.create_check_constraint("ck_lines_imei_format", "lines", "imei ~ '^[0-9]{15}$'")
    op.create_index("uq_lines_live_imei", "lines", ["imei"], unique=True, postgresql_where=LIVE)

    op.create_table(
        "line_end_users",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "line_id",
            sa.String(40),
            sa.ForeignKey("lines.id", name="fk_line_end_users_line_id_lines"),
            nullable=False,
        ),
        sa.Column("msisdn", MSISDN, nullable=False),
        sa.Column("mvno_id", sa.String(40), nullable=False),
        sa.Column("id_type", sa.String(32), nullable=False),
        sa.Column("name_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("id_number_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("name_masked", sa.Text(), nullable=False),
        sa.Column("id_number_masked", sa.Text(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered_by_key_id", sa.String(40), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "replaced_at IS NULL OR replaced_at >= registered_at", name="ck_line_end_users_replaced_after"
        ),
    )
    op.create_index("ix_line_end_users_line_id", "line_end_users", ["line_id", "registered_at"])
    op.create_index(
        "uq_line_end_users_current",
        "line_end_users",
        ["line_id"],
        unique=True,
        postgresql_where=sa.text("replaced_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("line_end_users")
    op.drop_index("uq_lines_live_imei", table_name="lines")
    op.drop_constraint("ck_lines_imei_format", "lines", type_="check")
    op.drop_constraint("fk_lines_profile_line_profiles", "lines", type_="foreignkey")
    for column in ("imei", "data_cap_mb", "sms_enabled", "voice_enabled", "cap_class", "general_data"):
        op.drop_column("lines", column)
    op.drop_column("lines", "profile")
    op.drop_table("card_slots")
    op.drop_table("line_profiles")
