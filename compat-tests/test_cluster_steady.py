"""Steady state on PostgreSQL + S3: one agent leading 32 partitions takes a steady 3,000 msgs/s from an
idempotent acks=all producer for 20 s, with nothing failing around it. Every lease round must succeed
(its renewal updates all the agent's partition rows while flush commits update the same rows: in
inconsistent lock order they deadlock, PostgreSQL aborts one after deadlock_timeout, and the agent
refuses writes for a while), no flush commit may fail and no write may be refused for want of a renewed
lease. The longest per-partition gap between acknowledgements is printed, not asserted: with an
idempotent librdkafka producer (at most 5 requests in flight per connection, one request per partition)
and the 20 ms S3 flush interval it reaches about a second at 32 partitions even on a healthy agent."""

from __future__ import annotations

import time

import pytest

from cluster_util import ProducerLoad, check_exactly_acked, cluster, read_back  # noqa: F401

PARTITIONS = 32


@pytest.mark.timeout(120)
def test_no_lease_round_fails_under_steady_load(cluster, unique):
    agent = cluster.add_agent(lease_ttl_ms=3000)
    cluster.start_all()
    topic = unique("steady")
    cluster.create_topic(topic, PARTITIONS)
    load = ProducerLoad(agent.bootstrap, topic, PARTITIONS, rate=3000).start()
    time.sleep(20)
    load.stop()
    gaps = {p: round(load.max_gap(p), 2) for p in range(PARTITIONS)}
    failed_rounds = agent.log_lines("lease round failed")
    refusals = agent.log_lines("leases not renewed in time")
    commit_failures = agent.log_lines("flush commit failed")
    print(f"\nacked {len(load.acked())} of {load.sent}; longest gap per partition {max(gaps.values())}s; "
          f"failed lease rounds {len(failed_rounds)}, write refusals {len(refusals)}, failed flush "
          f"commits {len(commit_failures)}")
    for line in (failed_rounds + commit_failures)[:4]:
        print("  " + line[:300])
    assert not load.failed() and load.fatal is None, load.failed()[:3]
    problems = check_exactly_acked(read_back(agent.bootstrap, topic, PARTITIONS), load.acked())
    assert not problems, "\n".join(problems)
    assert not failed_rounds and not commit_failures and not refusals, (
        f"{len(failed_rounds)} lease rounds and {len(commit_failures)} flush commits failed, and writes were "
        f"refused {len(refusals)} times, against a healthy PostgreSQL (FINDINGS.md, cluster: renewal/flush "
        f"deadlock):\n" + "\n".join(ln[:400] for ln in (failed_rounds + commit_failures + refusals)[:4]))
