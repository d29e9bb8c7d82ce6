#!/usr/bin/env python3
"""Multi-agent benchmark for StreamHouse on PostgreSQL + an S3 API server.

usage: compat-tests/.venv/bin/python scripts/bench/cluster.py \\
           --pg-url postgres://postgres@127.0.0.1:PORT/postgres --s3-endpoint http://127.0.0.1:PORT \\
           [--bin target/release/streamhouse] [--msgs 100000] [--partitions 12]

Starts its own agents (compat-tests/cluster_util.py: a fresh database and bucket per cluster; the
database is dropped and the bucket emptied afterwards) and measures:

  1. unplanned failover: three agents, a 12-partition topic, an idempotent acks=all confluent-kafka
     producer at 1,000 msgs/s over every partition; SIGKILL the leader of partition 0. For each
     partition it led: the time from the kill until the first message handed to the client AFTER the
     kill is acknowledged (the partition is writable again, client metadata refresh included).
  2. planned handoff: the same with SIGTERM (the agent flushes, releases its leases, exits).
  3. produce throughput, 1 KiB messages, acks=all, linger.ms=5, with 1, 2 and 3 agents (a fresh
     cluster each, the topic's partitions spread over the agents, one producer bootstrapped on all),
     and the metadata transactions per second meanwhile (pg_stat_database.xact_commit of the
     cluster's database, before/after: every agent's flush commits, lease rounds and reads).
  4. produce latency at a steady 2,000 msgs/s, linger.ms=1, acks=all, three agents: p50/p99/max of
     send-to-delivery-report time (first second dropped).

Producer runs (3, 4) use rdkafka_performance (librdkafka) from target/bench-tools/bin if present
(scripts/bench.sh builds it), else confluent-kafka. Progress goes to stderr, the table to stdout.
The PostgreSQL server must allow CREATE DATABASE; the S3 endpoint needs AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY / AWS_REGION (default test/test/us-east-1, as for moto).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "compat-tests"))

import cluster_util as cu  # noqa: E402

RDPERF = REPO / "target" / "bench-tools" / "bin" / "rdkafka_performance"
MSG_SIZE = 1024
STATS_LAG = 11.0


def log(msg: str) -> None:
    print(f"[cluster-bench] {msg}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args):
        self.args = args
        self.binary = Path(args.bin).resolve()
        self.workdir = Path(tempfile.mkdtemp(prefix="streamhouse-cluster-bench-"))
        self.results: dict[str, str] = {}
        self.notes: list[str] = []

    def cluster(self, n: int, **kw) -> cu.Cluster:
        c = cu.Cluster(self.workdir / f"c{time.monotonic_ns()}", self.args.pg_url, self.args.s3_endpoint,
                       binary=self.binary)
        c.add_agents(n, lease_ttl_ms=self.args.lease_ttl_ms, **kw)
        c.start_all()
        return c

    def done(self, c: cu.Cluster) -> None:
        problems = c.problems()
        if problems:
            self.notes += problems
        c.teardown()
        try:  # moto keeps objects in memory: empty the bucket
            s3 = cu.s3_client(self.args.s3_endpoint)
            keys = cu.list_objects(c.bucket, endpoint=self.args.s3_endpoint)
            for i in range(0, len(keys), 1000):
                s3.delete_objects(Bucket=c.bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]]})
            s3.delete_bucket(Bucket=c.bucket)
        except Exception as e:  # noqa: BLE001 - cleanup only
            log(f"could not empty bucket {c.bucket}: {e}")

    # -- 1, 2: failover -----------------------------------------------------------------------------
    def failover(self, planned: bool) -> None:
        what = "planned handoff (SIGTERM)" if planned else "unplanned failover (SIGKILL)"
        log(f"{what}: 3 agents, {self.args.partitions} partitions, 1,000 msgs/s")
        c = self.cluster(3)
        try:
            topic = f"bench-failover-{time.monotonic_ns()}"
            parts = self.args.partitions
            c.create_topic(topic, parts)
            c.wait_all_led(topic, parts, settle=2.0)
            load = cu.ProducerLoad(c.bootstrap(), topic, parts, rate=1000).start()
            time.sleep(3)
            victim = c.agent(c.leader_of(topic, 0))
            led = sorted(p for p, l in c.leaders(topic).items() if l == victim.id)
            t0 = time.monotonic()
            if planned:
                rc = victim.stop()
                exit_s = time.monotonic() - t0
                if rc != 0:
                    self.notes.append(f"SIGTERM: agent exited {rc}")
            else:
                victim.kill()
            deadline = t0 + 30
            while time.monotonic() < deadline and any(load.recovery_after(t0, p) is None for p in led):
                time.sleep(0.1)
            time.sleep(1)
            load.stop()
            rec = {p: load.recovery_after(t0, p) for p in led}
            got = [r for r in rec.values() if r is not None]
            key = "handoff" if planned else "failover"
            if len(got) < len(led):
                self.notes.append(f"{what}: partitions never writable again within 30 s: "
                                  f"{[p for p, r in rec.items() if r is None]}")
            if got:
                self.results[f"{key}_max"] = f"{max(got):.2f}"
                self.results[f"{key}_median"] = f"{statistics.median(got):.2f}"
            self.results[f"{key}_parts"] = str(len(led))
            if planned:
                self.results["handoff_exit"] = f"{exit_s:.2f}"
            if load.failed():
                self.notes.append(f"{what}: {len(load.failed())} deliveries failed")
            log(f"{what}: writable again after " + ", ".join(
                f"p{p} {r:.2f}s" if r is not None else f"p{p} never" for p, r in rec.items()))
        finally:
            self.done(c)

    # -- 3: throughput -------------------------------------------------------------------------------
    def produce_throughput(self, bootstrap: str, topic: str, n: int) -> tuple[float, float, int]:
        """(msgs/s, seconds, failed)."""
        if RDPERF.exists():
            p = subprocess.run([str(RDPERF), "-P", "-t", topic, "-b", bootstrap, "-s", str(MSG_SIZE),
                                "-a", "-1", "-X", "linger.ms=5", "-c", str(n)],
                               capture_output=True, text=True, timeout=600)
            out = p.stdout + p.stderr
            m = None
            for line in out.splitlines():
                mm = re.match(r"^% (\d+) messages produced \((\d+) bytes\), (\d+) delivered \(offset -?\d+, "
                              r"(\d+) failed\) in (\d+)ms: (\d+) msgs/s", line)
                if mm:
                    m = mm
            if not m:
                raise RuntimeError(f"rdkafka_performance output not understood:\n{out[-2000:]}")
            log("  rdkafka_performance: " + m.group(0))
            delivered, failed, ms = int(m.group(3)), int(m.group(4)), int(m.group(5))
            return delivered / (ms / 1000), ms / 1000, failed + (n - delivered)
        from confluent_kafka import Producer

        failed = [0]

        def cb(err, _msg):
            if err is not None:
                failed[0] += 1

        prod = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                         "queue.buffering.max.messages": 200000})
        payload = os.urandom(MSG_SIZE)
        t0 = time.monotonic()
        for i in range(n):
            while True:
                try:
                    prod.produce(topic, value=payload, on_delivery=cb)
                    break
                except BufferError:
                    prod.poll(0.01)
            if i % 1000 == 0:
                prod.poll(0)
        prod.flush(300)
        dt = time.monotonic() - t0
        return n / dt, dt, failed[0]

    def throughput(self, agents: int) -> cu.Cluster:
        log(f"throughput: {agents} agent(s), {self.args.msgs} x {MSG_SIZE} B, acks=all")
        c = self.cluster(agents)
        topic = f"bench-tput-{time.monotonic_ns()}"
        c.create_topic(topic, self.args.partitions)
        c.wait_all_led(topic, self.args.partitions, settle=2.0)
        # warm up connections and metadata
        self.produce_throughput(c.bootstrap(), topic, 2000)
        # PostgreSQL backends publish their counters at most once a second, and an idle one only after
        # up to 10 s: so the idle rate (lease rounds) is measured over STATS_LAG first, and the count
        # after the run is read STATS_LAG later, minus the idle rate over that wait.
        xi, ti = cu.xact_commit(self.args.pg_url, c.db), time.monotonic()
        time.sleep(STATS_LAG)
        x0, t0 = cu.xact_commit(self.args.pg_url, c.db), time.monotonic()
        idle_rate = (x0 - xi) / (t0 - ti)
        mps, secs, failed = self.produce_throughput(c.bootstrap(), topic, self.args.msgs)
        t_end = time.monotonic()
        time.sleep(STATS_LAG)
        x1, t1 = cu.xact_commit(self.args.pg_url, c.db), time.monotonic()
        run_commits = (x1 - x0) - idle_rate * (t1 - t_end)
        tps = run_commits / (t_end - t0)
        self.results[f"idle{agents}"] = f"{idle_rate:,.0f}"
        self.results[f"tput{agents}"] = f"{mps:,.0f}"
        self.results[f"mbps{agents}"] = f"{mps * MSG_SIZE / 1e6:.1f}"
        self.results[f"tps{agents}"] = f"{tps:,.0f}"
        self.results[f"tpk{agents}"] = f"{run_commits / (self.args.msgs / 1000):.1f}"
        if failed:
            self.notes.append(f"throughput with {agents} agents: {failed} messages failed")
        log(f"  {mps:,.0f} msgs/s over {secs:.1f}s; metadata {tps:,.0f} commits/s")
        return c

    # -- 4: latency ------------------------------------------------------------------------------------
    def latency(self, c: cu.Cluster) -> None:
        rate, seconds = 2000, self.args.lat_seconds
        log(f"latency: {rate} msgs/s for {seconds}s, linger.ms=1, acks=all, {len(c.live())} agents")
        topic = f"bench-lat-{time.monotonic_ns()}"
        c.create_topic(topic, self.args.partitions)
        c.wait_all_led(topic, self.args.partitions, settle=2.0)
        n = rate * seconds
        samples: list[float] = []
        if RDPERF.exists():
            with tempfile.NamedTemporaryFile("r", suffix=".lat") as f:
                p = subprocess.run([str(RDPERF), "-P", "-t", topic, "-b", c.bootstrap(), "-s", str(MSG_SIZE),
                                    "-a", "-1", "-X", "linger.ms=1", "-r", str(rate), "-l", "-A", f.name,
                                    "-c", str(n)], capture_output=True, text=True, timeout=seconds * 4 + 60)
                samples = [int(x) / 1000 for x in f.read().split() if x.strip().isdigit()]
                if not samples:
                    raise RuntimeError(f"no latency samples:\n{(p.stdout + p.stderr)[-2000:]}")
            samples = samples[rate:]  # drop the first second
        else:
            load = cu.ProducerLoad(c.bootstrap(), topic, self.args.partitions, rate=rate,
                                   **{"linger.ms": 1, "enable.idempotence": False}).start()
            time.sleep(seconds)
            load.stop()
            t_start = min(d.sent for d in load.deliveries) + 1
            samples = [(d.t - d.sent) * 1000 for d in load.deliveries if d.error is None and d.sent >= t_start]
        samples.sort()

        def pct(q):
            return samples[min(len(samples) - 1, max(0, int(round(q / 100 * len(samples))) - 1))]

        self.results["lat_p50"] = f"{pct(50):.1f}"
        self.results["lat_p99"] = f"{pct(99):.1f}"
        self.results["lat_max"] = f"{samples[-1]:.1f}"
        self.results["lat_n"] = str(len(samples))
        log(f"  p50 {pct(50):.1f} ms, p99 {pct(99):.1f} ms over {len(samples)} samples")

    # -- all ---------------------------------------------------------------------------------------------
    def run(self) -> int:
        steps = [lambda: self.failover(planned=False), lambda: self.failover(planned=True)]
        for agents in (1, 2, 3):
            def step(agents=agents):
                c = self.throughput(agents)
                try:
                    if agents == 3:
                        self.latency(c)
                finally:
                    self.done(c)
            steps.append(step)
        rc = 0
        for s in steps:
            try:
                s()
            except Exception as e:  # noqa: BLE001 - report and go on with the other steps
                rc = 1
                self.notes.append(f"step failed: {e!r}"[:500])
                log(f"step failed: {e!r}")
        self.table()
        return rc

    def table(self) -> None:
        r = self.results.get
        kind = "debug" if "debug" in str(self.binary) else "release" if "release" in str(self.binary) else "?"
        print(f"StreamHouse cluster benchmark: {self.binary} ({kind} build), PostgreSQL metadata "
              f"({self.args.pg_url.rsplit('@', 1)[-1]}), S3 at {self.args.s3_endpoint}, lease ttl "
              f"{self.args.lease_ttl_ms} ms, {self.args.partitions} partitions, client "
              f"{'rdkafka_performance' if RDPERF.exists() else 'confluent-kafka'}")
        rows = [
            ("unplanned failover (SIGKILL): writable again, max (s)", r("failover_max", "n/a")),
            ("  median over the killed agent's partitions (s)", r("failover_median", "n/a")),
            ("  partitions that moved", r("failover_parts", "n/a")),
            ("planned handoff (SIGTERM): writable again, max (s)", r("handoff_max", "n/a")),
            ("  median (s)", r("handoff_median", "n/a")),
            ("  SIGTERM to process exit (s)", r("handoff_exit", "n/a")),
        ]
        for n in (1, 2, 3):
            rows += [
                (f"produce 1 KiB acks=all, {n} agent{'s' if n > 1 else ''} (msgs/s)", r(f"tput{n}", "n/a")),
                (f"  MB/s", r(f"mbps{n}", "n/a")),
                (f"  metadata transactions/s (PostgreSQL xact_commit)", r(f"tps{n}", "n/a")),
                (f"  metadata transactions per 1,000 messages", r(f"tpk{n}", "n/a")),
                (f"  metadata transactions/s when idle (lease rounds)", r(f"idle{n}", "n/a")),
            ]
        rows += [
            ("produce latency p50 at 2,000 msgs/s, linger.ms=1, 3 agents (ms)", r("lat_p50", "n/a")),
            ("produce latency p99 (ms)", r("lat_p99", "n/a")),
            ("produce latency max (ms)", r("lat_max", "n/a")),
            ("  latency samples", r("lat_n", "n/a")),
        ]
        w = max(len(a) for a, _ in rows)
        print("-" * (w + 14))
        for a, b in rows:
            print(f"{a:<{w}}  {b:>10}")
        print("-" * (w + 14))
        for n in self.notes:
            print(f"note: {n}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg-url", default=os.environ.get(cu.PG_ENV), help="admin URL of a PostgreSQL server")
    ap.add_argument("--s3-endpoint", default=os.environ.get(cu.S3_ENV) or os.environ.get("AWS_ENDPOINT_URL"))
    default_bin = os.environ.get("STREAMHOUSE_BIN") or str(
        REPO / "target" / ("release" if (REPO / "target/release/streamhouse").exists() else "debug") / "streamhouse")
    ap.add_argument("--bin", default=default_bin, help=f"agent binary (default {default_bin})")
    ap.add_argument("--msgs", type=int, default=1_000_000, help="messages per throughput run")
    ap.add_argument("--partitions", type=int, default=12)
    ap.add_argument("--lat-seconds", type=int, default=10)
    ap.add_argument("--lease-ttl-ms", type=int, default=3000)
    args = ap.parse_args()
    if not args.pg_url or not args.s3_endpoint:
        ap.error("--pg-url and --s3-endpoint are required (or STREAMHOUSE_TEST_POSTGRES_URL and "
                 "STREAMHOUSE_TEST_S3_ENDPOINT)")
    os.environ["AWS_ENDPOINT_URL"] = args.s3_endpoint
    for k, v in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_REGION", "us-east-1")):
        os.environ.setdefault(k, v)
    if not Path(args.bin).exists():
        ap.error(f"agent binary {args.bin} not found")
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())
