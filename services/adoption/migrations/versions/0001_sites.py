"""Site register, ICB reference table, messaging tables.

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
        "adoption_icb",
        sa.Column("code", sa.String(3), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("short_name", sa.Text, nullable=False),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("psc_code", sa.Text, nullable=False, index=True),
        sa.Column("psc_name", sa.Text, nullable=False),
    )
    op.create_table(
        "adoption_site",
        sa.Column("site_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("setting_type", sa.Text, nullable=False),
        sa.Column("icb_code", sa.String(3), sa.ForeignKey("adoption_icb.code"), nullable=False,
                  index=True),
        sa.Column("psc_code", sa.Text, nullable=False, index=True),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("beds", sa.Integer),
        sa.Column("nursing", sa.Boolean),
        sa.Column("opened_on", sa.Date),
        sa.Column("closed_on", sa.Date),
        sa.Column("successor_id", sa.String(32)),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("adoption_site")
    op.drop_table("adoption_icb")
    drop_messaging_tables(op)
