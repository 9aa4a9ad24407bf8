"""Outbox as a queue table: eager autovacuum, and a NOTIFY that wakes the relay (shared.migrations).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""
from alembic import op

from shared.migrations import tune_outbox, untune_outbox

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tune_outbox(op)


def downgrade() -> None:
    untune_outbox(op)
