"""Process faults under load, with real agents and real clients (issue: process-fault tests).

1. The metadata store goes away: a dedicated PostgreSQL (pg_server.py; never the shared one) is stopped with
   `pg_ctl stop -m fast` for 10 s under an idempotent producer and a consumer, then started again on the
   same port and data directory. The agents must recover by themselves (same processes), the producer must
   see only retriable errors, and every acknowledged record must be read back exactly once.
2. The object store misbehaves: an HTTP fault proxy (s3_fault_proxy.py) between the agents and the S3
   server answers 503 SlowDown for 20 s, then hangs every request for 20 s.
3. A group coordinator is frozen (SIGSTOP) while a second consumer joins the group at another agent; its
   lease runs out, another agent takes the group; then it is resumed.
4. Clock skew between agents (--clock-offset-ms) must not move leases.
"""

from __future__ import annotations

import os
import re
import threading
import time

import pytest

from churn import TailingConsumer, _Captured, _logger
from cluster_util import (Cluster, ClusterError, ProducerLoad, check_exactly_acked, cluster,  # noqa: F401
                          read_back)
import pg_server

LEASE_TTL_MS = 3000
PARTITIONS = 6
TIMED_OUT_IN_FLIGHT = re.compile(r"Timed out (\w+) in flight \(after (\d+)ms")


# -- a cluster on its own PostgreSQL server ------------------------------------------------------------
@pytest.fixture
def pg_cluster(request, tmp_path_factory):
    """(Cluster, ThrowawayPostgres): like cluster_util's `cluster` fixture, but its database lives on a
    PostgreSQL server of its own that the test may stop and start."""
    from cluster_util import env_missing_reason

    reason = env_missing_reason() or pg_server.available()
    if reason:
        pytest.skip(reason)
    pg = pg_server.ThrowawayPostgres().start()
    c = None
    try:
        c = Cluster(tmp_path_factory.mktemp("cluster"), pg.admin_url)
        request.node._compat_broker = c  # conftest's report hook appends the agents' logs on failure
        yield c, pg
        problems = c.problems()
        if problems:
            pytest.fail("\n".join(problems) + "\n" + c.log_tails(), pytrace=False)
    finally:
        if not pg.running:
            pg.start()
        if c is not None:
            c.teardown()
        pg.destroy()


def _fatal(load: ProducerLoad) -> list[str]:
    return [e for e in load.client_errors if "fatal=True" in e]


def _producer(bootstrap: str, topic: str, name: str, rate: float = 300) -> tuple[ProducerLoad, _Captured]:
    """ProducerLoad whose produce requests carry a 10 s timeout_ms (the agent answers by then, at the
    latest 5 s later: README "Every request is answered") while the client waits 30 s (Java's request
    timeout) before it gives up on a request: every "Timed out ProduceRequest in flight" it logs is then
    an agent that left a request unanswered past its bound."""
    timeouts = _Captured(TIMED_OUT_IN_FLIGHT)
    log = _logger(f"faults.{name}.{topic}", timeouts)
    timeouts.everything = _Captured(re.compile(""))  # librdkafka's whole log, for a failure's report
    log.addHandler(timeouts.everything)
    load = ProducerLoad(bootstrap, topic, PARTITIONS, rate=rate, **{
        "request.timeout.ms": 10000, "socket.timeout.ms": 30000, "logger": log, "debug": "eos"})
    return load, timeouts


def _under_load(cluster, unique, name: str, **agent_args):
    """Three agents (`agent_args` passed on), a topic led by them, a TailingConsumer on it and a started
    _producer: (agents, topic, pids by agent id, consumer, load, its timeouts)."""
    agents = cluster.add_agents(3, lease_ttl_ms=LEASE_TTL_MS, **agent_args)
    cluster.start_all()
    topic = unique(name)
    cluster.create_topic(topic, PARTITIONS)
    cluster.wait_all_led(topic, PARTITIONS, settle=1.5, timeout=30)
    pids = {a.id: a.proc.pid for a in agents}
    tail = TailingConsumer(cluster.bootstrap(), topic, PARTITIONS, name=name).start()
    load, load_timeouts = _producer(cluster.bootstrap(), topic, name)
    load.start()
    return agents, topic, pids, tail, load, load_timeouts


