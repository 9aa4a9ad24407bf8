"""Withdrawn sets: when, why, and the set recorded in a withdrawn set's place.

A set is never edited or deleted: a platform withdraws one entered in error, and a FHIR
amendment withdraws the set it replaces (``observations.withdraw``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ingest_observation_set") as table:
        table.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True)))
        table.add_column(sa.Column("withdrawal_reason", sa.Text))
        table.add_column(sa.Column("replaced_by", sa.Uuid))


def downgrade() -> None:
    with op.batch_alter_table("ingest_observation_set") as table:
        table.drop_column("replaced_by")
        table.drop_column("withdrawal_reason")
        table.drop_column("withdrawn_at")
