"""Observation sets and idempotency keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ingest_observation_set",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("resident", sa.Text, nullable=False, index=True),
        sa.Column("site_id", sa.String(32), nullable=False),
        sa.Column("icb_code", sa.Text, nullable=False),
        sa.Column("psc_code", sa.Text, nullable=False),
        sa.Column("taken_at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("source_platform", sa.Text, nullable=False),
        sa.Column("platform_set_id", sa.Text),
        sa.Column("content_hash", sa.Text, nullable=False),
        sa.Column("respiration_rate", sa.Text),
        sa.Column("spo2", sa.Text),
        sa.Column("on_oxygen", sa.Boolean),
        sa.Column("systolic_bp", sa.Text),
        sa.Column("pulse", sa.Text),
        sa.Column("consciousness", sa.String(1)),
        sa.Column("temperature_c", sa.Text),
        sa.Column("spo2_scale_claim", sa.Integer),
        sa.Column("soft_signs", sa.Text, nullable=False),
        sa.Column("client_news2_total", sa.Integer),
        sa.Column("recorder", sa.Text),
        sa.UniqueConstraint("source_platform", "platform_set_id",
                            name="uq_ingest_set_platform_id"),
    )
    op.create_table(
        "ingest_idempotency",
        sa.Column("caller", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ingest_idempotency")
    op.drop_table("ingest_observation_set")
