"""Scores, deterioration flags, SpO2 scale settings, residents' current site.

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
SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "scoring_score",
        sa.Column("observation_id", sa.Uuid, primary_key=True),
        sa.Column("resident", sa.Text, nullable=False),
        sa.Column("site_id", sa.Text, nullable=False),
        sa.Column("icb_code", sa.Text, nullable=False),
        sa.Column("psc_code", sa.Text, nullable=False),
        sa.Column("taken_at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("scored_at", TS, nullable=False),
        sa.Column("source_platform", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("scale", sa.Integer),
        sa.Column("total", sa.Integer),
        sa.Column("risk", sa.Text),
        sa.Column("red_score", sa.Boolean, nullable=False),
        sa.Column("monitoring", sa.Text),
        sa.Column("client_total", sa.Integer),
        sa.Column("claim", sa.Text),
        sa.Column("claim_mismatch", sa.Boolean, nullable=False),
        sa.Column("flag_id", sa.Uuid),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_scoring_score_resident_taken", "scoring_score",
                    ["resident", "taken_at"])
    # Trend history reads only complete scores: a partial index keeps that lookup tight.
    op.create_index("ix_scoring_score_complete", "scoring_score", ["resident", "taken_at"],
                    postgresql_where=sa.text("total IS NOT NULL"),
                    sqlite_where=sa.text("total IS NOT NULL"))
    op.create_table(
        "scoring_flag",
        sa.Column("flag_id", sa.Uuid, primary_key=True),
        sa.Column("observation_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("resident", sa.Text, nullable=False),
        sa.Column("site_id", sa.Text, nullable=False),
        sa.Column("icb_code", sa.Text, nullable=False),
        sa.Column("psc_code", sa.Text, nullable=False),
        sa.Column("taken_at", TS, nullable=False),
        sa.Column("raised_at", TS, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("total", sa.Integer),
        sa.Column("risk", sa.Text),
        sa.Column("acknowledged_at", TS),
        sa.Column("acknowledged_by", sa.Text),
    )
    op.create_index("ix_scoring_flag_open", "scoring_flag", ["site_id", "taken_at"],
                    postgresql_where=sa.text("acknowledged_at IS NULL"),
                    sqlite_where=sa.text("acknowledged_at IS NULL"))
    op.create_table(
        "scoring_spo2_scale",
        sa.Column("id", SEQ, primary_key=True, autoincrement=True),
        sa.Column("resident", sa.Text, nullable=False),
        sa.Column("scale", sa.Integer, nullable=False),
        sa.Column("set_by", sa.Text, nullable=False),
        sa.Column("set_at", TS, nullable=False),
        sa.Column("reason", sa.Text),
        sa.CheckConstraint("scale IN (1, 2)", name="ck_scoring_spo2_scale_value"),
    )
    op.create_index("ix_scoring_spo2_scale_resident", "scoring_spo2_scale",
                    ["resident", "set_at"])
    op.create_table(
        "scoring_resident",
        sa.Column("resident", sa.Text, primary_key=True),
        sa.Column("site_id", sa.Text, nullable=False),
        sa.Column("icb_code", sa.Text, nullable=False),
        sa.Column("psc_code", sa.Text, nullable=False),
        sa.Column("last_taken_at", TS, nullable=False),
    )
    op.create_index("ix_scoring_resident_site", "scoring_resident", ["site_id"])


def downgrade() -> None:
    op.drop_table("scoring_resident")
    op.drop_table("scoring_spo2_scale")
    op.drop_table("scoring_flag")
    op.drop_table("scoring_score")
