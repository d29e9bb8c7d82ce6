"""Consumer groups with subscribe() in confluent-kafka (librdkafka 2.16): partition assignment across
members, rebalances when members leave or come back, static membership, committed offsets, and a
broker SIGKILL while a group consumes.

The bookkeeping is done by `Ledger`: every delivered (partition, offset) and every successful
synchronous commit is recorded, so a test can assert that each produced record was consumed and
committed exactly once (or, across a crash, at least once with re-deliveries only above the last
successful commit).

Several tests pin down broker bugs this suite found (FINDINGS.md, "Consumer groups", G1..G6); they
name the finding in their docstring.

These run only when the broker advertises the group APIs in ApiVersions, so they switch on by
themselves once the broker implements groups (see README's FINDINGS)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

import kafka_wire as kw
from compat_util import admin, create_topic, high_watermarks, skip_unless_group_apis, wait_until


@pytest.fixture
def group_broker(broker):
    skip_unless_group_apis(broker.bootstrap)
    return broker


# Tuned so rebalances finish within a second or two: members notice a rebalance at their next
# heartbeat, and a member that vanished is dropped after session.timeout.ms.
FAST_GROUP = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1000,
    "max.poll.interval.ms": 20000,
    "fetch.wait.max.ms": 100,
    "socket.timeout.ms": 10000,
}


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


# ---- bookkeeping ---------------------------------------------------------------------------------
class Ledger:
    """What a group consumed and committed, shared by its members (thread-safe).

    `committed[p]` is the highest offset successfully committed for partition p (by any member).
    A delivery below it is a re-delivery of committed data; a successful commit below it means the
    group's position went backwards. Both are recorded as violations."""

    def __init__(self, topic):
        self.topic = topic
        self.lock = threading.Lock()
        self.deliveries = []           # (member, partition, offset, monotonic time)
        self.count = {}                # (partition, offset) -> times delivered
        self.committed = {}            # partition -> highest committed offset
        self.commits = []              # (member, partition, offset, monotonic time)
        self.commit_failures = []      # (member, error string, {partition: offset})
        self.violations = []           # str

    def delivered(self, member, msgs):
        now = time.monotonic()
        with self.lock:
            for m in msgs:
                key = (m.partition(), m.offset())
                self.count[key] = self.count.get(key, 0) + 1
                self.deliveries.append((member, key[0], key[1], now))
                c = self.committed.get(key[0])
                if c is not None and key[1] < c:
                    self.violations.append(
                        f"{member} got p{key[0]}@{key[1]} below the committed offset {c}")

    def commit_ok(self, member, tps):
        now = time.monotonic()
        with self.lock:
            for tp in tps:
                prev = self.committed.get(tp.partition, -1)
                if tp.offset < prev:
                    self.violations.append(
                        f"{member} committed p{tp.partition}@{tp.offset} below {prev}")
                self.committed[tp.partition] = max(prev, tp.offset)
                self.commits.append((member, tp.partition, tp.offset, now))

    def commit_failed(self, member, err, offsets):
        with self.lock:
            self.commit_failures.append((member, str(err), dict(offsets)))

    def snapshot_committed(self):
        with self.lock:
            return dict(self.committed)

    def delivered_since(self, t0, partitions=None):
        with self.lock:
            return [d for d in self.deliveries
                    if d[3] >= t0 and (partitions is None or d[1] in partitions)]

    def max_delivered(self):
        with self.lock:
            out = {}
            for _, p, o, _ in self.deliveries:
                out[p] = max(out.get(p, -1), o)
            return out

    def duplicates(self):
        with self.lock:
            return sorted(k for k, n in self.count.items() if n > 1)

    def summary(self):
        with self.lock:
            return (f"{len(self.deliveries)} deliveries, {len(self.count)} distinct, "
                    f"{len(self.commits)} commits, {len(self.commit_failures)} failed commits "
                    f"(first: {self.commit_failures[:3]}), violations: {self.violations[:5]}")


