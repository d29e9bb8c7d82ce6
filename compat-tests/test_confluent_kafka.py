"""confluent-kafka (librdkafka 2.16): idempotent producer with every codec, assign() consumer,
AdminClient, watermarks and ListOffsets by timestamp."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import OFFSET_END, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import ConfigResource, ConfigSource, NewPartitions, NewTopic

from compat_util import (
    CLIENT_TIMEOUT_S,
    admin,
    consume_all,
    consumer,
    create_topic,
    high_watermarks,
    wait_for_partitions,
    wait_until,
)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
N = 2000
PARTITIONS = 3


def idempotent_producer(bootstrap: str, **overrides) -> Producer:
    conf = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 30000,
        "socket.timeout.ms": 10000,
    }
    conf.update(overrides)
    return Producer(conf)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("codec", CODECS)
def test_idempotent_produce_then_assign_consume(broker, unique, codec):
    topic = unique(f"ck-{codec}")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)

    p = idempotent_producer(broker.bootstrap, **{"compression.type": codec})
    acked, failed = [], []

    def on_delivery(err, msg):
        if err is not None:
            failed.append((err, msg.key()))
        else:
            acked.append((msg.partition(), msg.offset(), msg.key(), msg.value()))

    produced = []  # (key, value) in produce order
    for i in range(N):
        key = f"key-{i % 97}".encode()
        value = f"{codec}-{i:06d}-".encode() + bytes([i % 251]) * (i % 300)
        headers = [("seq", str(i).encode()), ("codec", codec.encode())]
        while True:
            try:
                p.produce(topic, key=key, value=value, headers=headers, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.1)
        produced.append((key, value))
        p.poll(0)
    assert p.flush(60) == 0, "flush timed out"

    assert not failed, f"{len(failed)} deliveries failed, first: {failed[:3]}"
    assert len(acked) == N

    # every key goes to one partition only (librdkafka's default partitioner is consistent)
    key_parts = {}
    for part, _off, key, _v in acked:
        key_parts.setdefault(key, set()).add(part)
    assert all(len(s) == 1 for s in key_parts.values()), key_parts

    # acknowledged offsets are dense per partition and follow produce order
    by_part: dict[int, list] = {}
    for part, off, key, value in acked:
        by_part.setdefault(part, []).append((off, key, value))
    produce_rank = {v: i for i, (_k, v) in enumerate(produced)}
    for part, recs in by_part.items():
        offsets = sorted(o for o, _k, _v in recs)
        assert offsets == list(range(len(recs))), f"partition {part}: offsets not dense"
        in_offset_order = [v for _o, _k, v in sorted(recs)]
        assert in_offset_order == sorted(in_offset_order, key=produce_rank.__getitem__), (
            f"partition {part}: offset order differs from produce order"
        )

    counts = {part: len(by_part.get(part, [])) for part in range(PARTITIONS)}
    consumed = consume_all(broker.bootstrap, topic, PARTITIONS, expected=counts)
    expected_at = {(part, off): (key, value) for part, off, key, value in acked}
    seen = set()
    for part, msgs in consumed.items():
        assert len(msgs) == counts[part], f"partition {part}: {len(msgs)} != {counts[part]}"
        assert [m.offset() for m in msgs] == list(range(counts[part])), (
            f"partition {part}: consumed offsets not 0..{counts[part] - 1} in order"
        )
        for m in msgs:
            assert (part, m.offset()) not in seen
            seen.add((part, m.offset()))
            assert (m.key(), m.value()) == expected_at[(part, m.offset())]
            hdrs = m.headers() or []
            assert [k for k, _v in hdrs] == ["seq", "codec"], hdrs
            i = int(dict(hdrs)["seq"])
            assert dict(hdrs)["codec"] == codec.encode()
            assert produced[i] == (m.key(), m.value())
            assert m.timestamp()[0] == 1  # TIMESTAMP_CREATE_TIME
    assert len(seen) == N

    # ListOffsets (earliest, latest) agrees with what was written
    wm = high_watermarks(broker.bootstrap, topic, PARTITIONS)
    assert wm == {part: (0, counts[part]) for part in range(PARTITIONS)}, wm


@pytest.mark.timeout(90)
def test_admin_topic_lifecycle(broker, unique):
    a = admin(broker.bootstrap)
    topic = unique("ck-admin")

    # validate_only must not create the topic
    futs = a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)],
                           validate_only=True, request_timeout=CLIENT_TIMEOUT_S)
    futs[topic].result(timeout=CLIENT_TIMEOUT_S)
    time.sleep(0.5)
    assert topic not in a.list_topics(timeout=10).topics, "validate_only created the topic"

    futs = a.create_topics(
        [NewTopic(topic, num_partitions=3, replication_factor=1,
                  config={"retention.ms": "3600000", "cleanup.policy": "delete"})],
        request_timeout=CLIENT_TIMEOUT_S, operation_timeout=CLIENT_TIMEOUT_S,
    )
    futs[topic].result(timeout=CLIENT_TIMEOUT_S)
    wait_for_partitions(broker.bootstrap, topic, 3)

    md = a.list_topics(timeout=10)
    assert topic in md.topics
    assert sorted(md.topics[topic].partitions) == [0, 1, 2]
    broker_ids = set(md.brokers)
    for pmd in md.topics[topic].partitions.values():
        assert pmd.leader in broker_ids, (pmd.leader, broker_ids)

    # creating it again is TOPIC_ALREADY_EXISTS
    futs = a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)],
                           request_timeout=CLIENT_TIMEOUT_S)
    with pytest.raises(KafkaException) as exc:
        futs[topic].result(timeout=CLIENT_TIMEOUT_S)
    assert exc.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, exc.value

    # the config we set is described, as a dynamic topic config
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = a.describe_configs([res], request_timeout=CLIENT_TIMEOUT_S)[res].result(
        timeout=CLIENT_TIMEOUT_S)
    assert "retention.ms" in configs, sorted(configs)
    entry = configs["retention.ms"]
    assert entry.value == "3600000", entry
    assert entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, (entry, entry.source)
    assert configs["cleanup.policy"].value == "delete"

    # grow 3 -> 5 partitions; metadata shows 5 and the new partitions take writes
    futs = a.create_partitions([NewPartitions(topic, 5)], request_timeout=CLIENT_TIMEOUT_S)
    futs[topic].result(timeout=CLIENT_TIMEOUT_S)
    wait_for_partitions(broker.bootstrap, topic, 5)
    p = idempotent_producer(broker.bootstrap)
    errors = []
    for part in range(5):
        p.produce(topic, value=f"to-{part}".encode(), partition=part,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(30) == 0
    assert not errors, errors
    consumed = consume_all(broker.bootstrap, topic, 5, expected={i: 1 for i in range(5)})
    assert {part: [m.value() for m in msgs] for part, msgs in consumed.items()} == {
        part: [f"to-{part}".encode()] for part in range(5)
    }

    # delete: the topic disappears from metadata
    futs = a.delete_topics([topic], request_timeout=CLIENT_TIMEOUT_S,
                           operation_timeout=CLIENT_TIMEOUT_S)
    futs[topic].result(timeout=CLIENT_TIMEOUT_S)
    wait_until(lambda: topic not in a.list_topics(timeout=10).topics, timeout=20,
               what=f"{topic} to disappear from metadata")


@pytest.mark.timeout(60)
def test_create_partitions_cannot_shrink_and_unknown_topic_errors(broker, unique):
    a = admin(broker.bootstrap)
    topic = unique("ck-shrink")
    create_topic(broker.bootstrap, topic, partitions=3)
    futs = a.create_partitions([NewPartitions(topic, 2)], request_timeout=CLIENT_TIMEOUT_S)
    with pytest.raises(KafkaException) as exc:
        futs[topic].result(timeout=CLIENT_TIMEOUT_S)
    assert exc.value.args[0].code() == KafkaError.INVALID_PARTITIONS, exc.value

    missing = unique("ck-missing")
    futs = a.delete_topics([missing], request_timeout=CLIENT_TIMEOUT_S)
    with pytest.raises(KafkaException) as exc:
        futs[missing].result(timeout=CLIENT_TIMEOUT_S)
    assert exc.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, exc.value


@pytest.mark.timeout(60)
def test_watermarks_and_offsets_for_times(broker, unique):
    topic = unique("ck-times")
    create_topic(broker.bootstrap, topic, partitions=1)
    base = int(time.time() * 1000) - 3_600_000  # an hour ago, 1 s apart
    n = 100
    p = idempotent_producer(broker.bootstrap, **{"linger.ms": 50})
    errors = []
    for i in range(n):
        p.produce(topic, value=f"v{i}".encode(), partition=0, timestamp=base + i * 1000,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(30) == 0
    assert not errors, errors

    c = consumer(broker.bootstrap)
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
        assert (lo, hi) == (0, n)

        def lookup(ts):
            [tp] = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
            assert tp.error is None, tp.error
            return tp.offset

        assert lookup(base - 10_000) == 0  # before the first record: the first record
        assert lookup(base) == 0
        assert lookup(base + 1) == 1  # first record with timestamp >= ts
        assert lookup(base + 50_000) == 50
        assert lookup(base + 49_999) == 50
        assert lookup(base + (n - 1) * 1000) == n - 1
        assert lookup(base + n * 1000) == -1  # after the last record: no offset (OFFSET_END)
    finally:
        c.close()

    # the consumed records carry the producer's timestamps
    msgs = consume_all(broker.bootstrap, topic, 1, expected={0: n})[0]
    assert [m.timestamp() for m in msgs] == [(1, base + i * 1000) for i in range(n)]


@pytest.mark.timeout(60)
def test_fetch_out_of_range_offset_is_reported(broker, unique):
    """Reading past the high watermark must be OFFSET_OUT_OF_RANGE, which with
    auto.offset.reset=error surfaces as a consumer error (not silence, not data)."""
    topic = unique("ck-oor")
    create_topic(broker.bootstrap, topic, partitions=1)
    p = idempotent_producer(broker.bootstrap)
    for i in range(10):
        p.produce(topic, value=b"x", partition=0)
    assert p.flush(30) == 0
    c = consumer(broker.bootstrap, **{"auto.offset.reset": "error"})
    try:
        c.assign([TopicPartition(topic, 0, 1000)])
        deadline = time.monotonic() + 20
        err = None
        while time.monotonic() < deadline and err is None:
            m = c.poll(0.5)
            if m is None:
                continue
            assert m.error() is not None, f"got data at offset {m.offset()} past the end"
            if m.error().code() != KafkaError._PARTITION_EOF:
                err = m.error()
        assert err is not None, "no error reported for an out-of-range fetch"
        assert err.code() == KafkaError._AUTO_OFFSET_RESET, err
    finally:
        c.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("acks", ["0", "1"])
def test_acks_0_and_1(broker, unique, acks):
    """acks=1 is acknowledged with real offsets; acks=0 gets no response at all, yet on a healthy
    broker every record arrives (and the connection survives the response-less requests)."""
    topic = unique(f"ck-acks{acks}")
    create_topic(broker.bootstrap, topic, partitions=1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": acks, "linger.ms": 5,
                  "message.timeout.ms": 20000})
    got = []
    n = 1000
    for i in range(n):
        p.produce(topic, value=f"acks{acks}-{i}".encode(), partition=0,
                  on_delivery=lambda err, msg: got.append((err, msg.offset())))
        p.poll(0)
    assert p.flush(30) == 0
    assert all(err is None for err, _ in got), [e for e, _ in got if e][:3]
    if acks == "1":
        assert [off for _, off in got] == list(range(n))
    msgs = consume_all(broker.bootstrap, topic, 1, expected={0: n})[0]
    assert [m.value() for m in msgs] == [f"acks{acks}-{i}".encode() for i in range(n)]


@pytest.mark.timeout(60)
def test_large_messages(broker, unique):
    """Values up to ~900 KiB (below the 1 MB client default) round-trip, each in its own fetch."""
    topic = unique("ck-large")
    create_topic(broker.bootstrap, topic, partitions=1)
    p = idempotent_producer(broker.bootstrap, **{"compression.type": "none"})
    sizes = [1, 100_000, 512 * 1024, 900 * 1024, 700_001, 3]
    values = [bytes([(i * 7 + j) % 256 for j in range(min(sz, 256))]) * (sz // 256 + 1) for i, sz in
              enumerate(sizes)]
    values = [v[:sz] for v, sz in zip(values, sizes)]
    errors = []
    for v in values:
        p.produce(topic, value=v, partition=0,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(30) == 0
    assert not errors, errors
    msgs = consume_all(broker.bootstrap, topic, 1, expected={0: len(values)})[0]
    assert [len(m.value()) for m in msgs] == sizes
    assert [m.value() for m in msgs] == values


@pytest.mark.timeout(60)
def test_tailing_consumer_sees_new_records_quickly(broker, unique):
    """A consumer waiting at the high watermark (Fetch long poll) gets a new record promptly."""
    topic = unique("ck-tail")
    create_topic(broker.bootstrap, topic, partitions=1)
    c = consumer(broker.bootstrap, **{"fetch.wait.max.ms": 500, "enable.partition.eof": True})
    p = idempotent_producer(broker.bootstrap, **{"linger.ms": 0})
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_END)])
        # let the consumer reach the end (partition EOF) and park in a long poll
        deadline = time.monotonic() + 10
        eof = False
        while time.monotonic() < deadline and not eof:
            m = c.poll(0.2)
            eof = m is not None and m.error() is not None and \
                m.error().code() == KafkaError._PARTITION_EOF
        assert eof, "consumer never reached the end of the empty partition"
        latencies = []
        for i in range(5):
            t0 = time.monotonic()
            p.produce(topic, value=f"tail-{i}".encode(), partition=0)
            p.flush(10)
            m = None
            while time.monotonic() - t0 < 10:
                m = c.poll(0.1)
                if m is not None and (not m.error() or m.error().code() != KafkaError._PARTITION_EOF):
                    break
            assert m is not None and not m.error(), f"record {i} not delivered within 10 s"
            assert (m.offset(), m.value()) == (i, f"tail-{i}".encode())
            latencies.append(time.monotonic() - t0)
        assert max(latencies) < 3.0, f"produce-to-consume latencies {latencies}"
    finally:
        c.close()
