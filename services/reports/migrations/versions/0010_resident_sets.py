"""Residents observed count standing sets: a per-row count, so a withdrawn set can be taken back.

A (site, quarter, resident) row used to mean "observed"; it now carries ``sets``, the number
of that resident's sets in that site and quarter that still stand (recorded minus withdrawn),
and a resident counts as observed only while it is > 0. Existing rows get 1: the old table
kept no count, so a resident with several sets starts at 1 and one withdrawal would take them
out early. A rebuild (``mandet rebuild-reports --from bus``) restores exact counts.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports_activity_resident") as batch:
        batch.add_column(sa.Column("sets", sa.Integer, nullable=False, server_default="1"))


def downgrade() -> None:
    # the old table meant "observed" by a row's presence: keep only residents still observed
    op.execute("DELETE FROM reports_activity_resident WHERE sets <= 0")
    with op.batch_alter_table("reports_activity_resident") as batch:
        batch.drop_column("sets")