class Member(threading.Thread):
    """One group member in its own thread: subscribe(), consume in batches, commit each batch
    synchronously (offset of the last record + 1 per partition), record everything in the Ledger.

    The rebalance callbacks keep `assigned` current (eager: replaced on assign, cleared on revoke;
    cooperative: incremental) and log every callback in `events`. `stats` keeps librdkafka's last
    statistics (cgrp.rebalance_cnt counts this member's rebalances)."""

    def __init__(self, name, bootstrap, group, topic, ledger, conf=None, batch=200, barrier=None):
        super().__init__(name=f"member-{name}", daemon=True)
        self.barrier = barrier
        self.member = name
        self.topic = topic
        self.ledger = ledger
        self.batch = batch
        self.stop_evt = threading.Event()
        self.lock = threading.Lock()
        self.assigned: set[int] = set()
        self.events = []     # (monotonic time, "assign"/"revoke"/"lost", [partitions])
        self.errors = []     # consumer errors other than partition EOF
        self.stats = {}
        self.crash = None
        self.cooperative = False
        c = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": f"compat-{name}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "statistics.interval.ms": 500,
            "stats_cb": self._on_stats,
            **FAST_GROUP,
        }
        c.update(conf or {})
        self.cooperative = "cooperative" in c.get("partition.assignment.strategy", "")
        self.consumer = Consumer(c)
        self._calls = []  # (function of the consumer, threading.Event, result holder)

    def call(self, fn, timeout=20):
        """Run fn(consumer) on this member's thread (a Consumer is used by one thread only)."""
        done, out = threading.Event(), {}
        with self.lock:
            self._calls.append((fn, done, out))
        assert done.wait(timeout), f"{self.member}: call did not run within {timeout}s"
        if "error" in out:
            raise out["error"]
        return out["result"]

    def _run_calls(self):
        with self.lock:
            calls, self._calls = self._calls, []
        for fn, done, out in calls:
            try:
                out["result"] = fn(self.consumer)
            except Exception as e:  # noqa: BLE001 - handed to the caller
                out["error"] = e
            done.set()

    # callbacks run in this thread, inside consume()
    def _on_stats(self, raw):
        try:
            self.stats = json.loads(raw)
        except ValueError:
            pass

    def _on_assign(self, consumer, partitions):
        ps = [tp.partition for tp in partitions]
        with self.lock:
            self.events.append((time.monotonic(), "assign", ps))
            if self.cooperative:
                self.assigned |= set(ps)
            else:
                self.assigned = set(ps)

    def _on_revoke(self, consumer, partitions):
        ps = [tp.partition for tp in partitions]
        with self.lock:
            self.events.append((time.monotonic(), "revoke", ps))
            self.assigned -= set(ps)

    def _on_lost(self, consumer, partitions):
        ps = [tp.partition for tp in partitions]
        with self.lock:
            self.events.append((time.monotonic(), "lost", ps))
            self.assigned -= set(ps)

    def assignment(self) -> set[int]:
        with self.lock:
            return set(self.assigned)

    def events_since(self, t0):
        with self.lock:
            return [e for e in self.events if e[0] >= t0]

    def rebalance_cnt(self):
        return (self.stats.get("cgrp") or {}).get("rebalance_cnt")

    def run(self):
        c = self.consumer
        try:
            if self.barrier is not None:
                c.list_topics(self.topic, timeout=10)  # connected before the common start
                self.barrier.wait(30)
            c.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                        on_lost=self._on_lost)
            while not self.stop_evt.is_set():
                self._run_calls()
                msgs = c.consume(num_messages=self.batch, timeout=0.2)
                good = []
                for m in msgs:
                    if m.error():
                        if m.error().code() != KafkaError._PARTITION_EOF:
                            self.errors.append(str(m.error()))
                        continue
                    good.append(m)
                if not good:
                    continue
                self.ledger.delivered(self.member, good)
                offsets = {}
                for m in good:
                    offsets[m.partition()] = max(offsets.get(m.partition(), -1), m.offset() + 1)
                tps = [TopicPartition(self.topic, p, o) for p, o in sorted(offsets.items())]
                try:
                    res = c.commit(offsets=tps, asynchronous=False)
                except KafkaException as e:
                    self.ledger.commit_failed(self.member, e.args[0], offsets)
                    continue
                bad = [tp for tp in res if tp.error]
                if bad:
                    self.ledger.commit_failed(self.member, bad[0].error, offsets)
                self.ledger.commit_ok(self.member, [tp for tp in res if not tp.error])
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.crash = repr(e)
        finally:
            c.close()

    def stop(self, timeout=20):
        self.stop_evt.set()
        self.join(timeout)
        assert not self.is_alive(), f"{self.member} did not close within {timeout}s"
        assert self.crash is None, f"{self.member} crashed: {self.crash}"


