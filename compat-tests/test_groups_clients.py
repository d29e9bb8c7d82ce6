"""Consumer groups with the other client families, each with its DEFAULT assignors: kafka-python
(range, roundrobin), kafkajs (round robin) and the Java kafka-clients 3.9.1 (range,
cooperative-sticky: the classic eager protocol).

The same scenario for each: a member joins, then a second one, and the two split the topic; N
records are produced and consumed, each poll's records committed synchronously; one member leaves
and the other takes every partition; N more records; a NEW member joins and the two split the
partitions again; N more.
Checked from the members' own log of deliveries and commits: every record consumed exactly once,
the new member resumes exactly at the committed offsets (no committed record again, nothing
skipped), commits only move forward and end at the high watermarks (also as the broker reports
them to confluent-kafka's AdminClient). No record is produced while the membership changes, so
even eager rebalances cannot legitimately cause a duplicate here."""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import time

import pytest

from compat_util import create_topic
from test_groups import broker_committed, group_broker, hw_of  # noqa: F401 - fixture

HERE = os.path.dirname(os.path.abspath(__file__))
PARTS = 4
N = 400


def check_two_member_run(events, b, topic, group, names=("A", "B", "B2")):
    first, second, new = names
    recs = [e for e in events if e["ev"] == "rec"]
    ends = {e["phase"]: {int(p): o for p, o in e["end"].items()} for e in events if e["ev"] == "phase"}
    assert sorted(ends) == [1, 2, 3], f"phases that ran: {sorted(ends)}"
    hw = hw_of(b.bootstrap, topic, PARTS)
    assert sum(hw.values()) == 3 * N and ends[3] == hw, (hw, ends)

    # every record exactly once, each consumed in the phase that produced it
    count = collections.Counter((r["p"], r["o"]) for r in recs)
    dups = sorted(k for k, v in count.items() if v > 1)
    assert not dups, f"{len(dups)} records consumed twice, e.g. {dups[:10]}"
    assert set(count) == {(p, o) for p in range(PARTS) for o in range(hw[p])}, (
        f"missing {sorted({(p, o) for p in range(PARTS) for o in range(hw[p])} - set(count))[:10]}")
    for r in recs:
        assert r["v"].startswith(f"p{r['phase']}-"), r

    # who had which partitions
    def last_assignment(member, phase):
        a = [e["parts"] for e in events if e["ev"] == "assign" and e["m"] == member
             and e["phase"] == phase]
        return set(a[-1]) if a else set()

    a1, b1 = last_assignment(first, 1), last_assignment(second, 1)
    assert a1 and b1 and not (a1 & b1) and a1 | b1 == set(range(PARTS)), (a1, b1)
    assert last_assignment(first, 2) == set(range(PARTS))
    a3, b3 = last_assignment(first, 3), last_assignment(new, 3)
    assert a3 and b3 and not (a3 & b3) and a3 | b3 == set(range(PARTS)), (a3, b3)
    by = collections.defaultdict(set)
    for r in recs:
        by[(r["m"], r["phase"])].add(r["p"])
    assert by[(first, 1)] == a1 and by[(second, 1)] == b1, dict(by)
    assert by[(first, 2)] == set(range(PARTS)) and (second, 2) not in by
    assert by[(first, 3)] == a3 and by[(new, 3)] == b3, dict(by)

    # the new member starts exactly where the group had committed (end of phase 2)
    for p in b3:
        offs = sorted(r["o"] for r in recs if r["m"] == new and r["p"] == p)
        assert offs[0] == ends[2][p] and offs == list(range(ends[2][p], hw[p])), (p, offs[:5])

    # commits move forward only and end at the high watermarks
    commits = [e for e in events if e["ev"] == "commit"]
    failed = [e for e in events if e["ev"] == "commit_failed"]
    assert not failed, failed[:5]
    last = {}
    for c in commits:
        assert c["o"] >= last.get(c["p"], 0), (c, last)
        last[c["p"]] = c["o"]
    assert last == hw
    assert broker_committed(b.bootstrap, group, topic, PARTS) == hw


