"""Issue 14: connections stay answered through leadership churn. Three agents on PostgreSQL + S3, an
idempotent producer over 12 partitions, a consumer assigned every partition from offset 0 that stays
connected and fetching throughout, and every 6 s one agent SIGKILLed and restarted, SIGTERMed and
restarted, or SIGSTOPped for a few seconds (20 cycles). Every request the consumer sends must be answered
within its bound (librdkafka logs 'Timed out <Request> in flight' otherwise; its request timeout is set
to Java's 30 s here), it must read every acknowledged record exactly once at its offset within a minute of
the churn ending, and so must a consumer created after the churn (the report that opened the issue), whose
requests must all be answered in time too while it reads the history back from the object store."""

from __future__ import annotations

import time

import pytest

from churn import Churn
from cluster_util import check_exactly_acked, cluster  # noqa: F401

PARTITIONS = 12
CYCLES = 20
PERIOD_S = 6.0
CATCH_UP_S = 60.0
# a new consumer reads ~100k records of history as many small runs (one per flush and partition)
LATE_READ_S = 150.0


@pytest.mark.timeout(600)
def test_connections_stay_answered_through_churn(cluster, unique):
    cluster.add_agents(3, lease_ttl_ms=3000)
    cluster.start_all()
    topic = unique("churn")
    cluster.create_topic(topic, PARTITIONS)
    churn = Churn(cluster, topic, PARTITIONS, rate=1000, seed=int(time.time()), group_members=1)
    churn.start()
    time.sleep(3)
    actions = [churn.cycle(PERIOD_S) for _ in range(CYCLES)]
    report = churn.finish(CYCLES, actions, catch_up_s=CATCH_UP_S, late_read_s=LATE_READ_S)
    print("\n" + "\n".join(report.lines()))

    assert churn.load.fatal is None, f"the producer hit a fatal error: {churn.load.fatal}"
    assert report.acked > 0 and report.failed == 0, \
        f"{report.failed} deliveries failed, e.g. {churn.load.failed()[:5]}"
    assert not report.tail_timeouts, f"requests left unanswered on an open connection: {report.tail_timeouts[:5]}"
    assert report.tail_catch_up_s is not None, \
        f"the tailing consumer read {report.tail_read} of {report.acked} within {CATCH_UP_S}s of the churn"
    problems = check_exactly_acked(churn.tail.records, churn.load.acked())
    assert not problems, "\n".join(problems)
    assert not report.late_timeouts, f"a new consumer's requests went unanswered: {report.late_timeouts[:5]}"
    assert report.late_catch_up_s is not None, \
        f"a consumer created after the churn read {report.late_read} of {report.acked} in {LATE_READ_S}s"
    problems = check_exactly_acked(churn.late.records, churn.load.acked())
    assert not problems, "\n".join(problems)