def stop_all(members, timeout=30):
    """Close members in parallel (a close can take a while when the group is rebalancing)."""
    alive = [m for m in members if m.is_alive()]
    for m in alive:
        m.stop_evt.set()
    for m in alive:
        m.stop(timeout)


class ProducerThread(threading.Thread):
    """Produces `rate` records/s round-robin over the partitions until stopped; `acked` holds the
    (partition, offset) of every successful delivery."""

    def __init__(self, bootstrap, topic, partitions, rate=400, conf=None):
        super().__init__(name="producer", daemon=True)
        self.topic, self.partitions, self.rate = topic, partitions, rate
        c = {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
             "linger.ms": 5, "message.timeout.ms": 60000}
        c.update(conf or {})
        self.producer = Producer(c)
        self.stop_evt = threading.Event()
        self.lock = threading.Lock()
        self.acked: set[tuple[int, int]] = set()
        self.errors = []
        self.sent = 0

    def _dr(self, err, msg):
        with self.lock:
            if err:
                self.errors.append(str(err))
            else:
                self.acked.add((msg.partition(), msg.offset()))

    def run(self):
        step = 0.02
        per_step = max(1, int(self.rate * step))
        while not self.stop_evt.is_set():
            for _ in range(per_step):
                self.producer.produce(self.topic, value=f"v-{self.sent}".encode(),
                                      partition=self.sent % self.partitions, on_delivery=self._dr)
                self.sent += 1
            self.producer.poll(step)
        self.producer.flush(60)

    def stop(self):
        self.stop_evt.set()
        self.join(90)
        assert not self.is_alive(), "producer did not finish"
        remaining = len(self.producer)
        assert remaining == 0, f"{remaining} records never delivered"
        assert not self.errors, f"delivery errors: {self.errors[:5]}"
        return set(self.acked)


def wait_split(members, partitions, sizes=None, timeout=30.0, what="assignment"):
    """Wait until the members' assignments are disjoint, cover range(partitions), and (if given)
    have these sizes. Returns the assignments."""
    want = set(range(partitions))

    def ok():
        a = [m.assignment() for m in members]
        union = set().union(*a)
        disjoint = sum(len(x) for x in a) == len(union)
        if not (disjoint and union == want):
            return None
        if sizes is not None and sorted(len(x) for x in a) != sorted(sizes):
            return None
        return a

    try:
        return wait_until(ok, timeout=timeout, interval=0.1, what=what)
    except AssertionError:
        raise AssertionError(
            f"{what}: members never split {partitions} partitions as {sizes}: "
            + ", ".join(f"{m.member}={sorted(m.assignment())}" for m in members)) from None


def wait_consumed_to(ledger, hw, timeout=30.0, what="consumed to the high watermark"):
    """Wait until every partition's committed offset reached its high watermark."""
    def ok():
        c = ledger.snapshot_committed()
        return all(c.get(p, 0) >= h for p, h in hw.items())

    try:
        wait_until(ok, timeout=timeout, interval=0.1, what=what)
    except AssertionError:
        raise AssertionError(f"{what}: committed {ledger.snapshot_committed()} vs high watermarks "
                             f"{hw}; {ledger.summary()}") from None


def assert_exactly_once(ledger, produced, committed_by_broker=None):
    """Every produced record was delivered exactly once, nothing else was delivered, and the
    commits cover exactly what was delivered."""
    dups = ledger.duplicates()
    delivered = set(ledger.count)
    missing = sorted(produced - delivered)
    extra = sorted(delivered - produced)
    assert not dups, (f"{len(dups)} records delivered more than once (first {dups[:10]}); "
                      f"{ledger.summary()}")
    assert not missing, f"{len(missing)} produced records never delivered: {missing[:10]}"
    assert not extra, f"delivered records that were never produced: {extra[:10]}"
    assert not ledger.violations, ledger.violations[:10]
    last = ledger.max_delivered()
    committed = ledger.snapshot_committed()
    assert committed == {p: o + 1 for p, o in last.items()}, (committed, last)
    if committed_by_broker is not None:
        assert committed_by_broker == committed, (committed_by_broker, committed)


