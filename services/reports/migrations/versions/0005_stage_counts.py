"""Sites per stage per area and quarter: counters kept beside the facts (the fast read path).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reports_stage_count",
        sa.Column("programme", sa.Text, primary_key=True),
        sa.Column("qn", sa.Integer, primary_key=True),
        sa.Column("level", sa.String(16), primary_key=True),
        sa.Column("code", sa.Text, primary_key=True),
        sa.Column("tool", sa.Text, primary_key=True),   # "" when the record names no tool
        sa.Column("stage", sa.Integer, primary_key=True),
        sa.Column("sites", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reports_stage_count")
