"""Activity rolled up per area as it comes in: residents per site row, and area roll-ups.

``reports_activity.residents`` counts the residents with a standing set in the row's site and
quarter, and ``reports_activity_area`` holds the rows summed per quarter at national, ICB and
PSC level, so a view reads a row per area instead of rolling every site up on each request.
Existing data is carried over: each row's codes become the register copy's (for a site it
holds), its residents are counted from the standing sets, and the roll-ups are summed. This
is SQL of its own, frozen with this revision; ``services.reports.activity.derive`` is the
running code's equivalent (``mandet rebuild-reports`` runs it).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

COUNTERS = ("observation_sets", "scored_sets", "complete_sets", "risk_low", "risk_low_medium",
            "risk_medium", "risk_high", "red_scores", "flags", "claim_mismatches", "residents")
NATIONAL = "ENG"
CARRY_OVER = (
    """UPDATE reports_activity SET
         icb_code = (SELECT s.icb_code FROM reports_site s
                     WHERE s.site_id = reports_activity.site_id),
         psc_code = (SELECT s.psc_code FROM reports_site s
                     WHERE s.site_id = reports_activity.site_id)
       WHERE site_id IN (SELECT site_id FROM reports_site)""",
    """UPDATE reports_activity SET residents = (
         SELECT count(*) FROM reports_activity_resident r
         WHERE r.site_id = reports_activity.site_id AND r.qn = reports_activity.qn
           AND r.sets > 0)""",
)


def _roll_up(level: str, code: str | None) -> str:
    sums = ", ".join(f"sum({c})" for c in COUNTERS)
    return (f"INSERT INTO reports_activity_area (level, qn, code, {', '.join(COUNTERS)}) "
            f"SELECT '{level}', qn, {code or repr(NATIONAL)}, {sums} FROM reports_activity "
            f"GROUP BY qn{'' if code is None else ', ' + code}")


def upgrade() -> None:
    with op.batch_alter_table("reports_activity") as batch:
        batch.add_column(sa.Column("residents", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "reports_activity_area",
        sa.Column("level", sa.String(16), primary_key=True),
        sa.Column("qn", sa.Integer, primary_key=True),
        sa.Column("code", sa.Text, primary_key=True),
        *(sa.Column(name, sa.Integer, nullable=False, server_default="0") for name in COUNTERS),
    )
    for statement in CARRY_OVER:
        op.execute(statement)
    op.execute(_roll_up("national", None))
    op.execute(_roll_up("icb", "icb_code"))
    op.execute(_roll_up("psc", "psc_code"))


def downgrade() -> None:
    op.drop_table("reports_activity_area")
    with op.batch_alter_table("reports_activity") as batch:
        batch.drop_column("residents")
