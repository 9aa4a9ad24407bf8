"""Inbox retention: an index on processed_at, so the oldest rows go first (shared.inbox.prune).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""
from alembic import op

from shared.migrations import index_inbox_age, unindex_inbox_age

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    index_inbox_age(op)


def downgrade() -> None:
    unindex_inbox_age(op)
