"""Time the pure NEWS2 function on one core: N complete Vitals, printed as scores/s.

Inputs mimic decoded FHIR JSON: integers for rates, SpO2 and pressure, floats for temperature
(some in degF), so the Decimal path is exercised on every score. Run:
    python bench/news2_pure.py [N]
"""

import random
import sys
import time

from services.scoring.domain.news2 import Vitals, score


def make_vitals(n: int, seed: int = 2017) -> list[Vitals]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        fahrenheit = i % 10 == 0
        temp = round(rnd.uniform(95.0, 104.0) if fahrenheit else rnd.uniform(35.0, 40.0), 1)
        out.append(Vitals(
            respiration_rate=rnd.randint(6, 35), spo2=rnd.randint(84, 100),
            on_oxygen=rnd.random() < 0.1, systolic_bp=rnd.randint(80, 230),
            pulse=rnd.randint(35, 150), consciousness=rnd.choice("AAAAAAAACVPU"),
            temperature=temp, temperature_unit="[degF]" if fahrenheit else "Cel"))
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    batch = make_vitals(n)
    best = float("inf")
    for _ in range(3):  # best of three: the least disturbed run
        start = time.perf_counter()
        for v in batch:
            score(v)
        best = min(best, time.perf_counter() - start)
    print(f"scored {n:,} complete Vitals in {best:.3f} s: {n / best:,.0f} scores/s (one core)")


if __name__ == "__main__":
    main()
