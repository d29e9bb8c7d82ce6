"""Shared helpers for the compatibility tests (confluent-kafka based verification)."""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

CLIENT_TIMEOUT_S = 30


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def create_topic(bootstrap: str, name: str, partitions: int = 1, config: dict | None = None) -> None:
    """Create a topic with confluent-kafka's AdminClient and wait until metadata shows all partitions
    with a leader."""
    a = admin(bootstrap)
    futs = a.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        request_timeout=CLIENT_TIMEOUT_S,
        operation_timeout=CLIENT_TIMEOUT_S,
    )
    futs[name].result(timeout=CLIENT_TIMEOUT_S)
    wait_for_partitions(bootstrap, name, partitions)


def wait_for_partitions(bootstrap: str, name: str, partitions: int, timeout: float = 20.0) -> None:
    a = admin(bootstrap)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        md = a.list_topics(topic=name, timeout=10)
        t = md.topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions and all(
            p.leader >= 0 for p in t.partitions.values()
        ):
            return
        last = t
        time.sleep(0.2)
    raise AssertionError(f"topic {name} never showed {partitions} partitions with leaders: {last}")


def consumer(bootstrap: str, **overrides) -> Consumer:
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": "compat-assign-only",  # required by librdkafka; no subscribe(), no commits
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
        "check.crcs": True,  # librdkafka verifies every batch CRC the broker returns
        "socket.timeout.ms": 10000,
    }
    conf.update(overrides)
    return Consumer(conf)


def high_watermarks(bootstrap: str, topic: str, partitions: int) -> dict[int, tuple[int, int]]:
    c = consumer(bootstrap)
    try:
        return {
            p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
            for p in range(partitions)
        }
    finally:
        c.close()


def consume_all(
    bootstrap: str,
    topic: str,
    partitions: int,
    expected: dict[int, int] | None = None,
    timeout: float = 60.0,
):
    """assign() every partition from OFFSET_BEGINNING and read up to the high watermark.

    Returns {partition: [Message, ...]} in consumed order. `expected` gives the number of records
    per partition; by default the current high watermark of each partition (log start 0).
    """
    c = consumer(bootstrap)
    try:
        if expected is None:
            expected = {}
            for p in range(partitions):
                lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
                expected[p] = hi - lo
        out: dict[int, list] = {p: [] for p in range(partitions)}
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        while any(len(out[p]) < expected[p] for p in out):
            if time.monotonic() > deadline:
                got = {p: len(v) for p, v in out.items()}
                raise AssertionError(f"timed out consuming {topic}: got {got}, expected {expected}")
            msgs = c.consume(num_messages=1000, timeout=0.5)
            for m in msgs:
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"consumer error on {topic}: {m.error()}")
                out[m.partition()].append(m)
        # a short extra poll: nothing beyond the expected count may appear
        for m in c.consume(num_messages=1000, timeout=0.5):
            if not m.error():
                out[m.partition()].append(m)
        return out
    finally:
        c.close()


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


GROUP_APIS = {8: "OffsetCommit", 9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup",
              12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup"}


def skip_unless_group_apis(bootstrap: str) -> None:
    """Skip the calling test unless the broker advertises the consumer-group APIs."""
    import pytest

    import kafka_wire

    versions = kafka_wire.api_versions(bootstrap)
    missing = [name for key, name in GROUP_APIS.items() if key not in versions]
    if missing:
        pytest.skip(f"broker does not advertise consumer-group APIs: {', '.join(missing)}")
