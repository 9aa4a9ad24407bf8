"""Outbox as a queue table: eager autovacuum, and a NOTIFY that wakes the relay (shared.migrations).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
from alembic import op

from shared.migrations import tune_outbox, untune_outbox

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tune_outbox(op)


def downgrade() -> None:
    untune_outbox(op)
