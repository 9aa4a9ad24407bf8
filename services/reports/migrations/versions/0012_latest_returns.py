"""Each PSC's latest return per programme, kept with the stage records.

Data quality's "PSCs whose latest return is older than the quarter" took the maximum over
every stage record on each read (25-50 ms at national volume); ``reports_latest_return``
keeps that maximum as records arrive. Filled here from the existing records.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reports_latest_return",
        sa.Column("programme", sa.Text, primary_key=True),
        sa.Column("psc_code", sa.Text, primary_key=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute("INSERT INTO reports_latest_return (programme, psc_code, reported_at) "
               "SELECT programme, psc_code, max(reported_at) FROM reports_stage_record "
               "GROUP BY programme, psc_code")


def downgrade() -> None:
    op.drop_table("reports_latest_return")
