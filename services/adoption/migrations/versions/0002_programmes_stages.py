"""Programmes and tools (reference data, seeded here), stage reports with their transitions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

from shared.migrations import SEQ, TS

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CARE_HOMES = "managing-deterioration-care-homes"
TOOLS = (  # (name as reported in QART returns, name used in the field)
    ("NEWS2 and soft signs", "RESTORE2"),
    ("Soft signs", "RESTORE2 mini"),
    ("NEWS2", None),
    ("Stop and Watch", None),
    ("Tool undecided", None),
)


def upgrade() -> None:
    programme = op.create_table(
        "adoption_programme",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
    )
    tool = op.create_table(
        "adoption_tool",
        sa.Column("programme_code", sa.String(64), sa.ForeignKey("adoption_programme.code"),
                  primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("also_known_as", sa.Text),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "adoption_stage_report",
        sa.Column("id", SEQ, primary_key=True, autoincrement=True),
        sa.Column("submission_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("site_id", sa.String(32), sa.ForeignKey("adoption_site.site_id"),
                  nullable=False),
        sa.Column("programme", sa.String(64), sa.ForeignKey("adoption_programme.code"),
                  nullable=False),
        sa.Column("tool", sa.Text),
        sa.Column("stage", sa.SmallInteger, nullable=False),
        sa.Column("applies_from", sa.Date, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("reported_at", TS, nullable=False),
        sa.Column("reporter", sa.Text, nullable=False),
        sa.Column("from_tool", sa.Text),
        sa.Column("from_stage", sa.SmallInteger, nullable=False),
        sa.Column("is_correction", sa.Boolean, nullable=False),
        sa.Column("flags", sa.JSON, nullable=False),
        sa.CheckConstraint("stage BETWEEN 0 AND 7", name="ck_adoption_stage_range"),
    )
    op.create_index("ix_adoption_stage_report_series", "adoption_stage_report",
                    ["site_id", "programme", "applies_from"])
    op.bulk_insert(programme, [{"code": CARE_HOMES,
                                "name": "Managing deterioration in care homes"}])
    op.bulk_insert(tool, [{"programme_code": CARE_HOMES, "name": name, "also_known_as": aka,
                           "position": i} for i, (name, aka) in enumerate(TOOLS)])


def downgrade() -> None:
    op.drop_table("adoption_stage_report")
    op.drop_table("adoption_tool")
    op.drop_table("adoption_programme")