def _exactly_acked(records: dict[int, list[tuple[int, bytes]]], load: ProducerLoad) -> list[str]:
    """check_exactly_acked, where an acknowledgement without an offset counts as one at whatever offset
    the record was read at (librdkafka's idempotent producer acknowledges a message whose own answer
    was lost, a timed-out request, once a later batch of the partition succeeds: it knows the message
    is written, not where)."""
    acked = load.acked()
    at = {v.decode(errors="replace"): (p, o) for p, recs in records.items() for o, v in recs}
    unknown = [i for i, (_, o) in acked.items() if o is None or o < 0]
    for i in unknown:
        p, _ = acked[i]
        if i in at and at[i][0] == p:
            acked[i] = at[i]
    problems = check_exactly_acked(records, acked)
    if unknown:
        print(f"({len(unknown)} acknowledgements without an offset, e.g. {unknown[:3]}: checked for "
              f"partition and presence only)")
    return problems


def _save_client_log(cluster, name: str, captured: _Captured) -> str:
    path = cluster.workdir / f"{name}.log"
    path.write_text("\n".join(captured.everything.lines) + "\n")
    return str(path)


def _wait_writable(load: ProducerLoad, t0: float, limit: float) -> dict[int, float | None]:
    """Waits (at most `limit` s after t0) until every partition acknowledged a message sent after t0;
    returns {partition: seconds from t0, or None}."""
    while time.monotonic() < t0 + limit and load.fatal is None:
        if all(load.recovery_after(t0, p) is not None for p in range(load.partitions)):
            break
        time.sleep(0.2)
    return {p: load.recovery_after(t0, p) for p in range(load.partitions)}


def _fmt(recovery: dict[int, float | None]) -> str:
    return ", ".join(f"p{p}={r:.2f}s" if r is not None else f"p{p}=never" for p, r in recovery.items())


# -- 1. PostgreSQL stopped for 10 s ------------------------------------------------------------------------
PG_DOWN_S = 10.0
# From PostgreSQL accepting connections again until every partition took a message sent after that. The
# agents' pools reconnect on their next use; a lease round (ttl/3) re-takes the partitions whose leases
# expired during the outage; librdkafka's retry backoff and metadata refresh add about a second.
PG_RECOVERY_LIMIT_S = 15.0


@pytest.mark.timeout(150)
def test_postgres_stopped_under_load_agents_recover_without_restart(pg_cluster, unique):
    """Three agents on a PostgreSQL of their own, stopped (pg_ctl stop -m fast) for 10 s under load and
    started again: the same processes serve again, every partition takes writes within
    PG_RECOVERY_LIMIT_S, nothing is acknowledged while the store is down, the producer sees no failed
    delivery, no fatal error and no request unanswered for 30 s, and the acknowledged records are read
    back exactly once."""
    cluster, pg = pg_cluster
    agents, topic, pids, tail, load, load_timeouts = _under_load(cluster, unique, "pgdown")
    try:
        time.sleep(4)
        acked_before = len(load.acked())
        assert acked_before > 300, f"only {acked_before} acks in 4 s before the outage: {load.failed()[:3]}"

        t_stopping = time.monotonic()
        pg.stop(mode="fast")
        t_down = time.monotonic()
        print(f"\nPostgreSQL stopped (pg_ctl stop -m fast took {t_down - t_stopping:.2f}s) after "
              f"{acked_before} acks")
        time.sleep(PG_DOWN_S)
        pg.start()
        t_up = time.monotonic()
        print(f"PostgreSQL accepting again after {t_up - t_down:.1f}s down")

        # every partition writable again: a message sent after the restart is acknowledged
        _wait_writable(load, t_up, PG_RECOVERY_LIMIT_S + 15)
        time.sleep(5)  # and keep producing a while after it
    finally:
        load.stop()

    recovery = {p: load.recovery_after(t_up, p) for p in range(PARTITIONS)}
    first_ack = min((d.t for d in load.deliveries if d.error is None and d.t > t_up), default=None)
    during = [d for d in load.deliveries if d.error is None and t_down + 1.0 < d.t < t_up]
    print(f"producer: sent {load.sent}, acked {len(load.acked())}, failed {len(load.failed())}")
    print(f"first acknowledgement after the restart: "
          f"{'never' if first_ack is None else f'{first_ack - t_up:.2f}s'}; partitions writable again "
          f"(first message sent after the restart acknowledged): {_fmt(recovery)}")
    print(f"client errors (informational): {len(load.client_errors)} {load.client_errors[:4]}; "
          f"produce requests the client timed out (30 s): {len(load_timeouts.lines)} {load_timeouts.lines[:3]}")

    assert load.fatal is None, f"the producer hit a fatal error: {load.fatal}"
    assert not _fatal(load), f"fatal client errors: {_fatal(load)}"
    assert not load.failed(), f"{len(load.failed())} deliveries failed, e.g. {load.failed()[:5]}"
    assert not load_timeouts.lines, f"produce requests left unanswered for 30 s: {load_timeouts.lines[:5]}"
    assert not during, (f"{len(during)} records acknowledged while PostgreSQL was down (their high "
                        f"watermark cannot have been committed), e.g. {during[:3]}")
    never = [p for p, r in recovery.items() if r is None]
    assert not never, f"partitions {never} took no write sent after PostgreSQL came back"
    worst = max(recovery.values())
    assert worst <= PG_RECOVERY_LIMIT_S, \
        f"a partition was writable again only {worst:.1f}s after PostgreSQL came back " \
        f"(limit {PG_RECOVERY_LIMIT_S}s): {recovery}"
    for a in agents:
        assert a.alive() and a.proc.pid == pids[a.id] and a.starts == 1, \
            f"{a} is not the process started before the outage (pid {pids[a.id]})"
    cluster.wait_all_led(topic, PARTITIONS, timeout=20)

    acked = load.acked()
    caught_up = tail.wait_for(len(acked), 60)
    tail.stop()
    print(f"consumer: read {tail.count()} (caught up "
          f"{'never' if caught_up is None else f'{caught_up:.1f}s'} after the producer stopped), "
          f"errors {tail.errors[:3]}, client-side request timeouts {tail.timeouts.lines[:3]}")
    assert caught_up is not None, f"the consumer read {tail.count()} of {len(acked)} acknowledged records"
    problems = _exactly_acked(tail.records, load)
    assert not problems, "the running consumer: " + "\n".join(problems)
    problems = _exactly_acked(read_back(cluster.bootstrap(), topic, PARTITIONS), load)
    assert not problems, "a new consumer: " + "\n".join(problems)


