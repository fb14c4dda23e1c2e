"""Event bus latency between processes: PostgreSQL LISTEN/NOTIFY (issue 8 §3).

A child process runs a :class:`PostgresEventBus` and records, for every
``SnapshotInstalled`` it hears, the wall-clock time it arrived; this process publishes
``--events`` events (``--gap`` seconds apart) carrying their send time in the version field
and reports the delivery latency (p50, p99, max) and how many arrived. Then it repeats with
the listener's connection killed in the middle: the events sent while it reconnects are not
delivered, and the report shows how long after the kill the listener caught up (its on_gap
callback, which the server uses to read the snapshot versions once).

    .venv/bin/python bench/event_bus_bench.py               # 200 events
    .venv/bin/python bench/event_bus_bench.py --events 2000 --gap 0.001

PostgreSQL: ``LIVEMOSAIC_TEST_POSTGRES_URL`` or postgresql://postgres@127.0.0.1:5432/test.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
import uuid
from multiprocessing.connection import Connection

import psycopg

from livemosaic.adapters.events.postgres import PostgresEventBus
from livemosaic.core.events import Event, SnapshotInstalled

URL = os.environ.get("LIVEMOSAIC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def listen(url: str, channel: str, pipe: Connection, expected: int) -> None:
    """Child: record arrival times (ns) of events and gaps until ``expected`` or told to stop."""
    bus = PostgresEventBus(url, channel=channel)
    arrivals: list[tuple[int, int]] = []
    gaps: list[int] = []

    def heard(event: Event) -> None:
        if isinstance(event, SnapshotInstalled):
            arrivals.append((event.version, time.time_ns()))

    bus.subscribe(heard, SnapshotInstalled)
    bus.on_gap(lambda: gaps.append(time.time_ns()))
    bus.start()
    bus.wait_listening(30)
    pipe.send("ready")
    pipe.recv()  # "done"
    time.sleep(1.0)  # the last ones in flight
    bus.close()
    pipe.send((arrivals, gaps))


def run(events: int, gap: float, kill_at: int | None) -> None:
    channel = f"lm_bench_{uuid.uuid4().hex[:10]}"
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=listen, args=(URL, channel, child, events))
    proc.start()
    assert parent.recv() == "ready"
    sender = PostgresEventBus(URL, channel=channel)
    sender.start()
    killed_at = 0
    for i in range(events):
        if kill_at is not None and i == kill_at:
            with psycopg.connect(URL, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query ILIKE %s AND pid <> pg_backend_pid()",
                    (f'%LISTEN "{channel}"%',),
                )
            killed_at = time.time_ns()
        sender.publish(SnapshotInstalled("bench", "s", time.time_ns()))
        time.sleep(gap)
    sender.close()
    parent.send("done")
    arrivals, gaps = parent.recv()
    proc.join(30)
    latencies = sorted((at - sent) / 1e6 for sent, at in arrivals)
    title = "with the listener killed mid-run" if kill_at is not None else "steady"
    print(f"\n{title}: {events} events, one every {gap * 1000:.1f} ms")
    if latencies:
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(
            f"  delivered {len(latencies)}/{events}; latency ms p50 "
            f"{statistics.median(latencies):.2f}  p99 {p99:.2f}  max {latencies[-1]:.2f}"
        )
    later = [g for g in gaps if g >= killed_at] if killed_at else []
    if killed_at and later:
        print(f"  caught up (one poll) {(later[0] - killed_at) / 1e6:.0f} ms after the kill")
    print(f"  catch-ups run: {len(gaps)} (the first one at start-up)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.005, help="seconds between events")
    args = parser.parse_args()
    run(args.events, args.gap, None)
    run(args.events, args.gap, args.events // 2)


if __name__ == "__main__":
    main()
