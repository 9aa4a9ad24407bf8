"""Activity rolled up per tool, so activity for one tool reads a row per area.

``reports_activity_tool`` holds the site rows summed per programme, tool, quarter and area
(national, ICB, PSC), for the sites whose stage in force at that quarter's end in that
programme names the tool. Before it, each read for one tool joined every site row of its
quarters with the stage facts. Existing data is carried over: the sums of that join. This is
SQL of its own, frozen with this revision; ``services.reports.activity.derive`` is the running
code's equivalent (``mandet rebuild-reports`` runs it).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

COUNTERS = ("observation_sets", "scored_sets", "complete_sets", "risk_low", "risk_low_medium",
            "risk_medium", "risk_high", "red_scores", "flags", "claim_mismatches", "residents")
NATIONAL = "ENG"


def _roll_up(level: str, code: str | None) -> str:
    sums = ", ".join(f"sum(a.{c})" for c in COUNTERS)
    by = "" if code is None else f", a.{code}"
    return (f"INSERT INTO reports_activity_tool (programme, tool, level, qn, code, "
            f"{', '.join(COUNTERS)}) "
            f"SELECT f.programme, f.tool, '{level}', a.qn, "
            f"{repr(NATIONAL) if code is None else 'a.' + code}, {sums} "
            f"FROM reports_activity a JOIN reports_stage_fact f "
            f"ON f.site_id = a.site_id AND f.qn = a.qn AND f.tool IS NOT NULL "
            f"GROUP BY f.programme, f.tool, a.qn{by}")


def upgrade() -> None:
    op.create_table(
        "reports_activity_tool",
        sa.Column("programme", sa.String, primary_key=True),
        sa.Column("tool", sa.String, primary_key=True),
        sa.Column("level", sa.String(16), primary_key=True),
        sa.Column("qn", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("code", sa.String, primary_key=True),
        *(sa.Column(name, sa.Integer, nullable=False, server_default="0") for name in COUNTERS),
    )
    op.execute(_roll_up("national", None))
    op.execute(_roll_up("icb", "icb_code"))
    op.execute(_roll_up("psc", "psc_code"))


def downgrade() -> None:
    op.drop_table("reports_activity_tool")
