"""Multi-agent failover: three agents on PostgreSQL + S3; the leader of some partitions is SIGKILLed
while an idempotent acks=all producer writes to all 12 partitions. Every acknowledged record survives at
its acknowledged offset, offsets stay dense, nothing is written twice, and the partitions are writable
again within seconds."""

from __future__ import annotations

import time

import pytest

from cluster_util import ProducerLoad, check_exactly_acked, cluster, read_back  # noqa: F401

PARTITIONS = 12
STALL_LIMIT_S = 10.0      # assertion: longest producer stall
TARGET_WRITABLE_S = 5.0   # the design target, printed (lease ttl 3 s + one round + client refresh)


@pytest.mark.timeout(150)
def test_sigkill_leader_under_idempotent_load(cluster, unique):
    agents = cluster.add_agents(3, lease_ttl_ms=3000)
    cluster.start_all()
    topic = unique("failover")
    cluster.create_topic(topic, PARTITIONS)
    # let the balancer spread the partitions (a fresh topic is first taken by whoever creates it)
    leaders = cluster.wait_all_led(topic, PARTITIONS, settle=2.5, timeout=30)
    by_agent = {a.id: sorted(p for p, l in leaders.items() if l == a.id) for a in agents}
    print(f"\nleaders before the kill: {by_agent}")
    assert all(len(ps) >= 1 for ps in by_agent.values()), \
        f"three live agents but not every one leads a partition of 12: {by_agent}"

    load = ProducerLoad(cluster.bootstrap(), topic, PARTITIONS, rate=600).start()
    time.sleep(3)
    victim = cluster.agent(cluster.leader_of(topic, 0))
    victim_parts = sorted(p for p, l in cluster.leaders(topic).items() if l == victim.id)
    acked_before = len(load.acked())
    assert acked_before > 500, f"only {acked_before} acks in 3 s before the kill: {load.failed()[:3]}"
    t_kill = time.monotonic()
    victim.kill()
    print(f"SIGKILLed agent {victim.id} (led partitions {victim_parts}) after {acked_before} acks")

    survivors = [a for a in agents if a is not victim]
    after = cluster.wait_all_led(topic, PARTITIONS, via=survivors,
                                 allowed={a.id for a in survivors}, timeout=20)
    t_led = time.monotonic() - t_kill
    time.sleep(6)  # keep producing through the takeover and afterwards
    load.stop()

    gap_all = load.max_gap()
    gap_part = {p: load.max_gap(p) for p in range(PARTITIONS)}
    recovery = {p: load.recovery_after(t_kill, p) for p in victim_parts}
    worst = max(gap_part.values())
    print(f"metadata shows new leaders {after} {t_led:.2f}s after the kill")
    print(f"producer: sent {load.sent}, acked {len(load.acked())}, failed {len(load.failed())}")
    print(f"longest gap between delivery reports: all partitions {gap_all:.2f}s, "
          f"per partition max {worst:.2f}s ({ {p: round(g, 2) for p, g in gap_part.items()} })")
    print("writable again after the kill (first message sent after the kill acknowledged): "
          + ", ".join(f"p{p}={r:.2f}s" if r is not None else f"p{p}=never" for p, r in recovery.items())
          + f" (target {TARGET_WRITABLE_S}s)")
    print(f"client errors (informational): {load.client_errors[:5]}")

    assert load.fatal is None, f"the producer hit a fatal error: {load.fatal}"
    assert not load.failed(), f"{len(load.failed())} deliveries failed, e.g. {load.failed()[:5]}"
    assert not [e for e in load.client_errors if "fatal=True" in e], load.client_errors
    assert all(r is not None for r in recovery.values()), recovery
    assert worst < STALL_LIMIT_S, f"a partition stalled {worst:.2f}s (limit {STALL_LIMIT_S}s)"
    assert all(l != victim.id for l in after.values())

    records = read_back(cluster.bootstrap(survivors), topic, PARTITIONS)
    problems = check_exactly_acked(records, load.acked())
    assert not problems, "\n".join(problems)
    assert sum(len(r) for r in records.values()) == load.sent
