"""Zone-local reads (KIP-392): agent 1 runs in zone z1, agent 2 in zone z2. A confluent-kafka consumer with
client.rack=z2 reading partitions led by the z1 agent is told by the leader to fetch from the z2 agent
(preferred_read_replica), and does: librdkafka's statistics show the partitions fetched from broker 2
while their leader is broker 1, broker 2 answered Fetch requests, and the debug log names the preferred
replica. Every message is read correctly from the z2 agent (which serves it from S3). A consumer with
client.rack=z1 stays on the leader."""

from __future__ import annotations

import json
import logging
import time

import pytest

from cluster_util import cluster  # noqa: F401
from compat_util import consumer

N = 600


class Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):  # Handler.handle() holds the handler's lock already
        self.lines.append(record.getMessage())


def consume_with_rack(bootstrap, topic, partitions, expected, rack):
    """Reads `partitions` from offset 0 with client.rack=rack; returns (values per partition, last stats,
    librdkafka debug lines)."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    stats = []
    cap = Capture()
    log = logging.getLogger(f"rdkafka-{rack}-{time.monotonic_ns()}")
    log.setLevel(logging.DEBUG)
    log.addHandler(cap)
    log.propagate = False
    c = consumer(bootstrap, **{"client.rack": rack, "statistics.interval.ms": 200,
                               "stats_cb": stats.append, "debug": "fetch", "logger": log,
                               "fetch.wait.max.ms": 200})
    got = {p: [] for p in partitions}
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        deadline = time.monotonic() + 45
        while sum(len(v) for v in got.values()) < expected:
            assert time.monotonic() < deadline, f"consumed {sum(map(len, got.values()))} of {expected}"
            for m in c.consume(num_messages=500, timeout=0.3):
                assert not m.error(), m.error()
                got[m.partition()].append((m.offset(), m.value()))
        # let a statistics interval pass while still fetching from the same place
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            for m in c.consume(num_messages=500, timeout=0.2):
                assert not m.error(), m.error()
                got[m.partition()].append((m.offset(), m.value()))
    finally:
        c.close()
    return got, json.loads(stats[-1]) if stats else None, cap.lines


@pytest.mark.timeout(120)
def test_consumer_in_z2_fetches_from_the_z2_agent(cluster, unique):
    from confluent_kafka import Producer

    z1 = cluster.add_agent(zone="z1")
    z2 = cluster.add_agent(zone="z2")
    cluster.start_all()
    topic = unique("zones")
    cluster.create_topic(topic, 4)
    leaders = cluster.wait_all_led(topic, 4, settle=2.0)
    md = z1.metadata([topic])
    assert md.brokers[z1.id][2] == "z1" and md.brokers[z2.id][2] == "z2", \
        f"Metadata must report each agent's zone as its rack: {md.brokers}"
    mine = sorted(p for p, l in leaders.items() if l == z1.id)
    assert mine, f"the z1 agent leads none of 4 partitions: {leaders}"
    print(f"\nleaders {leaders}; reading partitions {mine} (led by the z1 agent {z1.id})")

    sent = {p: [] for p in mine}
    p = Producer({"bootstrap.servers": cluster.bootstrap(), "acks": "all", "linger.ms": 5})
    for i in range(N):
        part = mine[i % len(mine)]
        v = f"zone-{i}".encode()
        p.produce(topic, value=v, partition=part)
        sent[part].append(v)
    assert p.flush(30) == 0

    got, stats, debug = consume_with_rack(cluster.bootstrap(), topic, mine, N, "z2")
    for part in mine:
        assert [o for o, _ in got[part]] == list(range(len(sent[part]))), f"partition {part} offsets"
        assert [v for _, v in got[part]] == sent[part], f"partition {part} values"
    assert stats is not None, "no librdkafka statistics"
    tp = stats["topics"][topic]["partitions"]
    placement = {int(k): (v["leader"], v["broker"]) for k, v in tp.items() if int(k) in mine}
    brokers = {b["nodeid"]: b for b in stats["brokers"].values() if b.get("nodeid", -1) >= 0}
    fetches = {nid: b.get("req", {}).get("Fetch", 0) for nid, b in brokers.items()}
    preferred = [ln for ln in debug if "preferred" in ln.lower()]
    print(f"client.rack=z2: partition -> (leader, fetching from) {placement}; Fetch requests per broker "
          f"{fetches}")
    print("librdkafka: " + " | ".join(preferred[:3]))
    assert all(leader == z1.id and broker == z2.id for leader, broker in placement.values()), \
        f"with client.rack=z2 the partitions led by {z1.id} should be fetched from {z2.id}: {placement}"
    assert fetches.get(z2.id, 0) > 0, f"the z2 agent answered no Fetch: {fetches}"
    assert preferred, "librdkafka's fetch debug log never mentions a preferred replica"

    # control: in z1 the consumer stays on the leader
    got, stats, _ = consume_with_rack(cluster.bootstrap(), topic, mine, N, "z1")
    assert sum(len(v) for v in got.values()) == N
    tp = stats["topics"][topic]["partitions"]
    placement = {int(k): (v["leader"], v["broker"]) for k, v in tp.items() if int(k) in mine}
    print(f"client.rack=z1: {placement}")
    assert all(broker == z1.id for _, broker in placement.values()), placement
