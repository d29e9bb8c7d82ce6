"""Rolling restart: three agents are restarted one at a time (SIGTERM, exit code 0, start again) while an
idempotent acks=all producer writes and a two-member consumer group reads. Nothing acknowledged is lost,
offsets stay dense with no duplicate, every delivery report succeeds, the consumers see every record and
no error beyond the client's own retries reaches the application."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from cluster_util import ProducerLoad, check_exactly_acked, cluster, read_back  # noqa: F401

PARTITIONS = 6
# error_cb codes that are the client reporting its own retries (a broker went away and came back)
RETRY_NOISE = {"_TRANSPORT", "_ALL_BROKERS_DOWN"}


class GroupMember(threading.Thread):
    def __init__(self, bootstrap: str, group: str, topic: str, name: str):
        super().__init__(daemon=True)
        from confluent_kafka import Consumer

        self.name = name
        self.errors: list[str] = []          # error_cb
        self.msg_errors: list[str] = []      # errors delivered as messages
        self.assignments: list[list[int]] = []
        self.values: list[tuple[int, int, str]] = []
        self.stop_flag = threading.Event()
        self.c = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": name,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 500,
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000,
            "socket.timeout.ms": 10000,
            "error_cb": lambda e: self.errors.append(f"{e.name()} {e.str()} fatal={e.fatal()}"),
        })
        self.c.subscribe([topic], on_assign=lambda c, ps: self.assignments.append(
            sorted(p.partition for p in ps)))

    def run(self):
        while not self.stop_flag.is_set():
            for m in self.c.consume(num_messages=500, timeout=0.2):
                if m.error():
                    self.msg_errors.append(f"{m.error().name()} {m.error().str()}")
                else:
                    self.values.append((m.partition(), m.offset(), m.value().decode()))
        self.c.close()


@pytest.mark.timeout(180)
def test_rolling_restart_under_produce_and_group_consume(cluster, unique):
    agents = cluster.add_agents(3, lease_ttl_ms=3000)
    cluster.start_all()
    topic = unique("rolling")
    cluster.create_topic(topic, PARTITIONS)
    cluster.wait_all_led(topic, PARTITIONS, settle=2.0)
    bootstrap = cluster.bootstrap()
    group = f"rolling-{uuid.uuid4().hex[:8]}"
    members = [GroupMember(bootstrap, group, topic, f"member-{i}") for i in range(2)]
    for m in members:
        m.start()
    load = ProducerLoad(bootstrap, topic, PARTITIONS, rate=300).start()
    time.sleep(2)

    restarts = []
    for a in agents:
        t0 = time.monotonic()
        rc = a.stop()
        t_stop = time.monotonic() - t0
        assert rc == 0, f"agent {a.id} exited with {rc} after SIGTERM\n{a.log_tail()}"
        others = [x for x in agents if x is not a]
        cluster.wait_all_led(topic, PARTITIONS, via=others, allowed={x.id for x in others}, timeout=15)
        t_moved = time.monotonic() - t0
        a.start()
        cluster.wait_all_led(topic, PARTITIONS, timeout=20, settle=1.0)
        restarts.append((a.id, round(t_stop, 2), round(t_moved, 2)))
        time.sleep(0.5)
    time.sleep(1)
    load.stop()
    acked = load.acked()

    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        seen = {v for m in members for _, _, v in m.values}
        if all(i in seen for i in acked):
            break
        time.sleep(0.3)
    for m in members:
        m.stop_flag.set()
    for m in members:
        m.join(timeout=20)

    consumed = [v for m in members for _, _, v in m.values]
    seen = set(consumed)
    print(f"\nrestarts (agent, SIGTERM->exit s, SIGTERM->all partitions led elsewhere s): {restarts}")
    print(f"producer: sent {load.sent}, acked {len(acked)}, failed {len(load.failed())}, longest "
          f"per-partition gap {max(load.max_gap(p) for p in range(PARTITIONS)):.2f}s")
    print(f"group: consumed {len(consumed)} ({len(consumed) - len(seen)} redelivered after "
          f"rebalances), assignments {[m.assignments for m in members]}")
    print(f"client error_cb (informational): producer {load.client_errors[:4]} consumers "
          f"{[m.errors[:4] for m in members]}")

    assert load.fatal is None, load.fatal
    assert not load.failed(), f"{len(load.failed())} deliveries failed, e.g. {load.failed()[:5]}"
    for who, errs in [("producer", load.client_errors)] + [(m.name, m.errors) for m in members]:
        surfaced = [e for e in errs if e.split()[0] not in RETRY_NOISE or "fatal=True" in e]
        assert not surfaced, f"{who} saw errors beyond client retries: {surfaced}"
    for m in members:
        assert not m.msg_errors, f"{m.name} got errors from consume(): {m.msg_errors[:5]}"
    missing = [i for i in acked if i not in seen]
    assert not missing, f"the group never received {len(missing)} acknowledged messages: {missing[:5]}"
    assert all(m.assignments and m.assignments[-1] for m in members), \
        f"both members should end with partitions: {[m.assignments for m in members]}"

    records = read_back(cluster.bootstrap(), topic, PARTITIONS)
    problems = check_exactly_acked(records, acked)
    assert not problems, "\n".join(problems)
