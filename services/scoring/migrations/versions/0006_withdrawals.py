"""Withdrawn observation sets: a score and its flag record their withdrawal; a withdrawal of a
set scoring never stored is remembered, so that set is never scored.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("scoring_score") as batch:
        batch.add_column(sa.Column("withdrawn_at", TS, nullable=True))
        batch.add_column(sa.Column("withdrawal_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("replaced_by", sa.Uuid(), nullable=True))
    with op.batch_alter_table("scoring_flag") as batch:
        batch.add_column(sa.Column("withdrawn_at", TS, nullable=True))
    op.create_table(
        "scoring_withdrawn_unscored",
        sa.Column("observation_id", sa.Uuid, primary_key=True),
        sa.Column("resident", sa.Text, nullable=False),
        sa.Column("taken_at", TS, nullable=False),
        sa.Column("withdrawn_at", TS, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("replaced_by", sa.Uuid),
    )


def downgrade() -> None:
    op.drop_table("scoring_withdrawn_unscored")
    with op.batch_alter_table("scoring_flag") as batch:
        batch.drop_column("withdrawn_at")
    with op.batch_alter_table("scoring_score") as batch:
        batch.drop_column("replaced_by")
        batch.drop_column("withdrawal_reason")
        batch.drop_column("withdrawn_at")
