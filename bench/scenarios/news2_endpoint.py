"""The NEWS2 calculator endpoint (scoring) at saturation vs the pure function in-process."""

from __future__ import annotations

from bench import drive, payloads
from bench.core import Context, Row, Unavailable, scenario
from bench.news2_pure import make_vitals
from bench.scenarios.pure import news2_pure_rate
from bench.scenarios.services import service
from shared.auth import Role

ROUTES = ("/news2/calculate", "/scoring/news2/calculate")


@scenario("news2-endpoint")
async def news2_endpoint(ctx: Context) -> list[Row]:
    svc = await service(ctx, "scoring", [], worker=False)  # a pure API call: no consumer
    route = next((r for r in ROUTES if r in svc.paths), None)
    if route is None:
        raise Unavailable(f"scoring has no route {' or '.join(ROUTES)}")
    token = ctx.env().token(Role.CLINICIAN, sub="bench-clinician", pscs=["SW"])
    bodies = [payloads.encode(_body(v)) for v in make_vitals(ctx.size(100_000, 10_000))]
    summary = await drive.saturate(ctx, svc.port, route, bodies,
                                   headers={"Authorization": f"Bearer {token}"}, ok=(200,))
    return [Row("NEWS2 calculator endpoint, saturation", summary.achieved_rate, "scores/s",
                await news2_pure_rate(ctx), "pure function, one core",
                note=f"p50/p99 {summary.latency_ms['p50']:.1f}/{summary.latency_ms['p99']:.1f}"
                     f" ms, {summary.errors} errors", details=summary.as_dict())]


def _body(v) -> dict:  # type: ignore[no-untyped-def]
    return {"respiration_rate": v.respiration_rate, "spo2": v.spo2, "on_oxygen": v.on_oxygen,
            "systolic_bp": v.systolic_bp, "pulse": v.pulse, "consciousness": v.consciousness,
            "temperature": v.temperature, "temperature_unit": v.temperature_unit}
