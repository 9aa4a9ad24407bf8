"""A covering index for the adoption view's GROUP BY (index-only scans per quarter).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = ["programme", "qn", "stage", "tool", "icb_code", "psc_code", "region", "site_id"]


def upgrade() -> None:
    op.create_index("ix_reports_stage_fact_cover", "reports_stage_fact", COLUMNS)
    op.drop_index("ix_reports_stage_fact_q", "reports_stage_fact")


def downgrade() -> None:
    op.create_index("ix_reports_stage_fact_q", "reports_stage_fact", ["programme", "qn"])
    op.drop_index("ix_reports_stage_fact_cover", "reports_stage_fact")
