"""Activity counters per site and quarter; distinct residents observed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COUNTERS = ("observation_sets", "scored_sets", "complete_sets", "risk_low", "risk_low_medium",
            "risk_medium", "risk_high", "red_scores", "flags", "claim_mismatches")


def upgrade() -> None:
    op.create_table(
        "reports_activity",
        sa.Column("site_id", sa.String(32), primary_key=True),
        sa.Column("qn", sa.Integer, primary_key=True),
        sa.Column("icb_code", sa.Text, nullable=False),
        sa.Column("psc_code", sa.Text, nullable=False),
        *(sa.Column(name, sa.Integer, nullable=False, server_default="0") for name in COUNTERS),
    )
    op.create_index("ix_reports_activity_qn", "reports_activity", ["qn"])
    op.create_table(
        "reports_activity_resident",
        sa.Column("site_id", sa.String(32), primary_key=True),
        sa.Column("qn", sa.Integer, primary_key=True),
        sa.Column("resident", sa.Text, primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("reports_activity_resident")
    op.drop_index("ix_reports_activity_qn", "reports_activity")
    op.drop_table("reports_activity")
