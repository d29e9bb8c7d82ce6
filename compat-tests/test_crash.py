"""Durability: an acknowledged record survives SIGKILL at its acknowledged offset, and offsets stay
dense (no gap, no duplicate) across a crash or a graceful restart."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Producer

from compat_util import consume_all, create_topic, high_watermarks, wait_for_partitions

PARTITIONS = 3
pytestmark = pytest.mark.needs_process


def acks_all_producer(bootstrap: str, **overrides) -> Producer:
    conf = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 30000,
        "socket.timeout.ms": 10000,
        "reconnect.backoff.max.ms": 500,
    }
    conf.update(overrides)
    return Producer(conf)


class Acks:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = {}  # (partition, offset) -> value
        self.errors = []

    def cb(self, err, msg):
        with self.lock:
            if err is not None:
                self.errors.append(err)
            else:
                key = (msg.partition(), msg.offset())
                assert key not in self.ok, f"offset {key} acknowledged twice"
                self.ok[key] = msg.value()


def produce_n(p: Producer, topic: str, acks: Acks, n: int, tag: str):
    for i in range(n):
        while True:
            try:
                p.produce(topic, key=f"k{i % 17}".encode(), value=f"{tag}-{i}".encode(),
                          on_delivery=acks.cb)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)


def verify_log(bootstrap: str, topic: str, acked: dict, min_counts: dict[int, int] | None = None):
    """Every acknowledged record is at its acknowledged offset; each partition's offsets are dense
    0..hw-1. Returns {partition: high watermark}."""
    try:
        wait_for_partitions(bootstrap, topic, PARTITIONS, timeout=20)
    except AssertionError as e:
        raise AssertionError(f"topic {topic} (or its partitions) lost across the restart: {e}")
    wm = high_watermarks(bootstrap, topic, PARTITIONS)
    for part, (lo, hi) in wm.items():
        assert lo == 0, (part, lo)
        need = max((off + 1 for (p, off) in acked if p == part), default=0)
        assert hi >= need, f"partition {part}: high watermark {hi} < acknowledged offset {need - 1} + 1"
    consumed = consume_all(bootstrap, topic, PARTITIONS,
                           expected={p: hi for p, (_lo, hi) in wm.items()})
    for part, msgs in consumed.items():
        offsets = [m.offset() for m in msgs]
        assert offsets == list(range(wm[part][1])), f"partition {part}: offsets not dense"
    stored = {(part, m.offset()): m.value() for part, msgs in consumed.items() for m in msgs}
    lost = [(k, v) for k, v in acked.items() if stored.get(k) != v]
    assert not lost, f"{len(lost)} acknowledged records lost or changed, first: {lost[:5]}"
    return {p: hi for p, (_lo, hi) in wm.items()}


def continue_and_check(broker, topic, hws: dict[int, int]):
    """Produce more after the restart: new offsets continue exactly at the old high watermark."""
    acks = Acks()
    p = acks_all_producer(broker.bootstrap)
    for part in range(PARTITIONS):
        for i in range(50):
            p.produce(topic, value=f"after-{part}-{i}".encode(), partition=part, on_delivery=acks.cb)
    assert p.flush(30) == 0
    assert not acks.errors, acks.errors[:3]
    for part in range(PARTITIONS):
        offs = sorted(off for (pp, off) in acks.ok if pp == part)
        assert offs == list(range(hws[part], hws[part] + 50)), (
            f"partition {part}: new offsets {offs[:3]}..{offs[-3:]} do not continue at {hws[part]}"
        )
    return acks.ok


@pytest.mark.timeout(120)
def test_sigkill_after_flush_keeps_every_acknowledged_record(broker, unique):
    topic = unique("crash")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    acks = Acks()
    p = acks_all_producer(broker.bootstrap)
    produce_n(p, topic, acks, 5000, "before")
    assert p.flush(60) == 0
    broker.kill()  # immediately: no graceful flush
    assert not acks.errors, acks.errors[:3]
    assert len(acks.ok) == 5000
    del p

    broker.restart()
    hws = verify_log(broker.bootstrap, topic, acks.ok)
    assert sum(hws.values()) == 5000, f"{sum(hws.values())} records after restart, 5000 acknowledged"
    more = continue_and_check(broker, topic, hws)
    verify_log(broker.bootstrap, topic, {**acks.ok, **more})


@pytest.mark.timeout(120)
def test_sigkill_during_produce_keeps_every_acknowledged_record(broker, unique):
    """Kill while requests are in flight: whatever was acknowledged before the kill survives;
    unacknowledged records may or may not be there, but offsets stay dense."""
    topic = unique("crash-mid")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    acks = Acks()
    p = acks_all_producer(broker.bootstrap, **{"message.timeout.ms": 5000, "retries": 0})
    stop = threading.Event()

    def run():
        i = 0
        while not stop.is_set() and i < 200_000:
            try:
                p.produce(topic, key=f"k{i % 17}".encode(), value=f"mid-{i}".encode(),
                          on_delivery=acks.cb)
                i += 1
            except BufferError:
                pass
            p.poll(0 if i % 100 else 0.001)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while len(acks.ok) < 3000 and time.monotonic() < deadline:
        time.sleep(0.01)
    broker.kill()
    stop.set()
    t.join(10)
    # acknowledgements received before the kill may still sit in the queue: serve them; nothing
    # new can be acknowledged, the broker is dead
    p.poll(0.5)
    p.purge(in_queue=True, in_flight=True, blocking=False)
    p.flush(10)
    acked = dict(acks.ok)
    assert len(acked) >= 1, "nothing was acknowledged before the kill; the test proves nothing"

    broker.restart()
    hws = verify_log(broker.bootstrap, topic, acked)
    print(f"acknowledged before SIGKILL: {len(acked)}, stored after restart: {sum(hws.values())}")
    more = continue_and_check(broker, topic, hws)
    verify_log(broker.bootstrap, topic, {**acked, **more})


@pytest.mark.timeout(120)
def test_graceful_stop_then_restart(broker, unique):
    topic = unique("restart")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    acks = Acks()
    p = acks_all_producer(broker.bootstrap, **{"enable.idempotence": True})
    produce_n(p, topic, acks, 2000, "graceful")
    assert p.flush(60) == 0
    assert not acks.errors
    del p
    broker.stop()  # SIGTERM: exit code 0 asserted
    broker.restart()
    hws = verify_log(broker.bootstrap, topic, acks.ok)
    assert sum(hws.values()) == 2000
    more = continue_and_check(broker, topic, hws)
    verify_log(broker.bootstrap, topic, {**acks.ok, **more})