def assert_prefix_exactly_once(ledger, committed_by_broker):
    """So far (more records may follow): each partition was delivered exactly the offsets
    0..committed-1, once each, and the broker holds the same commits as the members made."""
    dups = ledger.duplicates()
    assert not dups, (f"{len(dups)} records delivered more than once (first {dups[:10]}); "
                      f"{ledger.summary()}")
    assert not ledger.violations, ledger.violations[:10]
    committed = ledger.snapshot_committed()
    with ledger.lock:
        by_part = {}
        for p, o in ledger.count:
            by_part.setdefault(p, []).append(o)
    for p, offs in by_part.items():
        assert sorted(offs) == list(range(committed.get(p, 0))), (
            f"p{p}: delivered {len(offs)} offsets, committed {committed.get(p)}; {ledger.summary()}")
    assert committed_by_broker == committed, (committed_by_broker, committed)


def broker_committed(bootstrap, group, topic, partitions):
    from confluent_kafka import ConsumerGroupTopicPartitions

    a = admin(bootstrap)
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])
    res = a.list_consumer_group_offsets([req], request_timeout=15)[group].result(timeout=20)
    return {tp.partition: tp.offset for tp in res.topic_partitions if tp.offset >= 0}


def describe(bootstrap, group):
    a = admin(bootstrap)
    return a.describe_consumer_groups([group], request_timeout=15)[group].result(timeout=20)


def hw_of(bootstrap, topic, partitions):
    return {p: hi for p, (lo, hi) in high_watermarks(bootstrap, topic, partitions).items()}


# ---- the simple tests ------------------------------------------------------------------------------
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


# ---- three members, one leaves, all restart ------------------------------------------------------
@pytest.mark.timeout(120)
@pytest.mark.parametrize("strategy", ["range,roundrobin", "cooperative-sticky"])
def test_three_members_leave_and_restart_exactly_once(group_broker, unique, strategy):
    """Three members on 6 partitions get two each while a producer keeps writing; one closes
    (LeaveGroup) and the other two take its partitions over; every record is consumed and
    committed exactly once. Then three NEW consumers of the group read exactly what lies above
    the last commit. With cooperative-sticky, the survivors keep their own partitions throughout
    (no revocation), they only gain the leaver's."""
    b = group_broker
    parts = 6
    topic, group = unique("grp3"), unique("g3")
    create_topic(b.bootstrap, topic, partitions=parts)
    ledger = Ledger(topic)
    conf = {"partition.assignment.strategy": strategy}
    prod = ProducerThread(b.bootstrap, topic, parts, rate=600)
    prod.start()
    members = [Member(f"c{i}", b.bootstrap, group, topic, ledger, conf) for i in range(3)]
    try:
        for m in members:
            m.start()
        before = wait_split(members, parts, [2, 2, 2], what="three members")
        time.sleep(1.5)  # consume a while in this generation

        leaver, stay = members[2], members[:2]
        moved = before[2]
        t_leave = time.monotonic()
        leaver.stop()
        after = wait_split(stay, parts, [3, 3], timeout=20, what="after the leave")
        assert moved <= after[0] | after[1]
        # the survivors actually consume the moved partitions, from where the leaver committed
        wait_until(lambda: {d[1] for d in ledger.delivered_since(t_leave, moved)
                            if d[0] != leaver.member} == moved,
                   timeout=15, what=f"deliveries of the moved partitions {sorted(moved)}")
        if "cooperative" in strategy:
            for m, own in zip(stay, before[:2]):
                revoked = [e for e in m.events_since(t_leave) if e[1] in ("revoke", "lost") and e[2]]
                assert not revoked, f"cooperative: {m.member} lost partitions: {revoked}"
                assert own <= m.assignment(), (m.member, own, m.assignment())
        time.sleep(1.0)
    finally:
        stop_all(members)
    # the producer is still running: what the members did not get to stays for the restart
    time.sleep(0.5)
    produced = prod.stop()
    committed_at_close = ledger.snapshot_committed()
    assert_prefix_exactly_once(ledger, broker_committed(b.bootstrap, group, topic, parts))
    hw = hw_of(b.bootstrap, topic, parts)
    assert sum(hw.values()) == len(produced)
    assert any(committed_at_close.get(p, 0) < hw[p] for p in range(parts)), \
        "test setup: nothing left unconsumed for the restart"

    # all three restart: new Consumer objects, same group
    t_restart = time.monotonic()
    restarted = [Member(f"r{i}", b.bootstrap, group, topic, ledger, conf) for i in range(3)]
    try:
        for m in restarted:
            m.start()
        wait_consumed_to(ledger, hw, timeout=40, what="restarted members")
        wait_split(restarted, parts, [2, 2, 2], timeout=10, what="restarted members")
    finally:
        stop_all(restarted)
    assert_exactly_once(ledger, produced, broker_committed(b.bootstrap, group, topic, parts))
    again = ledger.delivered_since(t_restart)
    for p in range(parts):
        got = sorted(o for _, q, o, _ in again if q == p)
        assert got == list(range(committed_at_close.get(p, 0), hw[p])), (
            f"p{p}: after the restart expected exactly offsets {committed_at_close.get(p, 0)}.."
            f"{hw[p] - 1}, got {got[:5]}...{got[-5:]} ({len(got)})")
    for m in members + restarted:
        assert not m.errors, (m.member, m.errors[:5])


