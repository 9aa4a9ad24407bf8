"""Data quality's site lists kept as rows, with their national counts.

A read at a quarter's start joined every fact at stage 5 or above with the activity rows on
each miss (4-10 ms nationally, a miss at nearly every reading); kept as rows in site order,
it reads a count and a page. Kept for the quarters activity has rows in and the programmes
with returns (``services.reports.quality``). Existing data is carried over: the lists of that
join. This is SQL of its own, frozen with this revision; ``services.reports.quality.derive``
is the running code's equivalent (``mandet rebuild-reports`` runs it).

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

COLUMNS = "programme, qn, kind, site_id, stage, tool, icb_code, psc_code, region"
KEPT = "(SELECT qn FROM reports_activity_quarter)"
HIGH = (f"INSERT INTO reports_quality_site ({COLUMNS}) "
        "SELECT f.programme, f.qn, 'stage5_without_observations', f.site_id, f.stage, f.tool, "
        "f.icb_code, f.psc_code, f.region FROM reports_stage_fact f "
        "LEFT JOIN reports_activity a ON a.site_id = f.site_id AND a.qn = f.qn "
        f"WHERE f.qn IN {KEPT} AND f.stage >= 5 AND coalesce(a.observation_sets, 0) <= 0")
LOW = (f"INSERT INTO reports_quality_site ({COLUMNS}) "
       "SELECT p.programme, a.qn, 'observations_below_stage4', a.site_id, "
       "coalesce(f.stage, 0), f.tool, a.icb_code, a.psc_code, s.region "
       "FROM reports_activity a "
       "CROSS JOIN (SELECT DISTINCT programme FROM reports_latest_return) p "
       "LEFT JOIN reports_stage_fact f "
       "ON f.site_id = a.site_id AND f.qn = a.qn AND f.programme = p.programme "
       "LEFT JOIN reports_site s ON s.site_id = a.site_id "
       f"WHERE a.qn IN {KEPT} AND a.observation_sets > 0 AND coalesce(f.stage, 0) < 4")
COUNT = ("INSERT INTO reports_quality_count (programme, qn, kind, sites) "
         "SELECT programme, qn, kind, count(*) FROM reports_quality_site "
         "GROUP BY programme, qn, kind")


def upgrade() -> None:
    op.create_table(
        "reports_quality_site",
        sa.Column("programme", sa.String, primary_key=True),
        sa.Column("qn", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("site_id", sa.String(32), primary_key=True),
        sa.Column("stage", sa.Integer, nullable=False),
        sa.Column("tool", sa.String, nullable=True),
        sa.Column("icb_code", sa.String, nullable=False),
        sa.Column("psc_code", sa.String, nullable=False),
        sa.Column("region", sa.String, nullable=True),
    )
    op.create_table(
        "reports_quality_count",
        sa.Column("programme", sa.String, primary_key=True),
        sa.Column("qn", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("sites", sa.Integer, nullable=False, server_default="0"),
    )
    for statement in (HIGH, LOW, COUNT):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("reports_quality_count")
    op.drop_table("reports_quality_site")
