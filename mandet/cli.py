"""``mandet``: run the platform, one service, a worker, migrations, or issue a token."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any

import uvicorn

from shared import logs
from shared.auth import Role, TokenService
from shared.settings import DEV_PLACEHOLDER, SERVICE_SETTINGS, CommonSettings, load_settings

SERVICE_NAMES = tuple(SERVICE_SETTINGS)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    service = getattr(args, "service", None)
    logs.configure((load_settings(service) if service in SERVICE_NAMES else CommonSettings())
                   .log_level)
    args.func(args)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mandet", description=__doc__)
    sub = p.add_subparsers(required=True, metavar="command")

    run = sub.add_parser("run", help="embedded default: all services, one process, SQLite")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.set_defaults(func=_run)

    serve = sub.add_parser("serve", help="one service's HTTP API (scale path)")
    serve.add_argument("service")
    serve.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a container listens on all
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=_serve)

    worker = sub.add_parser("worker", help="one service's outbox relay and consumers, no API")
    worker.add_argument("service")
    worker.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a container listens on all
    worker.add_argument("--port", type=int, default=None,
                        help="serve /healthz, /readyz and /metrics on this port")
    worker.set_defaults(func=_worker)

    migrate = sub.add_parser("migrate", help="bring one service's database to the latest schema")
    migrate.add_argument("service")
    migrate.set_defaults(func=_migrate)

    sites = sub.add_parser("sites-load", help="bulk load the site register from a CSV or XLSX"
                           " shaped like care_homes.csv (progress bar, per-row report)")
    sites.add_argument("file")
    sites.add_argument("--dry-run", action="store_true", help="judge every row, write nothing")
    sites.set_defaults(func=_sites_load)

    rebuild = sub.add_parser("rebuild-reports", help="rebuild the QART views, then swap them in")
    rebuild.add_argument("--from", dest="source", choices=["history", "bus"], default="history",
                         help="reports' own event history (default) or the bus from the start")
    rebuild.add_argument("--into", default=None, help="fresh database URL for --from bus")
    rebuild.add_argument("--swap", action="store_true",
                         help="swap the rebuild in: the SQLite file moved over the live one, or "
                              "the PostgreSQL databases renamed (reports processes stopped)")
    rebuild.add_argument("--workers", type=int, default=None,
                         help="--from bus into PostgreSQL: processes sharing the partitions "
                              "(default: one per CPU this process may use)")
    rebuild.set_defaults(func=_rebuild_reports)

    demo = sub.add_parser("demo", help="fill a running platform with a simulated year")
    demo.add_argument("--url", default="http://127.0.0.1:8000")
    demo.add_argument("--max-sites", type=int, default=None)
    demo.set_defaults(func=_demo)

    token = sub.add_parser("token", help="issue a signed bearer token")
    token.add_argument("--role", required=True, choices=[r.value for r in Role])
    token.add_argument("--sub", default=None, help="who the token is for")
    token.add_argument("--site", action="append", default=[], help="site id in scope")
    token.add_argument("--icb", action="append", default=[], help="ICB ODS code in scope")
    token.add_argument("--psc", action="append", default=[], help="PSC code in scope")
    token.add_argument("--ttl", type=int, default=24 * 3600, help="lifetime in seconds")
    token.set_defaults(func=_token)
    return p


def _run(args: argparse.Namespace) -> None:
    from mandet.embedded import SERVICES, create_embedded_app

    settings = CommonSettings()
    base = f"http://{args.host}:{args.port}"
    print(f"mandet embedded: SQLite files under {settings.data_dir.resolve()}, in-process bus")
    for name in SERVICES:
        print(f"  {name:9} {base}/{name}   docs: {base}/{name}/docs")
    if settings.jwt_secret.get_secret_value() == DEV_PLACEHOLDER:
        dev = TokenService(DEV_PLACEHOLDER, settings.jwt_issuer).issue("dev", Role.ADMIN,
                                                                  ttl_seconds=24 * 3600)
        print(f"  dev admin token (24 h):\n    {dev}")
    print("  more tokens: mandet token --role psc --psc SW")
    uvicorn.run(create_embedded_app(), host=args.host, port=args.port, log_config=None)


def _serve(args: argparse.Namespace) -> None:
    from mandet.embedded import service_module

    module = service_module(args.service)
    app = module.create_app(module.bootstrap())
    uvicorn.run(app, host=args.host, port=args.port, log_config=None)


def _worker(args: argparse.Namespace) -> None:
    from mandet.embedded import service_module

    runtime = service_module(args.service).bootstrap()
    asyncio.run(_run_until_signalled(runtime, args.host, args.port))


class _OpsServer(uvicorn.Server):
    def capture_signals(self):  # type: ignore[no-untyped-def,override]
        return contextlib.nullcontext()  # the worker owns SIGTERM/SIGINT


async def _run_until_signalled(runtime: Any, host: str, port: int | None) -> None:
    from shared.api import ops_app

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start(relay=True, consumers=True)
    ops = None
    if port is not None:
        ops = _OpsServer(uvicorn.Config(ops_app(runtime), host=host, port=port,
                                        log_config=None, lifespan="off"))
        ops_task = asyncio.create_task(ops.serve())
    print(f"mandet worker {runtime.service}: relay and {len(runtime.consumers)} consumer(s) up",
          flush=True)
    await stop.wait()
    if ops is not None:
        ops.should_exit = True
        await ops_task
    await runtime.stop()


def _migrate(args: argparse.Namespace) -> None:
    from mandet.embedded import service_module
    from shared.migrations import upgrade

    runtime = service_module(args.service).bootstrap()

    async def go() -> None:
        await upgrade(runtime.db, runtime.migrations)
        await runtime.db.dispose()

    asyncio.run(go())
    print(f"{args.service}: database at head")


def _sites_load(args: argparse.Namespace) -> None:
    from pathlib import Path

    from services.adoption.loadfile import load_file, summary_lines

    report = asyncio.run(load_file(Path(args.file), dry_run=args.dry_run))
    print("\n".join(summary_lines(report)))
    if report.rejected:
        raise SystemExit(1)


def _rebuild_reports(args: argparse.Namespace) -> None:
    from services.reports.rebuild_command import run

    print(run(load_settings("reports"), source=args.source, into=args.into, swap=args.swap,
              workers=args.workers))


def _demo(args: argparse.Namespace) -> None:
    import httpx

    from mandet.demo import run

    settings = load_settings("adoption")
    token = TokenService(settings.jwt_secret.get_secret_value(), settings.jwt_issuer).issue(
        "demo", Role.ADMIN)

    async def go() -> dict[str, int]:
        async with httpx.AsyncClient(base_url=args.url, timeout=120,
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            return await run(client, max_sites=args.max_sites)

    try:
        print(asyncio.run(go()), f"- views: {args.url}/reports/adoption?level=psc")
    except httpx.ConnectError:
        raise SystemExit(f"cannot reach {args.url}: start the platform first "
                         "(`mandet run` in another shell), or pass --url") from None


def _token(args: argparse.Namespace) -> None:
    settings = load_settings("adoption")
    tokens = TokenService(settings.jwt_secret.get_secret_value(), settings.jwt_issuer)
    print(tokens.issue(args.sub or f"{args.role}-cli", args.role, sites=args.site,
                       icbs=args.icb, pscs=args.psc, ttl_seconds=args.ttl))


if __name__ == "__main__":
    main()