@pytest.mark.timeout(60)
def test_commit_while_group_prepares_rebalance(group_broker, unique):
    """A member's commit with its current generation is accepted while the group is in
    PreparingRebalance (only CompletingRebalance answers REBALANCE_IN_PROGRESS: Kafka's
    ClassicGroup.validateOffsetCommit). Eager consumers commit what they processed in exactly this
    window (between the coordinator starting a rebalance and their own rejoin); refusing it makes
    the partitions move with stale offsets, so the next owner re-consumes committed work
    (FINDINGS G1)."""
    b = group_broker
    topic, group = unique("grp-prep"), unique("gprep")
    create_topic(b.bootstrap, topic, partitions=2)
    produce(b.bootstrap, topic, [f"m{i}".encode() for i in range(20)], 2)
    revoked = threading.Event()
    c1 = group_consumer(b.bootstrap, group, **{**FAST_GROUP, "heartbeat.interval.ms": 500})
    c1.subscribe([topic], on_revoke=lambda c, ps: revoked.set())
    got = drain(c1, 20, timeout=20)
    assert len(got) == 20
    c1.commit(asynchronous=False)

    # a second member joins; c1 does not poll, so it cannot rejoin: the group waits in
    # PreparingRebalance (up to c1's max.poll.interval.ms)
    stop = threading.Event()
    c2 = group_consumer(b.bootstrap, group, **FAST_GROUP)

    def run_c2():
        c2.subscribe([topic])
        while not stop.is_set():
            c2.poll(0.2)
        c2.close()

    t = threading.Thread(target=run_c2, daemon=True)
    t.start()
    try:
        state = wait_until(
            lambda: describe(b.bootstrap, group).state == ConsumerGroupState.PREPARING_REBALANCING
            and describe(b.bootstrap, group).state,
            timeout=15, what="group in PreparingRebalance")
        assert state == ConsumerGroupState.PREPARING_REBALANCING
        res = c1.commit(offsets=[TopicPartition(topic, 0, 7), TopicPartition(topic, 1, 9)],
                        asynchronous=False)
        assert all(tp.error is None for tp in res), res
        assert broker_committed(b.bootstrap, group, topic, 2) == {0: 7, 1: 9}
    finally:
        stop.set()
        t.join(20)
        c1.close()


@pytest.fixture
def delayed_group_broker(monkeypatch, request):
    """A broker whose new groups wait 1.5 s for more members before their first rebalance
    (group.initial.rebalance.delay.ms; Kafka's default is 3 s)."""
    monkeypatch.setenv("STREAMHOUSE_GROUP_INITIAL_REBALANCE_DELAY_MS", "1500")
    b = request.getfixturevalue("broker")
    if not b.managed:
        pytest.skip("needs the broker's initial rebalance delay under control")
    skip_unless_group_apis(b.bootstrap)
    return b


