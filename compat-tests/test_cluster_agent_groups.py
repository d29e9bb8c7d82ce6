"""Agent groups: agents A and B are in group "blue", C in "default". A topic with
streamhouse.agent.group=blue is led only by A or B, lists only them as replicas, and when both are gone
its partitions are LEADER_NOT_AVAILABLE (C never takes them, however long they stay orphaned), while a
topic of the default group keeps working on C."""

from __future__ import annotations

import time

import pytest

from cluster_util import LEADER_NOT_AVAILABLE, check_exactly_acked, cluster, read_back  # noqa: F401

PARTITIONS = 4
ORPHAN_WATCH_S = 8.0  # > the broker's "orphaned for three rounds, anyone takes it" (3 x ttl/3 = 3 s)


def produce(bootstrap, topic, n, prefix, partitions):
    from confluent_kafka import Producer

    acked, errors = {}, []

    def cb(err, msg):
        if err is None:
            acked[msg.value().decode()] = (msg.partition(), msg.offset())
        else:
            errors.append(str(err))

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 2, "message.timeout.ms": 20000})
    for i in range(n):
        p.produce(topic, value=f"{prefix}-{i}".encode(), partition=i % partitions, on_delivery=cb)
    left = p.flush(30)
    return acked, errors, left


@pytest.mark.timeout(120)
def test_pinned_topic_is_led_only_by_its_agent_group(cluster, unique):
    a = cluster.add_agent(group="blue")
    b = cluster.add_agent(group="blue")
    c = cluster.add_agent()  # group "default"
    cluster.start_all()
    blue, plain = unique("blue"), unique("plain")
    cluster.create_topic(blue, PARTITIONS, config={"streamhouse.agent.group": "blue"}, wait=False)
    cluster.create_topic(plain, PARTITIONS, wait=False)
    blue_leaders = cluster.wait_all_led(blue, PARTITIONS, allowed={a.id, b.id}, settle=2.0)
    plain_leaders = cluster.wait_all_led(plain, PARTITIONS, allowed={c.id}, settle=1.0)
    print(f"\nblue topic leaders {blue_leaders}, default topic leaders {plain_leaders}")
    for agent in (a, b, c):
        md = agent.metadata([blue, plain])
        assert set(md.brokers) == {a.id, b.id, c.id}, md.brokers
        for p, pm in md.topics[blue].partitions.items():
            assert pm.leader in (a.id, b.id) and set(pm.replicas) <= {a.id, b.id}, (agent.id, p, pm)
        for p, pm in md.topics[plain].partitions.items():
            assert pm.leader == c.id and set(pm.replicas) == {c.id}, (agent.id, p, pm)
    assert set(blue_leaders.values()) == {a.id, b.id}, f"blue partitions not spread over A and B: " \
                                                       f"{blue_leaders}"

    acked_blue, errs, left = produce(cluster.bootstrap(), blue, 200, "blue", PARTITIONS)
    assert not errs and not left, (errs[:3], left)
    acked_plain, errs, left = produce(cluster.bootstrap(), plain, 200, "plain", PARTITIONS)
    assert not errs and not left, (errs[:3], left)

    # A and B leave (graceful: they release their leases at once). The default-group topic keeps
    # working on C.
    assert a.stop() == 0 and b.stop() == 0
    t0 = time.monotonic()
    more, errs, left = produce(c.bootstrap, plain, 200, "plain2", PARTITIONS)
    assert not errs and not left, (errs[:3], left)
    acked_plain.update(more)
    problems = check_exactly_acked(read_back(c.bootstrap, plain, PARTITIONS), acked_plain)
    assert not problems, "\n".join(problems)

    # ... but nobody leads the blue topic, however long its partitions stay orphaned.
    history = []
    while not history or time.monotonic() - t0 < ORPHAN_WATCH_S:
        pm = c.metadata([blue]).topics[blue].partitions
        history.append((round(time.monotonic() - t0, 1), {p: x.leader for p, x in pm.items()}))
        time.sleep(0.25)
    taken = [(t, m) for t, m in history if any(l != -1 for l in m.values())]
    assert not taken, (f"{taken[0][0]}s after the blue agents left, partitions of the blue topic are led "
                       f"by {taken[0][1]} (C is in group default)\n" + "\n".join(c.log_lines(blue)[-8:]))
    final = c.metadata([blue]).topics[blue].partitions
    assert all(x.error == LEADER_NOT_AVAILABLE and x.leader == -1 for x in final.values()), final
    print(f"blue topic with no blue agent, for {ORPHAN_WATCH_S}s: {history[-1][1]}")

    # A blue agent comes back: the blue topic is writable again, on it.
    a.start()
    leaders = cluster.wait_all_led(blue, PARTITIONS, allowed={a.id}, timeout=15)
    more, errs, left = produce(cluster.bootstrap([a, c]), blue, 100, "blue2", PARTITIONS)
    assert not errs and not left, (errs[:3], left)
    acked_blue.update(more)
    problems = check_exactly_acked(read_back(c.bootstrap, blue, PARTITIONS), acked_blue)
    assert not problems, "\n".join(problems)
    print(f"blue agent {a.id} back: leads {leaders}")
