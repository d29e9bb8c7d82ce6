"""kafka-python 3.0 (pure Python, its own protocol implementation)."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from compat_util import skip_unless_group_apis, wait_until

TIMEOUT_MS = 20000


def admin(bootstrap):
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS,
                            client_id="compat-kafka-python-admin")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("compression", [None, "gzip"])
def test_produce_then_assign_seek_to_beginning(broker, unique, compression):
    topic = unique(f"kp-{compression or 'none'}")
    partitions = 2
    a = admin(broker.bootstrap)
    try:
        a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                        timeout_ms=TIMEOUT_MS)
        wait_until(lambda: a.describe_topics([topic])[0].get("error_code") == 0
                   and len(a.describe_topics([topic])[0]["partitions"]) == partitions,
                   what=f"{topic} metadata")
    finally:
        a.close()

    n = 1000
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all",
                             compression_type=compression, linger_ms=5,
                             request_timeout_ms=TIMEOUT_MS, max_block_ms=TIMEOUT_MS)
    futures = []
    for i in range(n):
        futures.append(producer.send(topic, key=f"k{i % 10}".encode(), value=f"v{i}".encode(),
                                     headers=[("i", str(i).encode())]))
    producer.flush(timeout=30)
    metas = [f.get(timeout=30) for f in futures]  # raises on any failed send
    producer.close(timeout=10)

    by_part: dict[int, list[tuple[int, int]]] = {}
    for i, md in enumerate(metas):
        assert md.topic == topic
        by_part.setdefault(md.partition, []).append((md.offset, i))
    for part, recs in by_part.items():
        assert [o for o, _ in recs] == list(range(len(recs))), f"partition {part} offsets"

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                             group_id=None, request_timeout_ms=TIMEOUT_MS + 1000,
                             fetch_max_wait_ms=200, check_crcs=True)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        got: dict[int, list] = {p: [] for p in range(partitions)}
        deadline = time.monotonic() + 30
        while sum(len(v) for v in got.values()) < n and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                got[tp.partition].extend(records)
        ends = consumer.end_offsets(tps)
        begins = consumer.beginning_offsets(tps)
    finally:
        consumer.close()

    assert sum(len(v) for v in got.values()) == n, {p: len(v) for p, v in got.items()}
    for part, records in got.items():
        expected = by_part.get(part, [])
        assert [r.offset for r in records] == [o for o, _ in expected]
        for r, (_off, i) in zip(records, expected):
            assert r.key == f"k{i % 10}".encode()
            assert r.value == f"v{i}".encode()
            assert r.headers == [("i", str(i).encode())]
    # ListOffsets through kafka-python agrees
    assert {tp.partition: off for tp, off in begins.items()} == {p: 0 for p in range(partitions)}
    assert {tp.partition: off for tp, off in ends.items()} == {
        p: len(by_part.get(p, [])) for p in range(partitions)
    }


@pytest.mark.timeout(60)
def test_admin_create_list_delete(broker, unique):
    topic = unique("kp-admin")
    a = admin(broker.bootstrap)
    try:
        a.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)],
                        timeout_ms=TIMEOUT_MS)
        wait_until(lambda: topic in a.list_topics(), what=f"{topic} listed")
        [desc] = a.describe_topics([topic])
        assert desc["error_code"] == 0, desc
        assert sorted(p["partition_index"] for p in desc["partitions"]) == [0, 1, 2, 3]

        with pytest.raises(TopicAlreadyExistsError):
            a.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)],
                            timeout_ms=TIMEOUT_MS)

        a.delete_topics([topic], timeout_ms=TIMEOUT_MS)
        wait_until(lambda: topic not in a.list_topics(), what=f"{topic} deleted")
    finally:
        a.close()


@pytest.mark.timeout(90)
def test_group_consumer_commit(broker, unique):
    """kafka-python's own group coordinator code: subscribe, consume, commit, committed()."""
    skip_unless_group_apis(broker.bootstrap)
    topic, group = unique("kp-grp"), unique("kp-group")
    a = admin(broker.bootstrap)
    try:
        a.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)],
                        timeout_ms=TIMEOUT_MS)
    finally:
        a.close()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all",
                             request_timeout_ms=TIMEOUT_MS, max_block_ms=TIMEOUT_MS)
    n = 400
    futures = [producer.send(topic, value=f"g{i}".encode(), partition=i % 2) for i in range(n)]
    producer.flush(timeout=30)
    for f in futures:
        f.get(timeout=30)
    producer.close(timeout=10)

    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             request_timeout_ms=TIMEOUT_MS + 1000, fetch_max_wait_ms=200,
                             session_timeout_ms=10000, heartbeat_interval_ms=1000)
    try:
        got = []
        deadline = time.monotonic() + 45
        while len(got) < n and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend(records)
        assert sorted(r.value for r in got) == sorted(f"g{i}".encode() for i in range(n))
        consumer.commit()
        for part in (0, 1):
            assert consumer.committed(TopicPartition(topic, part)) == n // 2
    finally:
        consumer.close()
