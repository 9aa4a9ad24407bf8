"""Memory-bus specifics beyond the shared contract: bounded retention."""

from __future__ import annotations

from shared.bus.base import Record
from shared.bus.memory import MemoryBus


async def test_log_is_trimmed_below_what_every_group_committed():
    bus = MemoryBus(partitions=1)
    a, b = bus.consumer("a", ["t"]), bus.consumer("b", ["t"])
    await a.start()
    await b.start()
    await bus.publish([Record("t", "k", str(i).encode()) for i in range(10)])
    got_a = await a.getmany(max_records=100, timeout=0.1)
    await a.commit(got_a)
    assert len(bus._topic("t")[0].log) == 10  # group b has committed nothing yet
    got_b = await b.getmany(max_records=6, timeout=0.1)
    await b.commit(got_b)
    assert bus._topic("t")[0].base == 6 and len(bus._topic("t")[0].log) == 4
    rest = await b.getmany(max_records=100, timeout=0.1)
    assert [m.offset for m in rest] == [6, 7, 8, 9]