@pytest.mark.timeout(90)
def test_members_joining_a_new_group_together_form_one_generation(delayed_group_broker, unique):
    """Eight new groups of three consumers each; the members of a group subscribe at the same
    moment, well within the initial rebalance delay: each group forms in one generation, so every
    member is assigned exactly once (one on_assign, librdkafka's rebalance_cnt 1) and nothing is
    revoked. The broker, a single agent, takes each group's coordinator lease once and never
    fences itself (its log). (FINDINGS G2: eight groups, as the race hit about half of them.)"""
    b = delayed_group_broker
    parts, n_groups = 3, 8
    topic = unique("grp-form")
    create_topic(b.bootstrap, topic, partitions=parts)
    groups = [unique(f"gform{i}") for i in range(n_groups)]
    # a short rebalance timeout (max.poll.interval.ms): requests the broker orphans (G2) time out
    # soon, so they do not hold up the broker's shutdown
    conf = {"max.poll.interval.ms": 6000}
    members = {}
    for g in groups:
        barrier = threading.Barrier(3)
        members[g] = [Member(f"{g}-c{i}", b.bootstrap, g, topic, Ledger(topic), conf,
                             barrier=barrier) for i in range(3)]
    everyone = [m for ms in members.values() for m in ms]
    try:
        for m in everyone:
            m.start()
        def formed(g):
            a = [m.assignment() for m in members[g]]
            return sorted(map(len, a)) == [1, 1, 1] and set().union(*a) == set(range(parts))

        deadline = time.monotonic() + 10
        while not all(formed(g) for g in groups) and time.monotonic() < deadline:
            time.sleep(0.1)
        stuck = [g for g in groups if not formed(g)]
        assert not stuck, (f"{len(stuck)} of {n_groups} groups did not form within 10 s: "
                           + "; ".join(f"{m.member}={sorted(m.assignment())}"
                                       for g in stuck[:2] for m in members[g]))
        time.sleep(2.5)  # another rebalance would show up here; stats every 500 ms
        for m in everyone:
            assigns = [e for e in m.events if e[1] == "assign"]
            losses = [e for e in m.events if e[1] in ("revoke", "lost") and e[2]]
            assert len(assigns) == 1 and not losses, f"{m.member}: {m.events}"
            assert m.rebalance_cnt() == 1, (m.member, m.stats.get("cgrp"))
    finally:
        stop_all(everyone)
    for g in groups:
        log = [line for line in b.log_text().splitlines() if f'group="{g}"' in line]
        acquired = [line for line in log if "coordinating group" in line]
        fenced = [line for line in log if "fenced" in line]
        assert len(acquired) == 1 and not fenced, "\n".join(acquired + fenced)


def sync_group(bootstrap, version, group, member_id, generation=1):
    """A raw SyncGroup (v3, or flexible v5 with protocol type "consumer" and name "range") with no
    assignments; returns the error code."""
    if version >= 4:
        body = (kw.compact_string(group) + kw.i32(generation) + kw.compact_string(member_id)
                + kw.compact_string(None) + kw.compact_string("consumer")
                + kw.compact_string("range") + kw.uvarint(1) + kw.uvarint(0))
    else:
        body = (kw.string(group) + kw.i32(generation) + kw.string(member_id) + kw.string(None)
                + kw.i32(0))
    s = kw.connect(bootstrap)
    try:
        s.sendall(kw.frame(kw.request_header(14, version, 7, "compat-raw", flexible=version >= 4)
                           + body))
        resp = kw.recv_frame(s)
    finally:
        s.close()
    corr = int.from_bytes(resp[0:4], "big", signed=True)
    assert corr == 7
    pos = 5 if version >= 4 else 4  # flexible response header: an empty tagged-field section
    return int.from_bytes(resp[pos + 4:pos + 6], "big", signed=True)  # after throttle_time_ms


@pytest.mark.timeout(30)
def test_sync_group_from_unknown_member(group_broker, unique):
    """SyncGroup from a member id the group does not have: UNKNOWN_MEMBER_ID (25), at every
    version, so the client simply rejoins (Kafka checks the member before the protocol type and
    name). Real clients send this after the coordinator lost their membership (G2, a session
    timeout); kafka-python treats INCONSISTENT_GROUP_PROTOCOL (23) as fatal and its consumer
    raises out of poll() (FINDINGS G6)."""
    b = group_broker
    group = unique("gsync")
    assert sync_group(b.bootstrap, 3, group, "nobody-1") == 25
    assert sync_group(b.bootstrap, 5, group, "nobody-2") == 25


# ---- static membership -----------------------------------------------------------------------------
def _static_member(name, b, group, topic, ledger, instance, extra=None):
    conf = {"group.instance.id": instance, "session.timeout.ms": 10000}
    conf.update(extra or {})
    return Member(name, b.bootstrap, group, topic, ledger, conf)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("who", ["follower", "leader"])
