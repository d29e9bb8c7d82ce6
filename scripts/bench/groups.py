#!/usr/bin/env python3
"""Consumer-group benchmark for StreamHouse (or any Kafka-compatible broker), with confluent-kafka
(librdkafka) consumers.

usage: compat-tests/.venv/bin/python scripts/bench/groups.py --bootstrap HOST:PORT
           [--messages 300000] [--size 1024] [--runs 3]

Measures, against the running broker at --bootstrap (topics are created with unique names):

  (a) first record: from subscribe() to the first record for a NEW single-member group, client
      defaults (only group.id and auto.offset.reset=earliest set), on a pre-filled 6-partition
      topic. Best / median / worst of --runs fresh groups.
  (b) graceful-leave recovery: a 3-member group on 6 partitions (2 each), client defaults; one
      member close()s (LeaveGroup). From the start of that close() until the two others together
      hold all 6 partitions, and until each moved partition delivered a record produced after the
      close started (a marker is produced to each moved partition every 10 ms). Per run; then
      again with heartbeat.interval.ms=500 (the default 3 s heartbeat dominates: survivors learn
      of the rebalance at their next heartbeat).
  (c) group consume throughput: 3 members (separate processes, client defaults) read
      --messages records of --size bytes from a 6-partition topic, from the earliest offset:
      msgs/s and MB/s between the first and the last record (and including the join).

Prints a table on stdout (progress on stderr); exits non-zero if a step fails or times out.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import threading
import time
import uuid

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

PARTS = 6
STEP_TIMEOUT = 120.0


def log(msg):
    print(f"[groups-bench] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


def create_topic(bootstrap, name, partitions=PARTS):
    a = AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                    operation_timeout=30)[name].result(timeout=30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        t = a.list_topics(topic=name, timeout=10).topics.get(name)
        if t and t.error is None and len(t.partitions) == partitions:
            return
        time.sleep(0.1)
    raise BenchError(f"topic {name} has no {partitions} partitions")


def fill(bootstrap, topic, n, size, partitions=PARTS):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000,
                  "queue.buffering.max.kbytes": 1_048_576, "compression.type": "none"})
    payload = b"x" * size
    errors = []

    def dr(err, _msg):
        if err:
            errors.append(err)

    for i in range(n):
        while True:
            try:
                p.produce(topic, payload, partition=i % partitions, on_delivery=dr)
                break
            except BufferError:
                p.poll(0.05)
        if i % 10000 == 0:
            p.poll(0)
    if p.flush(STEP_TIMEOUT) != 0 or errors:
        raise BenchError(f"producing {n} records failed: {errors[:3]}")


# ---- (a) subscribe() to first record ------------------------------------------------------------
def first_record(bootstrap, runs):
    topic = f"bench-grp-first-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic)
    fill(bootstrap, topic, 6000, 100)
    out = []
    for r in range(runs):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-first-{uuid.uuid4().hex[:8]}",
                      "auto.offset.reset": "earliest"})
        t0 = time.monotonic()
        c.subscribe([topic])
        got = None
        while time.monotonic() - t0 < STEP_TIMEOUT:
            m = c.poll(0.05)
            if m is not None and not m.error():
                got = time.monotonic() - t0
                break
        c.close()
        if got is None:
            raise BenchError("(a) no record within the step timeout")
        log(f"(a) run {r + 1}: first record after {got * 1000:.0f} ms")
        out.append(got)
    return out


# ---- (b) recovery after a graceful leave ---------------------------------------------------------
class BMember(threading.Thread):
    def __init__(self, name, bootstrap, group, topic, conf=None):
        super().__init__(daemon=True, name=name)
        self.name_ = name
        c = {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "latest"}
        c.update(conf or {})
        self.c = Consumer(c)
        self.topic = topic
        self.stop_evt = threading.Event()
        self.lock = threading.Lock()
        self.assigned = set()
        self.assigned_at = 0.0
        self.markers = {}  # partition -> first time a marker produced after t_mark was seen
        self.t_mark = None
        self.error = None

    def _assign(self, c, ps):
        with self.lock:
            self.assigned = {tp.partition for tp in ps}
            self.assigned_at = time.monotonic()

    def _revoke(self, c, ps):
        with self.lock:
            self.assigned = set()

    def run(self):
        try:
            self.c.subscribe([self.topic], on_assign=self._assign, on_revoke=self._revoke)
            while not self.stop_evt.is_set():
                m = self.c.poll(0.02)
                if m is None or m.error():
                    continue
                now = time.monotonic()
                t_mark = self.t_mark
                if t_mark is not None and m.value().startswith(b"marker:"):
                    sent = float(m.value().split(b":")[1])
                    if sent >= t_mark:
                        with self.lock:
                            self.markers.setdefault(m.partition(), now)
        except Exception as e:  # noqa: BLE001
            self.error = repr(e)

    def assignment(self):
        with self.lock:
            return set(self.assigned), self.assigned_at


def leave_recovery(bootstrap, runs, conf=None):
    out = []
    for r in range(runs):
        topic = f"bench-grp-leave-{uuid.uuid4().hex[:8]}"
        group = f"bench-leave-{uuid.uuid4().hex[:8]}"
        create_topic(bootstrap, topic)
        members = [BMember(f"m{i}", bootstrap, group, topic, conf) for i in range(3)]
        for m in members:
            m.start()
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            a = [m.assignment()[0] for m in members]
            if sorted(map(len, a)) == [2, 2, 2] and set().union(*a) == set(range(PARTS)):
                break
            if time.monotonic() > deadline:
                for m in members:
                    m.stop_evt.set()
                raise BenchError(f"(b) three members never split the partitions: {a}")
            time.sleep(0.01)
        time.sleep(0.5)
        leaver, stay = members[2], members[:2]
        moved = leaver.assignment()[0]
        prod = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
        prod.list_topics(topic, timeout=10)  # connected before the clock starts
        stop_markers = threading.Event()
        leaver.stop_evt.set()  # its poll loop ends; this thread closes it
        leaver.join(15)
        t0 = time.monotonic()
        for m in stay:
            m.t_mark = t0

        def markers():
            while not stop_markers.is_set():
                for p in moved:
                    prod.produce(topic, f"marker:{time.monotonic()!r}".encode(), partition=p)
                prod.poll(0.01)
            prod.flush(10)

        mt = threading.Thread(target=markers, daemon=True)
        mt.start()
        leaver.c.close()  # LeaveGroup
        t_assigned = t_consumed = None
        while time.monotonic() - t0 < STEP_TIMEOUT:
            now = time.monotonic()
            a = [m.assignment() for m in stay]
            if t_assigned is None and set().union(*(x[0] for x in a)) == set(range(PARTS)) \
                    and sum(len(x[0]) for x in a) == PARTS:
                t_assigned = max(x[1] for x in a) - t0
            seen = {}
            for m in stay:
                with m.lock:
                    for p, t in m.markers.items():
                        seen[p] = min(seen.get(p, t), t)
            if t_assigned is not None and moved <= set(seen):
                t_consumed = max(seen[p] for p in moved) - t0
                break
            time.sleep(0.005)
        stop_markers.set()
        mt.join(15)
        for m in stay:
            m.stop_evt.set()
        for m in stay:
            m.join(15)
            m.c.close()
        errs = [m.error for m in members if m.error]
        if errs:
            raise BenchError(f"(b) member errors: {errs}")
        if t_consumed is None:
            raise BenchError(f"(b) the two members never recovered the moved partitions {moved}")
        log(f"(b{' ' + str(conf) if conf else ''}) run {r + 1}: all 6 partitions assigned after {t_assigned * 1000:.0f} ms, "
            f"moved partitions consuming after {t_consumed * 1000:.0f} ms")
        out.append((t_assigned, t_consumed))
    return out


# ---- (c) throughput -------------------------------------------------------------------------------
def _tp_member(bootstrap, group, topic, total, counter, first, last, ready, err):
    try:
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                      "auto.offset.reset": "earliest"})
        ready.wait()
        c.subscribe([topic])
        deadline = time.monotonic() + STEP_TIMEOUT
        n = 0
        while time.monotonic() < deadline:
            msgs = c.consume(num_messages=5000, timeout=0.2)
            now = time.time()
            k = 0
            for m in msgs:
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        raise BenchError(str(m.error()))
                    continue
                k += 1
            if k:
                n += k
                with counter.get_lock():
                    if counter.value == 0:
                        first.value = now
                    counter.value += k
                    if counter.value >= total:
                        last.value = now
            if counter.value >= total:
                break
        c.close()
    except Exception as e:  # noqa: BLE001
        err.value = 1
        print(f"throughput member failed: {e!r}", file=sys.stderr)


def throughput(bootstrap, n, size):
    topic = f"bench-grp-tp-{uuid.uuid4().hex[:8]}"
    group = f"bench-tp-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic)
    log(f"(c) producing {n} x {size} B")
    t = time.monotonic()
    fill(bootstrap, topic, n, size)
    log(f"(c) produced in {time.monotonic() - t:.1f}s; consuming with 3 members")
    ctx = mp.get_context("spawn")
    counter = ctx.Value("q", 0)
    first = ctx.Value("d", 0.0)
    last = ctx.Value("d", 0.0)
    err = ctx.Value("i", 0)
    ready = ctx.Event()
    procs = [ctx.Process(target=_tp_member, args=(bootstrap, group, topic, n, counter, first, last,
                                                   ready, err)) for _ in range(3)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let the processes import and create their consumers
    t_sub = time.time()
    ready.set()
    for p in procs:
        p.join(STEP_TIMEOUT + 30)
    if any(p.is_alive() for p in procs):
        for p in procs:
            p.kill()
        raise BenchError("(c) consumers did not finish")
    if err.value or counter.value < n:
        raise BenchError(f"(c) consumed {counter.value} of {n}")
    if counter.value != n:
        raise BenchError(f"(c) consumed {counter.value} records, {n} were produced (duplicates)")
    span = last.value - first.value
    total_span = last.value - t_sub
    return n / span, n * size / span / 1e6, n / total_span, first.value - t_sub


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--messages", type=int, default=300_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    try:
        a = first_record(args.bootstrap, args.runs)
        b = leave_recovery(args.bootstrap, args.runs)
        b2 = leave_recovery(args.bootstrap, args.runs, {"heartbeat.interval.ms": 500})
        c = throughput(args.bootstrap, args.messages, args.size)
    except Exception as e:  # noqa: BLE001 - BenchError or a client error: the bench failed
        print(f"groups bench failed: {e!r}", file=sys.stderr)
        return 1
    ms = lambda s: f"{s * 1000:.0f} ms"  # noqa: E731
    rows = [
        ("(a) subscribe() -> first record, new 1-member group",
         f"median {ms(statistics.median(a))} (best {ms(min(a))}, worst {ms(max(a))}, {len(a)} runs)"),
        ("(b) graceful leave -> survivors hold all 6 partitions",
         f"median {ms(statistics.median(x[0] for x in b))} ({', '.join(ms(x[0]) for x in b)})"),
        ("(b) graceful leave -> moved partitions deliver new records",
         f"median {ms(statistics.median(x[1] for x in b))} ({', '.join(ms(x[1]) for x in b)})"),
        ("(b) same, heartbeat.interval.ms=500: all 6 assigned",
         f"median {ms(statistics.median(x[0] for x in b2))} ({', '.join(ms(x[0]) for x in b2)})"),
        ("(b) same, heartbeat.interval.ms=500: moved partitions deliver",
         f"median {ms(statistics.median(x[1] for x in b2))} ({', '.join(ms(x[1]) for x in b2)})"),
        (f"(c) 3-member group consume, {args.messages} x {args.size} B",
         f"{c[0]:,.0f} msgs/s, {c[1]:.1f} MB/s (first..last record)"),
        ("(c) same, including the join",
         f"{c[2]:,.0f} msgs/s (first record {ms(c[3])} after subscribe)"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"consumer-group benchmark against {args.bootstrap} (confluent-kafka, client defaults)")
    print(f"{'measure'.ljust(width)}  result")
    print(f"{'-' * width}  {'-' * 60}")
    for k, v in rows:
        print(f"{k.ljust(width)}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
