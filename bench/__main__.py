"""``python -m bench [--quick] [--only NAME,...]``: run the scenarios, print and write the table.

Every scenario module in ``bench/scenarios`` registers itself; ``--only`` picks some by name.
A scenario whose service route does not exist yet is reported as SKIPPED with the reason; one
that crashes is reported as FAILED with the error, and the run carries on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import pgutil, report, scenarios
from bench.core import REGISTRY, Context, Row, Unavailable

BUFFERS = "1GB"   # PostgreSQL's shared_buffers in a bench run (see ``main``)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    scenarios.load_all()
    names = args.only.split(",") if args.only else list(REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; choose from {', '.join(REGISTRY)}")
    started, load_before = datetime.now(UTC), [round(x, 2) for x in os.getloadavg()]
    # Commit timestamps let reports-freshness see when each event's transaction became visible.
    # A buffer pool sized for the data, as a production server's would be: the tests' 64 MB
    # is a sixth of the views-more database, which was then read from the OS cache page by
    # page on every query (later -c settings win, so TEST_PG_SETTINGS may still change it).
    os.environ["TEST_PG_SETTINGS"] = ("shared_buffers=" + BUFFERS + " "
                                      + os.environ.get("TEST_PG_SETTINGS", "")
                                      + " track_commit_timestamp=on").strip()
    if os.environ.get(pgutil.STATEMENTS_ENV):
        os.environ["TEST_PG_SETTINGS"] = (os.environ.get("TEST_PG_SETTINGS", "") + " "
                                          + pgutil.statements_settings()).strip()
    with tempfile.TemporaryDirectory(prefix="mandet-bench-") as tmp:
        ctx = Context(quick=args.quick, client=args.client, rate=args.rate, work_dir=Path(tmp))
        try:
            rows = asyncio.run(run_all(ctx, names))
        finally:
            peaks = _shutdown(ctx)
    command = "python -m bench " + shlex.join(argv if argv is not None else sys.argv[1:])
    path = report.write(rows, peaks, quick=args.quick, command=command.strip(),
                        started=started, load_before=load_before, out_dir=Path(args.out))
    print(path.read_text())
    print(f"written: {path} and {path.with_suffix('.json')}")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small counts, short runs (smoke test)")
    p.add_argument("--only", default="", help="comma-separated scenario names")
    p.add_argument("--client", choices=("raw", "httpx"), default="raw",
                   help="HTTP client of the load generator")
    p.add_argument("--rate", type=float, default=None,
                   help="open-loop rate in requests/s (default 1,000; 200 with --quick); "
                        "targets quoted 'at 1,000/s' are judged only at 1,000")
    p.add_argument("--out", default=str(report.RESULTS), help="results directory")
    return p


async def run_all(ctx: Context, names: list[str]) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        print(f"-- {name}", flush=True)
        before = ctx.infra.cpu_seconds() if ctx.infra else {}
        try:
            got = await REGISTRY[name](ctx)
        except Unavailable as exc:
            got = [Row(name, skipped=f"not available yet: {exc}")]
        except Exception as exc:  # noqa: BLE001 - one broken scenario must not end the run
            traceback.print_exc()   # whole, as the row's note keeps only its start
            got = [Row(name, skipped=f"error: {type(exc).__name__}: {exc}"[:300])]
        if ctx.infra and got:
            after = ctx.infra.cpu_seconds()
            got[0].details["cpu_s"] = {k: round(v - before.get(k, 0.0), 2)
                                       for k, v in after.items() if v - before.get(k, 0.0) > 0.05}
        for row in got:
            print(f"   {report.table([row]).splitlines()[-1]}", flush=True)
        if ctx.infra and os.environ.get(pgutil.STATEMENTS_ENV):
            out = report.RESULTS / f"pgstat-{name}.txt"
            await pgutil.dump_statements(ctx.infra.pg.base_url, out)
            print(f"   PostgreSQL's top statements: {out}", flush=True)
        rows += got
    return rows


def _shutdown(ctx: Context) -> dict[str, int]:
    if ctx.infra is None:
        return {}
    from bench.infra import stop_infra

    peaks = dict(ctx.infra.rss.peaks)
    stop_infra(ctx.infra)
    return peaks


if __name__ == "__main__":
    raise SystemExit(main())
