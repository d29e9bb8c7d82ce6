"""Consumer groups when a member dies without leaving (SIGKILL of the consumer process), the situation of a
client that crashes and restarts as a new member (kafkajs does exactly this when its coordinator goes
away: test_cluster_clients.py). A new member joins right after the crash; the group must finish its
rebalance once the dead member's session times out (session.timeout.ms, here 6 s), as Kafka's
coordinator does: it keeps expiring sessions during PreparingRebalance, and on loading a group it starts
every member's session clock. It must not wait for the dead member's rebalance timeout
(max.poll.interval.ms: 5 minutes by default in librdkafka and Java, 60 s in kafkajs).

Two variants: the coordinator survives; or the coordinator agent is SIGKILLed too, so another agent
restores the group (dead member included) from the metadata store."""

from __future__ import annotations

import queue
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

from cluster_util import cluster, find_coordinator  # noqa: F401

SESSION_MS = 6000
REBALANCE_MS = 120000  # the dead member's max.poll.interval.ms = its rebalance timeout
LEASE_TTL_S = 3
# its session, plus client backoffs; plus, when the coordinator dies too, its lease running out (the new
# coordinator starts the restored members' session clocks when it loads the group)
LIMITS_S = {"survives": SESSION_MS / 1000 + 8, "killed": LEASE_TTL_S + SESSION_MS / 1000 + 8}

MEMBER = textwrap.dedent("""
    import sys
    from confluent_kafka import Consumer
    bootstrap, group, topic, session, rebalance = sys.argv[1:]
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "session.timeout.ms": int(session), "max.poll.interval.ms": int(rebalance),
                  "heartbeat.interval.ms": 500, "debug": "cgrp"})
    c.subscribe([topic], on_assign=lambda c, ps: print("ASSIGNED", [p.partition for p in ps], flush=True))
    while True:
        c.poll(0.2)
""")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("coordinator", ["survives", "killed"])
def test_group_recovers_from_a_dead_member_within_its_session_timeout(cluster, unique, coordinator):
    from confluent_kafka import Consumer

    limit = LIMITS_S[coordinator]
    agents = cluster.add_agents(3, lease_ttl_ms=LEASE_TTL_S * 1000)
    cluster.start_all()
    topic = unique("grp")
    cluster.create_topic(topic, 4)
    group = f"dead-member-{uuid.uuid4().hex[:8]}"
    bootstrap = cluster.bootstrap()

    x_log = cluster.workdir / "first-member.log"
    x = subprocess.Popen([sys.executable, "-c", MEMBER, bootstrap, group, topic, str(SESSION_MS),
                          str(REBALANCE_MS)], stdout=subprocess.PIPE, stderr=open(x_log, "w"), text=True)
    try:
        lines: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=lambda: lines.put(x.stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=30)
        except queue.Empty:
            line = "(nothing within 30 s)"
        assert line.startswith("ASSIGNED"), (f"the first member was never assigned: {line!r}\n"
                                             f"its log: {x_log.read_text()[-3000:]}")
        err, coord = find_coordinator(agents[0].bootstrap, group)
        assert err == 0 and coord in cluster.agents, (err, coord)
        time.sleep(1.0)  # a few heartbeats: the member is settled in a Stable group
    finally:
        x.kill()
        x.wait()
    t_dead = time.monotonic()
    if coordinator == "killed":
        cluster.agent(coord).kill()
        bootstrap = cluster.bootstrap(cluster.live())

    assigned = []
    y = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "session.timeout.ms": SESSION_MS, "max.poll.interval.ms": 30000,
                  "heartbeat.interval.ms": 500, "debug": "cgrp"})
    y.subscribe([topic], on_assign=lambda c, ps: assigned.append(
        (time.monotonic(), sorted(p.partition for p in ps))))
    try:
        deadline = t_dead + limit + 2
        while not assigned and time.monotonic() < deadline:
            y.poll(0.2)
    finally:
        y.close()
    took = (assigned[0][0] - t_dead) if assigned else None
    print(f"\ncoordinator {coord} {coordinator}; new member assigned "
          f"{assigned[0][1] if assigned else 'never'} after "
          f"{f'{took:.1f}s' if took is not None else f'> {limit + 2:.0f}s'}")
    assert assigned, (f"the new member got no assignment within {limit + 2:.0f}s of the old one's "
                      f"death (its session timeout is {SESSION_MS / 1000:.0f}s; its rebalance timeout "
                      f"{REBALANCE_MS / 1000:.0f}s)")
    assert took <= limit, f"rebalance took {took:.1f}s (limit {limit:.0f}s)"
    assert assigned[-1][1] == [0, 1, 2, 3], assigned