# ---- kafka-python ------------------------------------------------------------------------------------
class KPMember:
    """A kafka-python KafkaConsumer polled by its own thread (poll(timeout_ms=1000): a join or
    sync in flight is awaited within one poll; kafka-python 3.0.12 starts a fresh JoinGroup when a
    join it stopped awaiting completes between two polls)."""

    def __init__(self, name, b, topic, group, events, lock, phase):
        import threading

        from kafka import KafkaConsumer

        self.name, self.topic, self.events, self.lock, self.phase = name, topic, events, lock, phase
        self.assigned = None
        self.error = None
        self.stop_evt = threading.Event()
        self.c = KafkaConsumer(topic, bootstrap_servers=b.bootstrap, group_id=group,
                               client_id=f"compat-kp-{name}", auto_offset_reset="earliest",
                               enable_auto_commit=False, session_timeout_ms=6000,
                               heartbeat_interval_ms=1000, max_poll_interval_ms=20000,
                               fetch_max_wait_ms=100, request_timeout_ms=30000)
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"kp-{name}")
        self.thread.start()

    def _log(self, ev):
        with self.lock:
            self.events.append(ev)

    def _run(self):
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        try:
            while not self.stop_evt.is_set():
                batch = self.c.poll(timeout_ms=1000)
                now = sorted(tp.partition for tp in self.c.assignment())
                if now != self.assigned:
                    self.assigned = now
                    self._log({"ev": "assign", "m": self.name, "phase": self.phase["n"],
                               "parts": now})
                offsets = {}
                for records in batch.values():
                    for r in records:
                        self._log({"ev": "rec", "m": self.name, "phase": self.phase["n"],
                                   "p": r.partition, "o": r.offset, "v": r.value.decode()})
                        offsets[TopicPartition(self.topic, r.partition)] = \
                            OffsetAndMetadata(r.offset + 1, "", -1)
                if not offsets:
                    continue
                try:
                    self.c.commit(offsets)
                except Exception as e:  # noqa: BLE001 - recorded, asserted on later
                    self._log({"ev": "commit_failed", "m": self.name, "error": repr(e)})
                    continue
                for tp, om in offsets.items():
                    self._log({"ev": "commit", "m": self.name, "p": tp.partition, "o": om.offset})
        except Exception as e:  # noqa: BLE001 - reported by close()
            self.error = repr(e)
        finally:
            self.c.close()  # LeaveGroup

    def close(self):
        self.stop_evt.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), f"kafka-python member {self.name} did not close"
        assert self.error is None, f"kafka-python member {self.name}: {self.error}"


@pytest.mark.timeout(120)
def test_kafka_python_two_members_leave_and_new_member(group_broker, unique):
    import threading

    from kafka import KafkaProducer

    b = group_broker
    topic, group = unique("kp-grp2"), unique("kp-g2")
    create_topic(b.bootstrap, topic, partitions=PARTS)
    events, lock, phase = [], threading.Lock(), {"n": 1}

    def wait_for(what, cond, timeout=30):
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, (
                f"phase {phase['n']}: {what}; assignments "
                f"{ {m.name: m.assigned for m in members.values()} }")
            time.sleep(0.05)

    def split():
        a = [set(m.assigned or ()) for m in members.values()]
        return all(a) and sum(map(len, a)) == PARTS and set().union(*a) == set(range(PARTS))

    def committed_reached(end):
        with lock:
            done = {}
            for e in events:
                if e["ev"] == "commit":
                    done[e["p"]] = max(done.get(e["p"], 0), e["o"])
        return all(done.get(p, 0) >= o for p, o in end.items())

    producer = KafkaProducer(bootstrap_servers=b.bootstrap, acks="all", linger_ms=5,
                             request_timeout_ms=20000, max_block_ms=20000)

    def produce(tag):
        futs = [producer.send(topic, value=f"{tag}-{i}".encode(), partition=i % PARTS)
                for i in range(N)]
        producer.flush(timeout=30)
        end = {}
        for f in futs:
            md = f.get(timeout=30)
            end[md.partition] = max(end.get(md.partition, 0), md.offset + 1)
        return end

    def member(name):
        return KPMember(name, b, topic, group, events, lock, phase)

    members = {}
    try:
        # B joins once A holds the group (a concurrent first use of a new group is G2's race,
        # tested in test_groups.py)
        members["A"] = member("A")
        wait_for("A alone holds every partition", split)
        members["B"] = member("B")
        wait_for("A and B split the partitions", split)
        end = produce("p1")
        with lock:
            events.append({"ev": "phase", "phase": 1, "end": end})
        wait_for("phase 1 commits", lambda: committed_reached(end))

        phase["n"] = 2
        members.pop("B").close()
        wait_for("A takes every partition", split)
        end = produce("p2")
        with lock:
            events.append({"ev": "phase", "phase": 2, "end": end})
        wait_for("phase 2 commits", lambda: committed_reached(end))

        phase["n"] = 3
        members["B2"] = member("B2")
        wait_for("A and B2 split the partitions", split)
        end = produce("p3")
        with lock:
            events.append({"ev": "phase", "phase": 3, "end": end})
        wait_for("phase 3 commits", lambda: committed_reached(end))
    finally:
        phase["n"] = 4  # what happens while the members close is not part of phase 3
        for m in members.values():
            m.close()
        producer.close(timeout=10)
    check_two_member_run(events, b, topic, group)


