"""A version per quarter of activity, so the API caches activity and quality per quarter.

Readings land in the current quarter; a dashboard's read of earlier quarters no longer
recomputes with each of them. No rows to fill: a quarter without a row has not changed since
the views stamp, which every reader's key also holds.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reports_activity_quarter",
        sa.Column("qn", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reports_activity_quarter")