def test_static_member_restart_keeps_partitions_without_rebalance(group_broker, unique, who):
    """group.instance.id (KIP-345): librdkafka's close() of a static member sends no LeaveGroup;
    a new consumer with the same instance id that comes back within session.timeout.ms gets the
    same partitions back, and the other members see no rebalance at all (no callbacks, their
    rebalance_cnt unchanged, the group stays Stable with three members). Kafka does this for the
    group leader too (the coordinator keeps the stable assignment: KIP-814's skipAssignment;
    FINDINGS G3).
    Records written meanwhile wait for the returning member, which resumes at its commits.
    Then it closes again and stays away: after session.timeout.ms the others take its
    partitions."""
    b = group_broker
    parts = 6
    topic, group = unique("grp-static"), unique("gstatic")
    create_topic(b.bootstrap, topic, partitions=parts)
    ledger = Ledger(topic)
    prod = ProducerThread(b.bootstrap, topic, parts, rate=300)
    prod.start()
    members = {}
    try:
        # the first member to join leads the group
        members["a"] = _static_member("a", b, group, topic, ledger, f"{group}-a")
        members["a"].start()
        wait_split([members["a"]], parts, [6], what="first member")
        for n in ("b", "c"):
            members[n] = _static_member(n, b, group, topic, ledger, f"{group}-{n}")
            members[n].start()
        split = wait_split(list(members.values()), parts, [2, 2, 2], what="three static members")
        time.sleep(2.5)  # let the statistics (500 ms) catch up with the rebalances

        bouncer = "a" if who == "leader" else "c"
        others = [members[n] for n in members if n != bouncer]
        held = members[bouncer].assignment()
        assert held == split["abc".index(bouncer)]
        cnt_before = {m.member: m.rebalance_cnt() for m in others}
        assert all(v is not None for v in cnt_before.values()), cnt_before
        d = describe(b.bootstrap, group)
        assert d.state == ConsumerGroupState.STABLE and len(d.members) == 3, d
        old_member_id = next(x.member_id for x in d.members
                             if x.group_instance_id == f"{group}-{bouncer}")

        t_close = time.monotonic()
        members[bouncer].stop()
        time.sleep(1.0)
        d = describe(b.bootstrap, group)
        assert d.state == ConsumerGroupState.STABLE, f"closing a static member rebalanced: {d.state}"
        assert {x.group_instance_id for x in d.members} == {f"{group}-{n}" for n in "abc"}

        back = _static_member(f"{bouncer}2", b, group, topic, ledger, f"{group}-{bouncer}")
        members[bouncer] = back
        back.start()
        wait_until(lambda: back.assignment() == held, timeout=15,
                   what=f"returning static member gets {sorted(held)} back")
        # its partitions resume where the first incarnation committed
        wait_until(lambda: {d[1] for d in ledger.delivered_since(t_close) if d[0] == back.member}
                   == held, timeout=15, what="returning member consumes its partitions")
        time.sleep(2.5)
        for m in others:
            ev = m.events_since(t_close)
            assert not ev, f"{m.member} saw a rebalance when a static member came back: {ev}"
            assert m.rebalance_cnt() == cnt_before[m.member], (m.member, m.rebalance_cnt(),
                                                              cnt_before[m.member])
        d = describe(b.bootstrap, group)
        assert d.state == ConsumerGroupState.STABLE and len(d.members) == 3, d
        desc = {x.group_instance_id: x for x in d.members}
        mine = desc[f"{group}-{bouncer}"]
        assert mine.member_id != old_member_id  # a new member id under the same instance id
        assert {tp.partition for tp in mine.assignment.topic_partitions} == held

        if who == "follower":
            # the static member goes away for good: after session.timeout.ms the others take over
            t_gone = time.monotonic()
            back.stop()
            wait_split(others, parts, [3, 3], timeout=25,
                       what="after the static member's session expired")
            waited = time.monotonic() - t_gone
            assert waited >= 8.0, f"partitions moved after {waited:.1f}s, before session.timeout.ms"
            wait_until(lambda: {d[1] for d in ledger.delivered_since(t_gone, held)} == held,
                       timeout=15, what="others consume the expired member's partitions")
        produced = prod.stop()
        hw = hw_of(b.bootstrap, topic, parts)
        assert sum(hw.values()) == len(produced)
        wait_consumed_to(ledger, hw, timeout=30)
    finally:
        prod.stop_evt.set()
        stop_all(members.values())
    assert_exactly_once(ledger, produced, broker_committed(b.bootstrap, group, topic, parts))


