"""Java kafka-clients 3.9.1 and kafkajs 2.2.4 across a leader failover: three agents; each client's
producer writes continuously (Java: default settings, acks=all + idempotent; kafkajs: idempotent, acks=-1)
while its consumer reads (Java: assign(); kafkajs: a consumer group), and a partition leader is SIGKILLed
mid-stream (Java: the leader of partition 0; kafkajs: the agent that also coordinates its group). Every
send succeeds (the clients' own retries ride over the failover), the consumer sees every acknowledged
value, and the partitions hold exactly the values sent, densely, once each. Drivers:
java/src/streamhouse/compat/FailoverProduceConsume.java and kafkajs/failover.js."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
import uuid

import pytest

from cluster_util import cluster, find_coordinator, read_back  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
JARS = ["kafka-clients", "lz4-java", "snappy-java", "zstd-jni", "slf4j-api"]


def classpath() -> str:
    """The kafka-clients jars and the compiled drivers (scripts/test.sh fetches and compiles them)."""
    jar_dir, build = os.path.join(HERE, ".tools", "java"), os.path.join(HERE, "java", "build")
    missing = [j for j in JARS if not os.path.exists(os.path.join(jar_dir, f"{j}.jar"))]
    if missing:
        pytest.fail(f"missing jars in {jar_dir}: {missing} (run scripts/test.sh)", pytrace=False)
    if not os.path.exists(os.path.join(build, "streamhouse", "compat", "FailoverProduceConsume.class")):
        pytest.fail(f"FailoverProduceConsume not compiled into {build} (run scripts/test.sh)", pytrace=False)
    if not shutil.which("java"):
        pytest.fail("java is not installed", pytrace=False)
    return os.pathsep.join([os.path.join(jar_dir, f"{j}.jar") for j in JARS] + [build])


def node() -> str:
    path = shutil.which("node")
    if not path:
        pytest.fail("node is not installed", pytrace=False)
    if not os.path.isdir(os.path.join(HERE, "node_modules", "kafkajs")):
        pytest.fail("kafkajs is not installed: run `npm ci` in compat-tests/", pytrace=False)
    return path
PARTITIONS = 6
COUNT = 2400
RATE = 200  # messages/s: about 12 s of producing, the kill 2 s in


def run_with_kill(cluster, cmd, topic, timeout=110, choose_victim=None):
    """Runs the driver; once it prints STARTED, waits 2 s and SIGKILLs the leader of partition 0 (or
    the agent choose_victim() returns). Returns (exit code, stdout lines, stderr, victim agent)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=HERE, text=True,
                         env=dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1"))
    lines: "queue.Queue[str | None]" = queue.Queue()
    err_chunks: list[str] = []

    def pump_out():
        for line in p.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump_out, daemon=True).start()
    def pump_err():
        with open(cluster.workdir / "driver.stderr", "w") as f:
            for line in p.stderr:
                f.write(line)
                f.flush()
                err_chunks.append(line)

    threading.Thread(target=pump_err, daemon=True).start()
    out, victim = [], None
    deadline = time.monotonic() + timeout
    try:
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                break
            out.append(line)
            if line == "STARTED" and victim is None:
                time.sleep(2)
                victim = choose_victim() if choose_victim else cluster.agent(cluster.leader_of(topic, 0))
                led = sorted(p for p, l in cluster.leaders(topic).items() if l == victim.id)
                victim.kill()
                print(f"\nSIGKILLed agent {victim.id}, leader of {topic} partitions {led}")
        rc = p.wait(timeout=max(1, deadline - time.monotonic()))
    except (queue.Empty, subprocess.TimeoutExpired):
        p.kill()
        p.wait()
        raise AssertionError(f"driver timed out; stdout so far {out[-10:]}")
    time.sleep(0.2)
    return rc, out, "".join(err_chunks), victim


