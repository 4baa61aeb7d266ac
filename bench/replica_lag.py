"""How long a committed write takes to be readable on a streaming replica (loopback).

A private primary and a `pg_basebackup -R` hot standby of it (reliability/servers.py, the same
pair tests/test_replica.py uses). PROBES times: commit one row on the primary (synchronous_commit
on for that session, as production runs), then poll the standby every 0.5 ms until the row is
there. Measured idle and again while a writer thread commits 100-row batches of ~1.4 KB rows as
fast as it can (ingest-shaped WAL). This is what a dashboard on the replica trails ingest by.

    .venv/bin/python bench/replica_lag.py [--probes 200]
"""

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import machine, percentile, report

from reliability.servers import PrivatePostgres, StreamingReplica

DB = "lagbench"


def probe(primary: PrivatePostgres, replica: StreamingReplica, n: int) -> list[float]:
    lags = []
    with primary.connect(DB) as write, replica.connect(DB) as read:
        write.execute("SET synchronous_commit = on")
        for i in range(n):
            write.execute("INSERT INTO probe (n) VALUES (%s)", [i])
            committed = time.perf_counter()
            while not read.execute("SELECT 1 FROM probe WHERE n = %s", [i]).fetchone():
                time.sleep(0.0005)
            lags.append((time.perf_counter() - committed) * 1000)
            time.sleep(0.01)
    return lags


def load(primary: PrivatePostgres, stop: threading.Event, counter: list[int]) -> None:
    payload = "x" * 1400
    with primary.connect(DB) as conn:
        conn.execute("SET synchronous_commit = on")
        while not stop.is_set():
            conn.execute(
                "INSERT INTO filler (body) SELECT %s FROM generate_series(1, 100)", [payload]
            )
            counter[0] += 100


def summary(lags: list[float]) -> dict:
    return {
        "p50_ms": round(percentile(lags, 0.5), 2),
        "p99_ms": round(percentile(lags, 0.99), 2),
        "max_ms": round(max(lags), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=200)
    args = parser.parse_args()
    primary = PrivatePostgres()
    replica = None
    try:
        with primary.connect("postgres") as conn:
            conn.execute(f"CREATE DATABASE {DB}")
        with primary.connect(DB) as conn:
            conn.execute("CREATE TABLE probe (n int PRIMARY KEY)")
            conn.execute("CREATE TABLE filler (id bigserial PRIMARY KEY, body text)")
        replica = StreamingReplica(primary)
        replica.wait_caught_up(primary)
        idle = probe(primary, replica, args.probes)
        stop, counter = threading.Event(), [0]
        writer = threading.Thread(target=load, args=(primary, stop, counter), daemon=True)
        started = time.perf_counter()
        writer.start()
        with primary.connect(DB) as conn:
            conn.execute("TRUNCATE probe")
        replica.wait_caught_up(primary)
        busy = probe(primary, replica, args.probes)
        stop.set()
        writer.join()
        rate = counter[0] / (time.perf_counter() - started)
        report(
            "replica-lag",
            probes=args.probes,
            idle=summary(idle),
            under_write_load={**summary(busy), "background_rows_per_s": round(rate)},
            machine=machine(),
        )
    finally:
        if replica is not None:
            replica.destroy()
        primary.destroy()


if __name__ == "__main__":
    main()