# -- 2. S3 answering 503, then hanging ---------------------------------------------------------------------
S3_503_S = 20.0
S3_HANG_S = 20.0
# From pass-through restored until every partition took a message sent after that: the flush pipeline
# frees up as the held requests are let go (their answers lost: the store retries), plus client backoff.
S3_RECOVERY_LIMIT_S = 15.0


@pytest.mark.timeout(180)
def test_s3_slowdown_then_hang_under_load_loses_and_duplicates_nothing(cluster, unique):
    """S3 (through s3_fault_proxy) answers 503 SlowDown for 20 s, then hangs every request for 20 s, under
    load: nothing acknowledged is lost or stored twice, every request is answered by the agents within the
    client's 30 s, the agents do not crash, and writes resume within S3_RECOVERY_LIMIT_S. Found: an append
    answered REQUEST_TIMED_OUT while its flush's PUT hung was committed once the PUT went through, after
    librdkafka (told the batch failed, with another partition's sequence gap) had bumped its producer
    epoch and re-sent the records, so they were stored twice; fixed by partition::writer::Claim."""
    from s3_fault_proxy import S3FaultProxy

    proxy = S3FaultProxy(os.environ["STREAMHOUSE_TEST_S3_ENDPOINT"])
    try:
        _s3_faults(cluster, unique, proxy)
    finally:
        proxy.close()


