"""Reports' copy of the register, registrations per ICB, messaging tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

from shared.migrations import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables(op)
    op.create_table(
        "reports_site",
        sa.Column("site_id", sa.String(32), primary_key=True),
        sa.Column("icb_code", sa.Text, nullable=False, index=True),
        sa.Column("psc_code", sa.Text, nullable=False),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("opened_on", sa.Date),
        sa.Column("closed_on", sa.Date),
        sa.Column("revision", sa.Integer, nullable=False),
    )
    op.create_table(
        "reports_icb_registrations",
        sa.Column("icb_code", sa.Text, primary_key=True),
        sa.Column("sites_registered", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reports_icb_registrations")
    op.drop_table("reports_site")
    drop_messaging_tables(op)
