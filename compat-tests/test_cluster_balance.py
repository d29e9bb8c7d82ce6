"""Thundering herd: twenty agents start at the same moment against one existing 40-partition topic. Every
partition ends with exactly one leader (the Metadata of every agent agrees, and no two agents hold the
same partition in memory according to their logs), each partition's leader epochs are never reused,
and the leases end within one partition of the fair share (two each)."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict

import pytest

from cluster_util import cluster  # noqa: F401

AGENTS = 20
PARTITIONS = 40
FAIR = PARTITIONS // AGENTS

LEADING = re.compile(r"leading partition topic=\"?([\w.-]+)\"? partition=(\d+) epoch=(\d+)")
GIVEN_UP = re.compile(r"(handing off partition|lost the lease of a partition; dropping it|fenced: another "
                      r"agent leads this partition now) topic=\"?([\w.-]+)\"? partition=(\d+)")


def held_per_logs(agent, topic):
    """Partitions the agent's log says it leads now (taken and not yet handed off or lost), with the
    epochs of its acquisitions, in its current run."""
    held, epochs = set(), []
    for line in agent.log_lines(since_start=agent.starts):
        m = LEADING.search(line)
        if m and m.group(1) == topic:
            held.add(int(m.group(2)))
            epochs.append((int(m.group(2)), int(m.group(3))))
            continue
        m = GIVEN_UP.search(line)
        if m and m.group(2) == topic:
            held.discard(int(m.group(3)))
    return held, epochs


@pytest.mark.timeout(120)
def test_twenty_agents_start_at_once(cluster, unique):
    topic = unique("herd")
    # the topic exists before the herd: one agent creates it and leaves, releasing its leases
    first = cluster.add_agent(lease_ttl_ms=3000)
    first.start()
    cluster.create_topic(topic, PARTITIONS)
    assert first.stop() == 0
    agents = [first] + cluster.add_agents(AGENTS - 1, lease_ttl_ms=3000)
    t0 = time.monotonic()
    cluster.start_all()  # spawns all twenty, then waits for their ports
    print(f"\n{AGENTS} agents accepting connections {time.monotonic() - t0:.1f}s after the spawn")

    deadline = time.monotonic() + 25
    last = None
    while time.monotonic() < deadline:
        leaders = cluster.wait_all_led(topic, PARTITIONS, via=agents[::4], timeout=25)
        load = Counter(leaders.values())
        counts = [load.get(a.id, 0) for a in agents]
        last = (leaders, counts)
        if min(counts) >= FAIR - 1 and max(counts) <= FAIR + 1:
            break
        time.sleep(0.3)
    took = time.monotonic() - t0
    leaders, counts = last
    print(f"balanced after {took:.1f}s: partitions per agent {dict(zip([a.id for a in agents], counts))}")
    assert min(counts) >= FAIR - 1 and max(counts) <= FAIR + 1, \
        f"not within one of the fair share {FAIR} after {took:.1f}s: {counts}\n{leaders}"

    # Every agent's Metadata agrees (not only the sampled ones), with one epoch per partition.
    time.sleep(1.5)  # a round, so that handoffs decided in the last round are visible in the logs
    final = cluster.wait_all_led(topic, PARTITIONS, timeout=15, settle=1.0)
    views = [a.metadata([topic]).topics[topic] for a in agents]
    for p in range(PARTITIONS):
        seen = {(v.partitions[p].leader, v.partitions[p].epoch) for v in views}
        assert len(seen) == 1, f"partition {p}: agents disagree on (leader, epoch): {seen}"
    exact = Counter(final.values())
    print(f"final partitions per agent: {sorted(exact.values())} "
          f"({'exactly' if set(exact.values()) == {FAIR} else 'not exactly'} {FAIR} each)")
    assert min(exact.get(a.id, 0) for a in agents) >= FAIR - 1 and max(exact.values()) <= FAIR + 1

    # In memory, per the logs: each partition held by exactly one agent, the one Metadata shows; and no
    # epoch of a partition handed out twice.
    holders = defaultdict(list)
    acquisitions = defaultdict(list)
    for a in agents:
        held, epochs = held_per_logs(a, topic)
        for p in held:
            holders[p].append(a.id)
        for p, e in epochs:
            acquisitions[p].append((e, a.id))
    for p in range(PARTITIONS):
        assert holders[p] == [final[p]], \
            f"partition {p}: agents whose logs say they lead it: {holders[p]}, Metadata says {final[p]}"
        es = [e for e, _ in acquisitions[p]]
        assert len(es) == len(set(es)), f"partition {p}: an epoch was acquired twice: {acquisitions[p]}"
    moves = sum(len(v) for v in acquisitions.values())
    print(f"lease acquisitions during the herd: {moves} for {PARTITIONS} partitions")