def _s3_faults(cluster, unique, proxy):
    agents, topic, pids, tail, load, load_timeouts = _under_load(cluster, unique, "s3faults", env={"AWS_ENDPOINT_URL": proxy.url})
    try:
        time.sleep(4)
        acked_before = len(load.acked())
        assert acked_before > 300, f"only {acked_before} acks in 4 s before the faults: {load.failed()[:3]}"
        t_503 = time.monotonic()
        proxy.set_mode("503")
        print(f"\nS3 answers 503 SlowDown from now on ({acked_before} acks so far)")
        time.sleep(S3_503_S)
        acked_503 = len(load.acked())
        t_hang = time.monotonic()
        proxy.set_mode("hang")
        print(f"S3 hangs every request from now on; {proxy.count('503')} requests were answered 503, "
              f"{acked_503 - acked_before} records acknowledged meanwhile")
        time.sleep(S3_HANG_S)
        held = proxy.held_now
        t_up = time.monotonic()
        proxy.set_mode("pass")
        print(f"S3 passes through again; {proxy.count('hang')} requests were hung ({held} still held at "
              f"the end, now forwarded with their answers lost)")
        recovery = _wait_writable(load, t_up, S3_RECOVERY_LIMIT_S + 15)
        time.sleep(5)
    finally:
        load.stop()

    acked = load.acked()
    acked_hang = [d for d in load.deliveries if d.error is None and t_hang + 1.0 < d.t < t_up]
    print(f"producer: sent {load.sent}, acked {len(acked)}, failed {len(load.failed())}; "
          f"acknowledged while S3 hung: {len(acked_hang)}")
    print(f"partitions writable again after S3 came back (first message sent after that acknowledged): "
          f"{_fmt(recovery)}")
    print(f"client errors (informational): {len(load.client_errors)} {load.client_errors[:4]}; "
          f"produce requests the client timed out (30 s): {len(load_timeouts.lines)} {load_timeouts.lines[:3]}")
    print(f"proxy: {dict(proxy.counts)}; upstream errors {proxy.errors[:3]}")
    print(f"producer's librdkafka log: {_save_client_log(cluster, 'producer', load_timeouts)}")

    assert proxy.count("503", "PUT") > 0, f"no segment PUT was answered 503: {dict(proxy.counts)}"
    assert proxy.count("hang", "PUT") > 0, f"no segment PUT was hung: {dict(proxy.counts)}"
    assert load.fatal is None, f"the producer hit a fatal error: {load.fatal}"
    assert not _fatal(load), f"fatal client errors: {_fatal(load)}"
    assert not load.failed(), f"{len(load.failed())} deliveries failed, e.g. {load.failed()[:5]}"
    assert not load_timeouts.lines, f"produce requests left unanswered for 30 s: {load_timeouts.lines[:5]}"
    never = [p for p, r in recovery.items() if r is None]
    assert not never, f"partitions {never} took no write sent after S3 came back"
    worst = max(recovery.values())
    assert worst <= S3_RECOVERY_LIMIT_S, \
        f"a partition was writable again only {worst:.1f}s after S3 came back (limit {S3_RECOVERY_LIMIT_S}s)"
    for a in agents:
        assert a.alive() and a.proc.pid == pids[a.id] and a.starts == 1, \
            f"{a} is not the process started before the faults (pid {pids[a.id]})"

    caught_up = tail.wait_for(len(acked), 60)
    tail.stop()
    print(f"consumer: read {tail.count()} (caught up "
          f"{'never' if caught_up is None else f'{caught_up:.1f}s'} after the producer stopped), "
          f"errors {tail.errors[:3]}, client-side request timeouts {tail.timeouts.lines[:3]}")
    assert not tail.timeouts.lines, f"the consumer's requests went unanswered: {tail.timeouts.lines[:5]}"
    assert caught_up is not None, f"the consumer read {tail.count()} of {len(acked)} acknowledged records"
    problems = _exactly_acked(tail.records, load)
    assert not problems, "the running consumer: " + "\n".join(problems)
    problems = _exactly_acked(read_back(cluster.bootstrap(), topic, PARTITIONS), load)
    assert not problems, "a new consumer: " + "\n".join(problems)


# -- 3. SIGSTOP of a group coordinator while a second consumer joins elsewhere -----------------------------
NOT_COORDINATOR = 16
GROUP_PARTITIONS = 6
SESSION_MS = 10000
# B joins while the coordinator is frozen: its lease runs out (ttl), a client's request to the frozen agent
# times out (socket.timeout.ms) and it looks the coordinator up again, the new coordinator loads the group,
# A is told to rejoin at its next heartbeat, the group rebalances (initial delay, join, sync)
GROUP_SETTLE_LIMIT_S = 40.0