# ---- kafkajs ---------------------------------------------------------------------------------------
def node() -> str:
    path = shutil.which("node")
    if not path:
        pytest.fail("node is not installed", pytrace=False)
    if not os.path.isdir(os.path.join(HERE, "node_modules", "kafkajs")):
        pytest.fail("kafkajs is not installed: run `npm ci` in compat-tests/", pytrace=False)
    return path


def parse_events(stdout):
    events, problems = [], []
    for line in stdout.splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
        elif line.startswith("PROBLEM"):
            problems.append(line)
    return events, problems


@pytest.mark.timeout(150)
def test_kafkajs_two_members_leave_and_new_member(group_broker, unique):
    b = group_broker
    topic, group = unique("kjs-grp2"), unique("kjs-g2")
    create_topic(b.bootstrap, topic, partitions=PARTS)
    env = dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1")
    p = subprocess.run(
        [node(), os.path.join(HERE, "kafkajs", "group_members.js"), b.bootstrap, topic, group,
         str(PARTS), str(N)],
        capture_output=True, timeout=140, cwd=HERE, env=env, check=False)
    stdout, stderr = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    events, problems = parse_events(stdout)
    assert p.returncode == 0 and not problems and events and events[-1]["ev"] == "done", (
        f"group_members.js exited {p.returncode}: {problems}\n{stdout[-1500:]}\n{stderr[-3000:]}")
    check_two_member_run(events, b, topic, group)


# ---- Java -------------------------------------------------------------------------------------------
@pytest.mark.timeout(150)
def test_java_two_members_leave_and_new_member(group_broker, unique):
    from test_java import BUILD_DIR, classpath

    b = group_broker
    cp = classpath()
    if not os.path.exists(os.path.join(BUILD_DIR, "streamhouse", "compat", "GroupMembers.class")):
        pytest.fail("GroupMembers.java is not compiled (run scripts/test.sh)", pytrace=False)
    topic, group = unique("java-grp2"), unique("java-g2")
    create_topic(b.bootstrap, topic, partitions=PARTS)
    p = subprocess.run(["java", "-Xmx512m", "-cp", cp, "streamhouse.compat.GroupMembers",
                        b.bootstrap, topic, group, str(PARTS), str(N)],
                       capture_output=True, timeout=140, check=False)
    stdout, stderr = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    events, problems = parse_events(stdout)
    assert p.returncode == 0 and not problems and events and events[-1]["ev"] == "done", (
        f"GroupMembers exited {p.returncode}: {problems}\n{stdout[-1500:]}\n{stderr[-3000:]}")
    check_two_member_run(events, b, topic, group)
