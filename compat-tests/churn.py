"""Leadership churn under load, shared by the churn test (test_cluster_churn.py) and scripts/chaos.sh.

A Churn runs on a started Cluster: an idempotent acks=all producer (cluster_util.ProducerLoad) over every
partition of a topic, a TailingConsumer that stays connected throughout (assign() of every partition from
offset 0, fetching all the time, librdkafka's own log kept), optionally a consumer group (GroupReader),
and every `period` seconds one agent picked at random is SIGKILLed and restarted, SIGTERMed and
restarted, or SIGSTOPped for a few seconds and resumed. After the cycles the producer stops, the tailing
consumer must reach every acknowledged record, and so must a consumer created only then; the report says
what they saw.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from dataclasses import dataclass, field

from cluster_util import Cluster, ProducerLoad

ACTIONS = ("kill", "term", "stop")
# librdkafka logs this when a request sent on an open connection got no answer within socket.timeout.ms
TIMED_OUT_IN_FLIGHT = re.compile(r"Timed out (\w+) in flight \(after (\d+)ms")


class _Captured(logging.Handler):
    """Keeps librdkafka's log lines (confluent-kafka's `logger` config) that match a pattern."""

    def __init__(self, pattern: re.Pattern):
        super().__init__(logging.DEBUG)
        self.pattern = pattern
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if self.pattern.search(msg):
            self.lines.append(msg)


def _logger(name: str, handler: logging.Handler) -> logging.Logger:
    log = logging.getLogger(name)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.addHandler(handler)
    return log


def _consume(consumer, stop: threading.Event, errors: list[str], on_message) -> None:
    """Polls `consumer` until `stop` is set: errors go to `errors`, records to `on_message`."""
    while not stop.is_set():
        for m in consumer.consume(num_messages=1000, timeout=0.2):
            if m.error():
                errors.append(str(m.error()))
            else:
                on_message(m)


class TailingConsumer:
    """An assign() consumer of every partition from offset 0, created before the churn and kept fetching
    through it. Records every (partition, offset, value) and librdkafka's 'Timed out ... in flight' lines."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, name: str = "tail",
                 request_timeout_ms: int = 30000):
        from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING

        self.topic, self.partitions = topic, partitions
        self.timeouts = _Captured(TIMED_OUT_IN_FLIGHT)
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": f"{name}-{topic}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            # a request unanswered this long is timed out by the client and logged (librdkafka's
            # default is 60 s; 30 s is Java's request.timeout.ms)
            "socket.timeout.ms": request_timeout_ms,
            "topic.metadata.refresh.interval.ms": 5000,
            "logger": _logger(f"churn.{name}.{topic}", self.timeouts),
        })
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        self.records: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "TailingConsumer":
        self._thread.start()
        return self

    def _run(self) -> None:
        _consume(self.consumer, self._stop, self.errors,
                 lambda m: self.records[m.partition()].append((m.offset(), m.value())))

    def count(self) -> int:
        return sum(len(v) for v in self.records.values())

    def wait_for(self, expected: int, timeout: float) -> float | None:
        """Seconds until `expected` records were read, or None if not within `timeout`."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.count() >= expected:
                return time.monotonic() - t0
            time.sleep(0.2)
        return None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.consumer.close()


class GroupReader:
    """A consumer-group member (subscribe, auto-commit) kept consuming through the churn, so group
    coordinators move under live members too."""

    def __init__(self, bootstrap: str, topic: str, group: str, name: str):
        from confluent_kafka import Consumer

        self.name = name
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 500,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000,
        })
        self.consumer.subscribe([topic])
        self.consumed = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "GroupReader":
        self._thread.start()
        return self

    def _run(self) -> None:
        _consume(self.consumer, self._stop, self.errors, self._count)

    def _count(self, _message) -> None:
        self.consumed += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        try:
            self.consumer.close()
        except Exception as e:  # a close during a rebalance may fail; nothing to check there
            self.errors.append(f"close: {e!r}")


@dataclass
class Report:
    cycles: int
    actions: list[str] = field(default_factory=list)
    sent: int = 0
    acked: int = 0
    failed: int = 0
    longest_stall_s: float = 0.0
    tail_read: int = 0
    tail_catch_up_s: float | None = None
    tail_timeouts: list[str] = field(default_factory=list)
    late_read: int = 0
    late_catch_up_s: float | None = None
    late_timeouts: list[str] = field(default_factory=list)
    group_consumed: int = 0

    def lines(self) -> list[str]:
        catch_up = "never" if self.tail_catch_up_s is None else f"{self.tail_catch_up_s:.1f}s"
        return [
            f"cycles {self.cycles}: {', '.join(self.actions)}",
            f"producer: sent {self.sent}, acked {self.acked}, failed {self.failed}, "
            f"longest stall of a partition {self.longest_stall_s:.1f}s",
            f"tailing consumer: read {self.tail_read}, caught up {catch_up} after the churn, "
            f"requests timed out by the client: {len(self.tail_timeouts)} {self.tail_timeouts[:3]}",
            f"consumer created after the churn: read {self.late_read}, all of it in "
            f"{'never' if self.late_catch_up_s is None else f'{self.late_catch_up_s:.1f}s'}, "
            f"requests timed out by the client: {len(self.late_timeouts)} {self.late_timeouts[:3]}",
            f"group consumers: consumed {self.group_consumed}",
        ]


class Churn:
    def __init__(self, cluster: Cluster, topic: str, partitions: int, rate: float, seed: int,
                 group_members: int = 0, stop_s: tuple[float, float] = (2.0, 4.0)):
        self.cluster, self.topic, self.partitions = cluster, topic, partitions
        self.rate, self.rng, self.stop_s = rate, random.Random(seed), stop_s
        self.group_members = group_members
        self.load: ProducerLoad | None = None
        self.tail: TailingConsumer | None = None
        self.late: TailingConsumer | None = None
        self.group: list[GroupReader] = []

    def start(self) -> None:
        bootstrap = self.cluster.bootstrap()
        self.tail = TailingConsumer(bootstrap, self.topic, self.partitions).start()
        self.group = [GroupReader(bootstrap, self.topic, f"churn-{self.topic}", f"m{i}").start()
                      for i in range(self.group_members)]
        self.load = ProducerLoad(bootstrap, self.topic, self.partitions, rate=self.rate).start()

    def cycle(self, period: float, log=print) -> str:
        """One random fault on one random agent, then waits out the rest of `period`."""
        t0 = time.monotonic()
        agent = self.rng.choice(list(self.cluster.agents.values()))
        action = self.rng.choice(ACTIONS)
        if action == "kill":
            agent.kill()
            agent.start()
        elif action == "term":
            rc = agent.stop()
            if rc != 0:
                raise AssertionError(f"{agent} exited {rc} after SIGTERM\n{agent.log_tail()}")
            agent.start()
        else:
            agent.pause()
            time.sleep(self.rng.uniform(*self.stop_s))
            agent.resume()
        what = f"{action} {agent.id}"
        log(f"  {what} ({time.monotonic() - t0:.1f}s); acked so far {len(self.load.acked())}, "
            f"tail read {self.tail.count()}")
        time.sleep(max(0.0, period - (time.monotonic() - t0)))
        return what

    def finish(self, cycles: int, actions: list[str], catch_up_s: float, late_read_s: float) -> Report:
        """Stops the producer, lets the tailing consumer catch up (within `catch_up_s`) and a new
        consumer read everything (within `late_read_s`: it reads history from the object store), stops
        every client; returns the report."""
        self.load.stop()
        acked = self.load.acked()
        r = Report(cycles, actions, self.load.sent, len(acked), len(self.load.failed()),
                   max((self.load.max_gap(p) for p in range(self.partitions)), default=0.0))
        r.tail_catch_up_s = self.tail.wait_for(len(acked), catch_up_s)
        self.tail.stop()
        r.tail_read = self.tail.count()
        r.tail_timeouts = list(self.tail.timeouts.lines)
        self.late = TailingConsumer(self.cluster.bootstrap(), self.topic, self.partitions, name="late").start()
        r.late_catch_up_s = self.late.wait_for(len(acked), late_read_s)
        self.late.stop()
        r.late_read = self.late.count()
        r.late_timeouts = list(self.late.timeouts.lines)
        for g in self.group:
            g.stop()
        r.group_consumed = sum(g.consumed for g in self.group)
        return r