class GroupMember:
    """A confluent-kafka group member polled in its own thread, recording with one monotonic clock every
    assignment change (assign / revoke / lost, with its member id) and every message it consumed, and
    checking each message's partition against its assignment at that instant."""

    def __init__(self, name: str, bootstrap: str, group: str, topic: str, events: list, lock: threading.Lock):
        from confluent_kafka import Consumer

        self.name, self.events, self.lock = name, events, lock
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": True, "auto.commit.interval.ms": 500,
            "session.timeout.ms": SESSION_MS, "heartbeat.interval.ms": 1000,
            # a request to a frozen agent is given up after 6 s (librdkafka's default is 60 s)
            "socket.timeout.ms": 6000,
            "partition.assignment.strategy": "range",
            "topic.metadata.refresh.interval.ms": 5000,
        })
        self.assignment: set[int] = set()
        self.assigned_ever = 0
        self.consumed: list[tuple[float, int, int, bytes]] = []  # (t, partition, offset, value)
        self.outside: list[tuple[float, int, int, list[int]]] = []  # messages of unassigned partitions
        self.errors: list[str] = []
        self.member_ids: list[str] = []
        self._stop = threading.Event()
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _event(self, kind: str, t_start: float, parts: list[int]):
        with self.lock:
            self.events.append((t_start, time.monotonic(), self.name, kind, sorted(parts)))

    def _on_assign(self, consumer, partitions):
        t = time.monotonic()
        parts = [p.partition for p in partitions]
        self.assignment = set(parts)
        self.assigned_ever += 1
        mid = consumer.memberid()
        if mid and (not self.member_ids or self.member_ids[-1] != mid):
            self.member_ids.append(mid)
        self._event("assign", t, parts)

    def _on_revoke(self, consumer, partitions):
        t = time.monotonic()
        self.assignment -= {p.partition for p in partitions}
        self._event("revoke", t, [p.partition for p in partitions])

    def _on_lost(self, consumer, partitions):
        t = time.monotonic()
        self.assignment -= {p.partition for p in partitions}
        self._event("lost", t, [p.partition for p in partitions])

    def _run(self):
        while not self._stop.is_set():
            # one message per call: any rebalance callback queued before it has run when it is returned,
            # so `assignment` is this member's assignment at the instant the message is handed over
            m = self.consumer.poll(0.1)
            if m is None:
                continue
            if m.error():
                self.errors.append(str(m.error()))
                continue
            t = time.monotonic()
            self.consumed.append((t, m.partition(), m.offset(), m.value()))
            if m.partition() not in self.assignment:
                self.outside.append((t, m.partition(), m.offset(), sorted(self.assignment)))

    def start(self) -> "GroupMember":
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=15)
        try:
            self.consumer.close()
        except Exception as e:  # closing mid-rebalance may fail; nothing to check there
            self.errors.append(f"close: {e!r}")


def _holding_intervals(events: list, name: str, end: float) -> dict[int, list[tuple[float, float]]]:
    """{partition: [(from, to)]} while member `name` held it: from the START of the assign callback to the
    END of the revoke/lost callback that gave it up (the widest window, so the overlap check errs towards
    failing)."""
    out: dict[int, list[tuple[float, float]]] = {}
    since: dict[int, float] = {}
    for t0, t1, who, kind, parts in sorted(events):
        if who != name:
            continue
        if kind == "assign":
            for p in parts:
                since.setdefault(p, t0)
        else:
            for p in parts:
                if p in since:
                    out.setdefault(p, []).append((since.pop(p), t1))
    for p, t in since.items():
        out.setdefault(p, []).append((t, end))
    return out


def _coordinator_epochs(agent, group: str, since: int = 0) -> list[int]:
    """The coordinator epochs under which `agent` logged taking `group` (from log line `since` on)."""
    out = []
    for ln in agent.log_lines()[since:]:
        if "coordinating group" in ln and f'group="{group}"' in ln:
            m = re.search(r"epoch=(\d+)", ln)
            if m:
                out.append(int(m.group(1)))
    return out


def _raw_group_request(bootstrap: str, api_key: int, body: bytes, corr: int = 7) -> int:
    """Sends a v0 group request (Heartbeat, JoinGroup) and returns its error code."""
    import struct

    import kafka_wire as w

    s = w.connect(bootstrap, timeout=30)  # an accepted JoinGroup waits for the rebalance (<= 10 s)
    try:
        s.sendall(w.frame(w.request_header(api_key, 0, corr, "faults-raw", flexible=False) + body))
        resp = w.recv_frame(s)
    finally:
        s.close()
    got, err = struct.unpack_from(">ih", resp, 0)
    assert got == corr, (got, corr)
    return err


def heartbeat_v0(bootstrap: str, group: str, generation: int, member: str) -> int:
    import kafka_wire as w

    return _raw_group_request(bootstrap, 12, w.string(group) + w.i32(generation) + w.string(member))


