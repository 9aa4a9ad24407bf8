"""A data-quality version per quarter, apart from its activity version.

Data quality changes only when a site's observations in a quarter start or end (or with the
views stamp); activity changes with every reading. Keyed apart, a dashboard's data-quality
answer stays cached while readings land at sites already observed. No values to fill: NULL
means unchanged since the views stamp, which every reader's key also holds.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports_activity_quarter") as batch:
        batch.add_column(sa.Column("quality", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reports_activity_quarter") as batch:
        batch.drop_column("quality")
