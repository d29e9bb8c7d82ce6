"""A zombie leader: the leader of a partition is frozen (SIGSTOP) in the middle of a flush, after its
lease check and with its segment PUT in flight (held by a TCP proxy in front of the S3 server), until its
lease expires and another agent leads the partition and takes more writes. Then it is resumed and its
PUT completes: its commit must be fenced by the leader epoch in the metadata store. None of its pending
records may ever become visible, its producer gets an error, and it gives the partition up."""

from __future__ import annotations

import os
import select
import time

import pytest

import kafka_wire
from cluster_util import (NOT_LEADER_OR_FOLLOWER, TcpProxy, check_exactly_acked,  # noqa: F401
                          cluster, read_back)
from compat_util import wait_until


def produce_acked(bootstrap: str, topic: str, idents: list[str]) -> dict[str, tuple[int, int]]:
    from confluent_kafka import Producer

    acked, errors = {}, []

    def cb(err, msg):
        if err is None:
            acked[msg.value().decode()] = (msg.partition(), msg.offset())
        else:
            errors.append(str(err))

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 2, "message.timeout.ms": 30000})
    for i in idents:
        p.produce(topic, value=i.encode(), partition=0, on_delivery=cb)
    left = p.flush(40)
    assert left == 0 and not errors, f"produce to {topic}: {left} undelivered, errors {errors[:3]}"
    return acked


@pytest.mark.timeout(120)
def test_sigstopped_leader_is_fenced_and_its_pending_writes_never_appear(cluster, unique):
    proxies = {}
    for _ in range(3):
        proxy = TcpProxy(os.environ["STREAMHOUSE_TEST_S3_ENDPOINT"])
        a = cluster.add_agent(lease_ttl_ms=3000, env={"AWS_ENDPOINT_URL": proxy.url})
        proxies[a.id] = proxy
    try:
        _run(cluster, unique, proxies)
    finally:
        for p in proxies.values():
            p.close()


def _run(cluster, unique, proxies):
    agents = list(cluster.agents.values())
    cluster.start_all()
    topic = unique("zombie")
    cluster.create_topic(topic, 1)
    cluster.wait_all_led(topic, 1, settle=2.5)
    acked = produce_acked(cluster.bootstrap(), topic, [f"a-{i}" for i in range(50)])

    md = agents[0].metadata([topic]).topics[topic].partitions[0]
    victim, epoch1 = cluster.agent(md.leader), md.epoch
    survivors = [a for a in agents if a is not victim]
    proxy = proxies[victim.id]

    # Pending writes on the victim: one acks=0 and one acks=1 produce; the flush gets past its lease
    # check and sends its PUT, which the proxy holds.
    proxy.hold()
    sock = kafka_wire.connect(victim.bootstrap, timeout=60)
    zombie_values = [b"zombie-acks0-1", b"zombie-acks0-2"]
    sock.sendall(kafka_wire.produce_request_v3(1, topic, 0, kafka_wire.record_batch(zombie_values[:2]),
                                               acks=0, timeout_ms=60000))
    zombie_values.append(b"zombie-acks1")
    sock.sendall(kafka_wire.produce_request_v3(2, topic, 0, kafka_wire.record_batch([b"zombie-acks1"]),
                                               acks=1, timeout_ms=60000))
    wait_until(lambda: proxy.held_puts() > 0, timeout=10,
               what=f"agent {victim.id} to send a segment PUT (held: {proxy.held})")
    readable, _, _ = select.select([sock], [], [], 0)
    assert not readable, "the victim answered its produce before its segment PUT completed"
    victim.pause()
    t_stop = time.monotonic()
    print(f"\nSIGSTOPped agent {victim.id} (leader of {topic}[0], epoch {epoch1}) with its PUT in flight")

    # Another agent takes the partition once the lease expires, with a higher epoch.
    def taken():
        m = survivors[0].metadata([topic]).topics[topic].partitions[0]
        return m if m.error == 0 and m.leader not in (-1, victim.id) else None

    new = wait_until(taken, timeout=20, interval=0.1, what="another agent to lead the partition")
    took = time.monotonic() - t_stop
    print(f"agent {new.leader} leads it with epoch {new.epoch} {took:.2f}s after the SIGSTOP")
    assert new.epoch > epoch1, f"new leader's epoch {new.epoch} not above {epoch1}"
    # the victim renewed at most one round (ttl/3) before it froze: its lease ran for >= ttl*2/3 more
    assert took > 1.5, f"the lease of a live (just frozen) agent was taken after {took:.2f}s"
    acked.update(produce_acked(cluster.bootstrap(survivors), topic, [f"b-{i}" for i in range(50)]))

    # Resume the zombie, let its PUT through: its commit carries the old epoch.
    victim.resume()
    time.sleep(0.3)
    proxy.release()
    sock.settimeout(30)
    corr, results = kafka_wire.parse_produce_response_v3(kafka_wire.recv_frame(sock))
    sock.close()
    print(f"the zombie answered its acks=1 produce with {results}")
    assert corr == 2 and len(results) == 1, (corr, results)
    _, _, err, base = results[0]
    assert err != 0, f"the zombie acknowledged a write at offset {base} after losing its lease"
    assert err == NOT_LEADER_OR_FOLLOWER, f"expected NOT_LEADER_OR_FOLLOWER (6), got {err}"

    # It gives the partition up: says so in its log, and everyone's Metadata agrees on a leader with
    # an epoch above the takeover's (it may lead again later, but only through a new epoch).
    wait_until(lambda: [ln for ln in victim.log_lines(since_start=1)
                        if "fenced: another agent leads this partition now" in ln
                        or "lost the lease of a partition" in ln],
               timeout=10, what=f"agent {victim.id} to log that it lost the partition")
    fenced = victim.log_lines("fenced: another agent leads this partition now")
    print(f"zombie log: {fenced or victim.log_lines('lost the lease')}")
    assert fenced, ("the zombie's flush did not reach a fenced commit (expected the log line 'fenced: "
                    "another agent leads this partition now')\n" + victim.log_tail())
    leaders = cluster.wait_all_led(topic, 1, settle=2.5, timeout=20)
    views = [a.metadata([topic]).topics[topic].partitions[0] for a in agents]
    assert len({(v.leader, v.epoch) for v in views}) == 1, views
    if views[0].leader == victim.id:
        assert views[0].epoch > new.epoch, f"the zombie leads with a stale epoch: {views}"
    print(f"after the resume: leader {leaders[0]}, epoch {views[0].epoch}")

    # Nothing of the zombie's is visible; the acknowledged records are, densely; writes go on.
    records = read_back(cluster.bootstrap(), topic, 1)
    problems = check_exactly_acked(records, acked)
    assert not problems, "\n".join(problems)
    acked.update(produce_acked(cluster.bootstrap(), topic, [f"c-{i}" for i in range(50)]))
    records = read_back(cluster.bootstrap(), topic, 1)
    problems = check_exactly_acked(records, acked)
    assert not problems, "\n".join(problems)
    assert len(records[0]) == 150
    assert not [v for _, v in records[0] if v in zombie_values]