def verify_topic(cluster, topic, prefix):
    live = [a for a in cluster.agents.values() if a.alive()]
    records = read_back(cluster.bootstrap(live), topic, PARTITIONS)
    values = []
    for part, recs in records.items():
        offsets = [o for o, _ in recs]
        assert offsets == list(range(len(recs))), f"partition {part}: offsets not dense"
        values += [v.decode() for _, v in recs]
    assert len(values) == len(set(values)), f"{len(values) - len(set(values))} values stored twice"
    assert set(values) == {f"{prefix}-{i}" for i in range(COUNT)}, \
        f"stored {len(set(values))} distinct values, expected exactly the {COUNT} sent"


def start_cluster(cluster, unique, name):
    cluster.add_agents(3, lease_ttl_ms=3000)
    cluster.start_all()
    topic = unique(name)
    cluster.create_topic(topic, PARTITIONS)
    cluster.wait_all_led(topic, PARTITIONS, settle=2.0)
    return topic


@pytest.mark.timeout(150)
def test_java_clients_across_leader_failover(cluster, unique):
    cp = classpath()
    topic = start_cluster(cluster, unique, "java-failover")
    rc, out, err, victim = run_with_kill(
        cluster, ["java", "-Xmx256m", "-cp", cp, "streamhouse.compat.FailoverProduceConsume",
                  cluster.bootstrap(), topic, str(COUNT), str(RATE), str(PARTITIONS)], topic)
    result = [ln for ln in out if ln.startswith("RESULT ")]
    problems = [ln for ln in out if ln.startswith("PROBLEM ")]
    print("\n".join(result + problems))
    assert victim is not None, f"the driver never printed STARTED\n{out}\n{err[-3000:]}"
    assert rc == 0 and result, f"driver exited {rc}\n{out[-20:]}\nstderr tail:\n{err[-3000:]}"
    res = dict(kv.split("=", 1) for kv in result[0][len("RESULT "):].split())
    assert res["acked"] == str(COUNT) and res["send_errors"] == "0", res
    verify_topic(cluster, topic, "java")
    assert res["missing"] == "0" and res["duplicates"] == "0", res


@pytest.mark.timeout(150)
def test_kafkajs_across_leader_failover(cluster, unique):
    nodejs = node()
    topic = start_cluster(cluster, unique, "kjs-failover")
    group = f"kjs-failover-{uuid.uuid4().hex[:8]}"

    def coordinator_and_leader():
        # The agent that coordinates the kafkajs group (it leads partitions too): kafkajs then also has
        # to find the new coordinator, and its consumer restarts as a new member when the coordinator
        # stays unreachable; the group must drop the dead member after its session timeout
        # (FINDINGS.md, cluster #2).
        err, coord = find_coordinator(cluster.live()[0].bootstrap, group)
        assert err == 0, f"FindCoordinator({group}) failed with error {err}"
        assert coord in cluster.leaders(topic).values(), "the coordinator leads no partition"
        return cluster.agent(coord)

    rc, out, err, victim = run_with_kill(
        cluster, [nodejs, os.path.join(HERE, "kafkajs", "failover.js"), cluster.bootstrap(), topic,
                  str(COUNT), str(RATE), str(PARTITIONS), group], topic,
        choose_victim=coordinator_and_leader)
    assert victim is not None, f"the driver never printed STARTED\n{out}\n{err[-3000:]}"
    assert out and out[-1].startswith("{"), f"driver exited {rc}: {out[-10:]}\n{err[-3000:]}"
    res = json.loads(out[-1])
    print(json.dumps(res))
    verify_topic(cluster, topic, "kjs")
    assert rc == 0, f"driver exited {rc}: {res}\n{err[-3000:]}"
    assert res["acked"] == COUNT and res["sendErrors"] == 0, res
    assert res["missing"] == 0, f"{res}\nkafkajs log tail:\n{err[-4000:]}"
    # kafkajs keeps calling the dead coordinator (it asks FindCoordinator again only on
    # NOT_COORDINATOR-like errors), so its consumer "crashes" with restart=true after its retries and
    # rejoins as a new member: its built-in recovery. A crash it does not restart from is a failure.
    fatal = [e for e in res["errors"] if e.startswith("consumer crash") and "restart=true" not in e]
    assert not fatal, f"the kafkajs consumer crashed for good: {res['errors']}"
