"""A stamp that changes with every change to the adoption views: readers cache under it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports_freshness") as batch:
        batch.add_column(sa.Column("views_stamp", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reports_freshness") as batch:
        batch.drop_column("views_stamp")
