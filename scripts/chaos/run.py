#!/usr/bin/env python3
"""Chaos run: three agents on PostgreSQL + S3, an idempotent producer, a tailing consumer and a consumer
group, and a random SIGKILL, SIGTERM or SIGSTOP/SIGCONT of one agent per cycle (compat-tests/churn.py).
At the end every acknowledged record must be read back exactly once at its offset.

usage: compat-tests/.venv/bin/python scripts/chaos/run.py --pg-url URL --s3-endpoint URL
           [--cycles 100] [--period 6] [--rate 2000] [--partitions 12] [--seed N] [--bin PATH]
Prints the figures (records, cycles, losses, duplicates, longest stall); exits 1 if anything was lost,
duplicated or misplaced, or the tailing consumer did not catch up within a minute.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "compat-tests"))

import cluster_util as cu  # noqa: E402
from churn import Churn  # noqa: E402


def log(msg: str) -> None:
    print(f"[chaos] {msg}", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pg-url", required=True)
    ap.add_argument("--s3-endpoint", required=True)
    ap.add_argument("--bin", default=str(REPO / "target" / "debug" / "streamhouse"))
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--period", type=float, default=6.0)
    ap.add_argument("--rate", type=float, default=2000.0)
    ap.add_argument("--partitions", type=int, default=12)
    ap.add_argument("--group-members", type=int, default=2)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    workdir = Path(tempfile.mkdtemp(prefix="streamhouse-chaos-"))
    cluster = cu.Cluster(workdir, args.pg_url, args.s3_endpoint, binary=Path(args.bin).resolve())
    log(f"seed {seed}; agents' logs under {workdir}")
    try:
        cluster.add_agents(3)
        cluster.start_all()
        topic = f"chaos-{seed}"
        cluster.create_topic(topic, args.partitions)
        churn = Churn(cluster, topic, args.partitions, args.rate, seed, group_members=args.group_members)
        churn.start()
        time.sleep(3)
        actions = []
        for i in range(args.cycles):
            log(f"cycle {i + 1}/{args.cycles}")
            actions.append(churn.cycle(args.period, log))
        log("churn over: stopping the producer, waiting for the tailing consumer")
        report = churn.finish(args.cycles, actions, catch_up_s=60.0, late_read_s=600.0)
        for line in report.lines():
            log(line)
        # A third read, from scratch, after every client of the run has gone (a few thousand records a
        # second from the object store).
        records = cu.read_back(cluster.bootstrap(), topic, args.partitions, timeout=max(120.0, report.acked / 2000))
        problems = cu.check_exactly_acked(records, churn.load.acked())
        tail_problems = [f"tailing consumer: {p}" for p in cu.check_exactly_acked(churn.tail.records, churn.load.acked())]
        tail_problems += [f"late consumer: {p}" for p in cu.check_exactly_acked(churn.late.records, churn.load.acked())]
        total = sum(len(v) for v in records.values())
        print(f"chaos: seed {seed}, {args.cycles} cycles, {report.acked} acknowledged records, "
              f"{total} read back, longest stall {report.longest_stall_s:.1f}s, "
              f"tail caught up in {report.tail_catch_up_s}, client request timeouts {len(report.tail_timeouts)}")
        for p in problems + tail_problems:
            print(f"PROBLEM: {p}")
        bad = (problems or tail_problems or report.tail_catch_up_s is None or report.late_catch_up_s is None
               or cluster.problems())
        for p in cluster.problems():
            print(f"PROBLEM: {p}")
        return 1 if bad else 0
    finally:
        cluster.teardown()


if __name__ == "__main__":
    sys.exit(main())