def join_group_v0(bootstrap: str, group: str, topic: str) -> int:
    """A new member's JoinGroup v0 with valid consumer-protocol metadata: should an agent accept it, the
    group's leader (librdkafka) parses it, and empty metadata would crash librdkafka (an assertion in
    rd_slice_init_full aborts the process)."""
    import kafka_wire as w

    subscription = w.i16(0) + w.i32(1) + w.string(topic) + w.i32(0)  # v0: topics, empty user data
    body = (w.string(group) + w.i32(SESSION_MS) + w.string("") + w.string("consumer")
            + w.i32(1) + w.string("range") + w.i32(len(subscription)) + subscription)
    return _raw_group_request(bootstrap, 11, body)


@pytest.mark.timeout(150)
def test_sigstopped_group_coordinator_never_splits_the_group(cluster, unique):
    """Consumer A alone in a group; its coordinator is frozen (SIGSTOP) and consumer B joins through another
    agent; the lease runs out, another agent takes the group, A and B share the partitions; SIGCONT. No two
    members ever hold one partition at the same instant, nobody consumes a partition it does not hold,
    every acknowledged record is consumed, and the resumed agent does not serve the group it lost."""
    from cluster_util import find_coordinator
    from compat_util import wait_until

    agents = cluster.add_agents(3, lease_ttl_ms=LEASE_TTL_MS)
    cluster.start_all()
    topic = unique("coordstop")
    group = unique("g")
    cluster.create_topic(topic, GROUP_PARTITIONS)
    cluster.wait_all_led(topic, GROUP_PARTITIONS, settle=1.5, timeout=30)

    events: list = []
    lock = threading.Lock()
    load = ProducerLoad(cluster.bootstrap(), topic, GROUP_PARTITIONS, rate=200).start()
    a = GroupMember("A", cluster.bootstrap(), group, topic, events, lock).start()
    b = None
    resumed = False
    try:
        wait_until(lambda: a.assignment == set(range(GROUP_PARTITIONS)), timeout=30,
                   what="consumer A to be assigned every partition")
        err, coord_id = find_coordinator(agents[0].bootstrap, group)
        assert err == 0 and coord_id in cluster.agents, (err, coord_id)
        coord = cluster.agent(coord_id)
        others = [x for x in agents if x is not coord]
        time.sleep(2)  # A consumes and commits in a Stable group
        a_member = a.member_ids[-1]  # (memberid() from another thread than the polling one can block)
        stop_epoch = max(_coordinator_epochs(coord, group), default=0)
        consumed_before = len(a.consumed)
        coord.pause()
        t_stop = time.monotonic()
        print(f"\nSIGSTOPped coordinator {coord.id} of {group}; A ({a_member}) had consumed {consumed_before}")

        b = GroupMember("B", others[0].bootstrap, group, topic, events, lock).start()

        def split():
            aa, bb = set(a.assignment), set(b.assignment)
            return aa and bb and not (aa & bb) and (aa | bb) == set(range(GROUP_PARTITIONS)) and (aa, bb)

        settled = wait_until(split, timeout=GROUP_SETTLE_LIMIT_S, interval=0.1,
                             what=f"A and B to share the {GROUP_PARTITIONS} partitions (A {a.assignment}, "
                                  f"B {b.assignment}, events {events})")
        t_settled = time.monotonic() - t_stop
        err, new_id = find_coordinator(others[0].bootstrap, group)
        print(f"A and B share the partitions {t_settled:.1f}s after the SIGSTOP: A {sorted(settled[0])}, "
              f"B {sorted(settled[1])}; coordinator now {new_id} (error {err})")
        # stay frozen past A's session timeout: on waking, the old coordinator's own timers find A's session
        # expired in its stale copy of the group and try to save a rebalance, which the store must fence
        time.sleep(max(2.0, SESSION_MS / 1000 + 2 - (time.monotonic() - t_stop)))

        # The old coordinator wakes up: it must not serve the group it lost, not even for a moment.
        lines_at_resume = len(coord.log_lines())
        coord.resume()
        resumed = True
        hb_a = heartbeat_v0(coord.bootstrap, group, 1, a_member)
        hb_b = heartbeat_v0(coord.bootstrap, group, 1, b.member_ids[-1])
        join = join_group_v0(coord.bootstrap, group, topic)
        print(f"the resumed agent {coord.id} answers Heartbeat(A) {hb_a}, Heartbeat(B) {hb_b}, "
              f"JoinGroup {join}")
        if (hb_a, hb_b, join) != (NOT_COORDINATOR,) * 3:
            # Sound only if it took the group again, legitimately: a fresh lease (the one it held ran out
            # and nobody renewed it since), so a higher coordinator epoch, after the resume.
            retaken = [e for e in _coordinator_epochs(coord, group, since=lines_at_resume) if e > stop_epoch]
            assert retaken, \
                f"the resumed old coordinator served the group it had lost: Heartbeat(A) {hb_a}, Heartbeat(B) " \
                f"{hb_b}, JoinGroup {join} (expected NOT_COORDINATOR {NOT_COORDINATOR}), and it did not take " \
                f"a new lease (coordinator epochs it logged: {_coordinator_epochs(coord, group)}, epoch " \
                f"{stop_epoch} when frozen)\n{coord.log_tail()}"

        def everyone_agrees():
            views = {x.id: find_coordinator(x.bootstrap, group) for x in agents}
            named = {n for e, n in views.values() if e == 0}
            return views if len(named) == 1 and all(e == 0 for e, _ in views.values()) else None

        views = wait_until(everyone_agrees, timeout=15, interval=0.2,
                           what="every agent's FindCoordinator to name one coordinator")
        now_id = next(iter(views.values()))[1]
        print(f"FindCoordinator after the resume ({time.monotonic() - t_stop:.1f}s after the SIGSTOP): {views}")
        if now_id == coord.id:
            # Named while nobody holds the lease (the group's preferred agent), or as the holder: either
            # way it may serve the group only under a lease taken after the resume, at a newer epoch.
            wait_until(lambda: [e for e in _coordinator_epochs(coord, group, since=lines_at_resume)
                                if e > stop_epoch],
                       timeout=10, what=f"the old coordinator {coord.id}, named by every agent, to take the "
                                        f"group again under an epoch above {stop_epoch}")
        else:
            hb_later = heartbeat_v0(coord.bootstrap, group, 1, a_member)
            assert hb_later == NOT_COORDINATOR, \
                f"the old coordinator answers Heartbeat {hb_later} while agent {now_id} coordinates the group"
        history = sorted((e, x.id) for x in agents for e in _coordinator_epochs(x, group))
        stalled = {x.id: len(x.log_lines("leases not renewed in time")) + len(x.log_lines("coordinator lease lost"))
                   for x in others}
        print(f"group coordinator history (epoch, agent): {history}; lease losses on the agents that were "
              f"NOT frozen (informational): {stalled}")
        time.sleep(3)
    finally:
        if not resumed:
            coord_agent = [x for x in agents if x.paused]
            for x in coord_agent:
                x.resume()
        load.stop()

    acked = load.acked()
    # every acknowledged record consumed by the group (at least once across generations)
    def all_consumed():
        got = {v for m in (a, b) for _, _, _, v in m.consumed}
        missing = [i for i in acked if i.encode() not in got]
        return None if missing else True
    try:
        wait_until(all_consumed, timeout=60, interval=0.5, what="the group to consume every acknowledged record")
    finally:
        end = time.monotonic()
        a.stop()
        b.stop()

    got = {v for m in (a, b) for _, _, _, v in m.consumed}
    missing = [i for i in acked if i.encode() not in got]
    dup = sum(len(m.consumed) for m in (a, b)) - len(got)
    print(f"producer: acked {len(acked)}, failed {len(load.failed())}; consumed A {len(a.consumed)} "
          f"B {len(b.consumed)}, redelivered across generations {dup}; member ids A {a.member_ids} "
          f"B {b.member_ids}")
    print("assignment changes: " + "; ".join(f"{t0 - t_stop:+.2f}s {who} {kind} {parts}"
                                            for t0, _, who, kind, parts in sorted(events)))
    assert load.fatal is None and not load.failed(), (load.fatal, load.failed()[:3])
    assert not missing, f"{len(missing)} acknowledged records never consumed, e.g. {missing[:5]}"
    for m in (a, b):
        assert not m.outside, f"{m.name} consumed records of partitions it was not assigned: {m.outside[:5]}"
    ia, ib = _holding_intervals(events, "A", end), _holding_intervals(events, "B", end)
    overlaps = [(p, x, y) for p in range(GROUP_PARTITIONS) for x in ia.get(p, []) for y in ib.get(p, [])
                if x[0] < y[1] and y[0] < x[1]]
    assert not overlaps, "A and B held the same partition at the same time (partition, A's window, B's): " \
        + str([(p, (round(x[0] - t_stop, 2), round(x[1] - t_stop, 2)),
                (round(y[0] - t_stop, 2), round(y[1] - t_stop, 2))) for p, x, y in overlaps[:5]])


