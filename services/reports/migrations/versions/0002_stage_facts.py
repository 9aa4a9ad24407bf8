"""Stage history, stage-at-quarter-end facts, freshness.

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
        "reports_stage_record",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("site_id", sa.String(32), nullable=False),
        sa.Column("psc_code", sa.Text, nullable=False),
        sa.Column("programme", sa.Text, nullable=False),
        sa.Column("tool", sa.Text),
        sa.Column("stage", sa.Integer, nullable=False),
        sa.Column("applies_from", sa.Date, nullable=False),
        sa.Column("reported_at", TS, nullable=False),
    )
    op.create_index("ix_reports_stage_record_series", "reports_stage_record",
                    ["site_id", "programme"])
    op.create_table(
        "reports_stage_fact",
        sa.Column("site_id", sa.String(32), primary_key=True),
        sa.Column("programme", sa.Text, primary_key=True),
        sa.Column("qn", sa.Integer, primary_key=True),
        sa.Column("tool", sa.Text),
        sa.Column("stage", sa.Integer, nullable=False),
        sa.Column("icb_code", sa.Text, nullable=False),
        sa.Column("psc_code", sa.Text, nullable=False),
        sa.Column("region", sa.Text, nullable=False),
    )
    op.create_index("ix_reports_stage_fact_q", "reports_stage_fact", ["programme", "qn"])
    op.create_table(
        "reports_freshness",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.Text),
        sa.Column("event_type", sa.Text),
        sa.Column("event_time", TS),
        sa.Column("applied_at", TS),
        sa.Column("horizon_qn", sa.Integer),
    )


def downgrade() -> None:
    op.drop_table("reports_freshness")
    op.drop_index("ix_reports_stage_fact_q", "reports_stage_fact")
    op.drop_table("reports_stage_fact")
    op.drop_index("ix_reports_stage_record_series", "reports_stage_record")
    op.drop_table("reports_stage_record")
