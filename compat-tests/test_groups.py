"""Consumer groups with subscribe(): partition assignment across members and committed offsets.

These run only when the broker advertises the group APIs in ApiVersions, so they switch on by
themselves once the broker implements groups (see README's FINDINGS)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from compat_util import create_topic, skip_unless_group_apis


@pytest.fixture
def group_broker(broker):
    skip_unless_group_apis(broker.bootstrap)
    return broker


def group_consumer(bootstrap, group, **overrides):
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 500,
        "socket.timeout.ms": 10000,
    }
    conf.update(overrides)
    return Consumer(conf)


def produce(bootstrap, topic, values, partitions):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    errors = []
    for i, v in enumerate(values):
        p.produce(topic, value=v, partition=i % partitions,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(30) == 0
    assert not errors, errors[:3]


def drain(c, want, timeout=30.0):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
            continue
        got.append(m)
    return got


@pytest.mark.timeout(90)
def test_subscribe_commit_and_resume(group_broker, unique):
    b = group_broker
    topic, group = unique("grp"), unique("group")
    create_topic(b.bootstrap, topic, partitions=2)
    first = [f"first-{i}".encode() for i in range(200)]
    produce(b.bootstrap, topic, first, 2)

    c = group_consumer(b.bootstrap, group)
    c.subscribe([topic])
    got = drain(c, len(first))
    assert sorted(m.value() for m in got) == sorted(first)
    c.commit(asynchronous=False)
    committed = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
    assert {tp.partition: tp.offset for tp in committed} == {0: 100, 1: 100}
    c.close()

    second = [f"second-{i}".encode() for i in range(50)]
    produce(b.bootstrap, topic, second, 2)
    c = group_consumer(b.bootstrap, group)
    c.subscribe([topic])
    got = drain(c, len(second))
    # resumes at the committed offsets: only the new records, none of the first ones
    assert sorted(m.value() for m in got) == sorted(second)
    assert not drain(c, 1, timeout=2)
    c.close()


@pytest.mark.timeout(90)
def test_two_members_split_the_partitions(group_broker, unique):
    b = group_broker
    topic, group = unique("grp-split"), unique("group")
    create_topic(b.bootstrap, topic, partitions=4)
    c1 = group_consumer(b.bootstrap, group)
    c2 = group_consumer(b.bootstrap, group)
    try:
        c1.subscribe([topic])
        c2.subscribe([topic])
        deadline = time.monotonic() + 45
        a1 = a2 = set()
        while time.monotonic() < deadline:
            c1.poll(0.2)
            c2.poll(0.2)
            a1 = {tp.partition for tp in c1.assignment()}
            a2 = {tp.partition for tp in c2.assignment()}
            if a1 and a2 and not (a1 & a2) and a1 | a2 == {0, 1, 2, 3}:
                break
        assert a1 and a2, f"both members need partitions: {a1} {a2}"
        assert not (a1 & a2), f"a partition is assigned twice: {a1} {a2}"
        assert a1 | a2 == {0, 1, 2, 3}, f"not all partitions assigned: {a1} {a2}"
    finally:
        c1.close()
        c2.close()
