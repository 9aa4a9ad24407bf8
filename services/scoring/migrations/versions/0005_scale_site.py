"""SpO2 scale settings made before a resident's first reading name the site caring for them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scoring_spo2_scale") as batch:
        batch.add_column(sa.Column("site_id", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scoring_spo2_scale") as batch:
        batch.drop_column("site_id")