# ---- shutdown while a rebalance waits ------------------------------------------------------------
@pytest.mark.needs_process
@pytest.mark.timeout(90)
def test_sigterm_while_a_join_is_parked(group_broker, unique):
    """A member joins while the only other member does not poll: its JoinGroup waits in
    PreparingRebalance (up to the rebalance timeout). SIGTERM now must still stop the broker
    promptly (exit 0 within 5 s): the coordinator answers what it parked (Kafka completes pending
    joins with NOT_COORDINATOR when it gives a group up) instead of waiting for it (FINDINGS G4)."""
    b = group_broker
    topic, group = unique("grp-term"), unique("gterm")
    create_topic(b.bootstrap, topic, partitions=2)
    conf = {**FAST_GROUP, "heartbeat.interval.ms": 500}
    c1 = group_consumer(b.bootstrap, group, **conf)
    c1.subscribe([topic], on_revoke=lambda c, ps: None)
    wait_until(lambda: c1.poll(0.2) is None and len(c1.assignment()) == 2, timeout=15,
               what="first member assigned")
    stop = threading.Event()

    def run_c2():
        c2 = group_consumer(b.bootstrap, group, **conf)
        c2.subscribe([topic])
        while not stop.is_set():
            c2.poll(0.2)
        c2.close()

    t = threading.Thread(target=run_c2, daemon=True)
    t.start()
    try:
        wait_until(lambda: describe(b.bootstrap, group).state
                   == ConsumerGroupState.PREPARING_REBALANCING, timeout=15,
                   what="a JoinGroup parked in PreparingRebalance")
        time.sleep(0.5)
        t0 = time.monotonic()
        b.stop()  # SIGTERM; asserts exit code 0 (within 15 s)
        took = time.monotonic() - t0
        assert took < 5.0, f"SIGTERM took {took:.1f}s with a JoinGroup parked"
    finally:
        if not b.alive():
            b.restart()  # let the clients close against a live broker
        stop.set()
        t.join(30)
        c1.close()


# ---- the broker dies under a consuming group -----------------------------------------------------
@pytest.mark.needs_process
@pytest.mark.timeout(150)
def test_broker_sigkill_while_group_consumes(group_broker, unique):
    """SIGKILL the broker while a two-member group consumes (sync commit after every batch) and a
    producer writes; restart it on the same data. The members rejoin by themselves and carry on
    from the committed offsets: every acknowledged record is consumed at least once, a record is
    delivered again only if it lies at or above the last successful commit of its partition, and
    commits never go backwards. At the end the committed offsets equal the high watermarks."""
    b = group_broker
    parts = 4
    topic, group = unique("grp-crash"), unique("gcrash")
    create_topic(b.bootstrap, topic, partitions=parts)
    ledger = Ledger(topic)
    prod = ProducerThread(b.bootstrap, topic, parts, rate=400,
                          conf={"message.timeout.ms": 90000, "retry.backoff.ms": 200})
    prod.start()
    members = [Member(f"c{i}", b.bootstrap, group, topic, ledger,
                      {"reconnect.backoff.max.ms": 1000}) for i in range(2)]
    try:
        for m in members:
            m.start()
        wait_split(members, parts, [2, 2], what="two members")
        time.sleep(2.0)
        n_before = len(ledger.deliveries)
        assert n_before > 0
        committed_at_kill = ledger.snapshot_committed()
        t_kill = time.monotonic()
        b.kill()
        time.sleep(1.0)
        b.restart()
        t_restart = time.monotonic()
        # the group is consuming again: new deliveries on every partition after the restart
        wait_until(lambda: {d[1] for d in ledger.delivered_since(t_restart)} == set(range(parts)),
                   timeout=40, what="deliveries on every partition after the restart")
        wait_split(members, parts, [2, 2], timeout=30, what="after the restart")
        time.sleep(2.0)
        produced = prod.stop()
        hw = hw_of(b.bootstrap, topic, parts)
        assert sum(hw.values()) >= len(produced)
        wait_consumed_to(ledger, hw, timeout=40)
    finally:
        prod.stop_evt.set()
        stop_all(members)
    assert not ledger.violations, (ledger.violations[:10], ledger.summary())
    missing = sorted(produced - set(ledger.count))
    assert not missing, f"{len(missing)} acknowledged records never consumed: {missing[:10]}"
    # after the restart, a record delivered before is delivered again only if it was not
    # committed when the broker died (at-least-once, and only for the uncommitted tail)
    before = {(p, o) for _, p, o, t in ledger.deliveries if t < t_kill}
    for _, p, o, _ in ledger.delivered_since(t_kill):
        if (p, o) in before:
            assert o >= committed_at_kill.get(p, 0), (
                f"p{p}@{o} re-delivered after the restart although {committed_at_kill.get(p, 0)} "
                f"was committed before the kill")
    assert broker_committed(b.bootstrap, group, topic, parts) == hw
    for m in members:
        assert m.crash is None, m.crash