# -- 4. clock skew ------------------------------------------------------------------------------------------
SKEW_RUN_S = 30.0


def _clock_offset_supported() -> bool:
    import subprocess

    from cluster_util import resolve_bin

    p = subprocess.run([str(resolve_bin()), "--clock-offset-ms", "1", "--help"], capture_output=True, timeout=30)
    return p.returncode == 0


@pytest.mark.timeout(150)
def test_skewed_agent_clocks_move_no_lease(cluster, unique):
    """One agent's clock runs 5 lease ttls ahead, another's 5 ttls behind (the hidden --clock-offset-ms). On
    PostgreSQL lease expiry is judged by the database server's clock, so for 30 s under load no partition or
    group lease may change hands: every agent's Metadata shows the same (leader, leader epoch) for every
    partition throughout, the group keeps its coordinator, and nothing acknowledged is lost."""
    from churn import GroupReader
    from cluster_util import find_coordinator

    if not _clock_offset_supported():
        pytest.skip("this streamhouse has no --clock-offset-ms")
    skew = 5 * LEASE_TTL_MS
    agents = [cluster.add_agent(lease_ttl_ms=LEASE_TTL_MS),
              cluster.add_agent(lease_ttl_ms=LEASE_TTL_MS, extra_args=["--clock-offset-ms", str(skew)]),
              cluster.add_agent(lease_ttl_ms=LEASE_TTL_MS, extra_args=["--clock-offset-ms", str(-skew)])]
    cluster.start_all()
    topic = unique("skew")
    group = unique("skewgroup")
    cluster.create_topic(topic, PARTITIONS)
    leaders = cluster.wait_all_led(topic, PARTITIONS, settle=2.5, timeout=30)

    def view(a):
        t = a.metadata([topic]).topics[topic]
        return {p: (pm.leader, pm.epoch) for p, pm in t.partitions.items()}

    start = view(agents[0])
    print(f"\nclock offsets: agent 2 {skew:+d} ms, agent 3 {-skew:+d} ms; (leader, epoch) per partition: {start}")
    assert set(leaders.values()) == {a.id for a in agents}, \
        f"not every agent (skewed ones included) leads a partition, so holds a lease: {leaders}"

    load = ProducerLoad(cluster.bootstrap(), topic, PARTITIONS, rate=300).start()
    member = GroupReader(cluster.bootstrap(), topic, group, "m0").start()
    changes: list[str] = []
    coordinators: set[int] = set()
    samples = 0
    try:
        t_end = time.monotonic() + SKEW_RUN_S
        while time.monotonic() < t_end:
            for a in agents:
                try:
                    v = view(a)
                except (OSError, ClusterError) as e:
                    changes.append(f"agent {a.id} metadata failed: {e!r}")
                    continue
                if v != start:
                    changes.append(f"{SKEW_RUN_S - (t_end - time.monotonic()):.1f}s agent {a.id}: "
                                   f"{ {p: x for p, x in v.items() if x != start.get(p)} }")
                err, coord = find_coordinator(a.bootstrap, group)
                if err == 0:
                    coordinators.add(coord)
            samples += 1
            time.sleep(0.5)
    finally:
        load.stop()
        member.stop()

    print(f"{samples} rounds of Metadata from all 3 agents; group coordinators named: {sorted(coordinators)}; "
          f"group consumed {member.consumed}; producer sent {load.sent}, acked {len(load.acked())}, "
          f"failed {len(load.failed())}")
    lost = {a.id: a.log_lines("lost the lease") + a.log_lines("coordinator lease lost") for a in agents}
    coordinating = [ln for a in agents for ln in a.log_lines(f'group="{group}"') if "coordinating group" in ln]
    assert not changes, f"leases changed hands under clock skew: {changes[:8]}"
    assert not any(lost.values()), f"agents lost leases under clock skew: {lost}"
    assert len(coordinators) == 1 and len(coordinating) == 1, \
        f"the group's coordinator moved: FindCoordinator named {coordinators}, logs: {coordinating}"
    assert load.fatal is None and not load.failed(), (load.fatal, load.failed()[:3])
    problems = _exactly_acked(read_back(cluster.bootstrap(), topic, PARTITIONS), load)
    assert not problems, "\n".join(problems)
