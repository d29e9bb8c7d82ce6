"""The compose topology as processes: three agents on one PostgreSQL database and one S3 bucket, each
with its HTTP API, scraped as Prometheus would scrape them. Every agent answers every API call (writes
go to the leader or coordinator, wherever the call lands), the agents' metrics add up to the cluster the
API describes, a group's lag is exported by its coordinator alone, and after a SIGKILL the survivors'
API shows the cluster healing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from cluster_util import cluster  # noqa: F401
from compat_util import wait_until

PARTITIONS = 6


def call(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"content-type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def scrape(agent) -> str:
    with urllib.request.urlopen(f"{agent.http}/metrics", timeout=10) as r:
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def samples(text: str, name: str) -> dict[str, float]:
    """Every sample of metric `name`: its label set (as written) -> value."""
    out = {}
    for m in re.finditer(rf"^{name}(\{{[^}}]*\}})? (\S+)$", text, re.M):
        out[m.group(1) or ""] = float(m.group(2))
    return out


@pytest.mark.timeout(180)
def test_three_agents_answer_alike_and_their_metrics_add_up(cluster, unique):
    agents = cluster.add_agents(3, lease_ttl_ms=3000)
    cluster.start_all()
    topic = unique("ops")
    status, created = call("POST", f"{agents[1].http}/api/v1/topics", {"name": topic, "partitions": PARTITIONS})
    assert status == 201, created
    cluster.wait_all_led(topic, PARTITIONS)

    # Every partition written through every agent: two of three calls reach a non-leader.
    for p in range(PARTITIONS):
        for a in agents:
            status, r = call("POST", f"{a.http}/api/v1/produce", {"topic": topic, "partition": p, "value": f"via-{a.id}"})
            assert status == 200, (p, a, r)
    produced = PARTITIONS * len(agents)
    for a in agents:
        status, page = call("GET", f"{a.http}/api/v1/topics/{topic}/partitions/0/messages")
        assert [m["value"] for m in page["messages"]] == [f"via-{x.id}" for x in agents]

    group = unique("ops-group")
    c = Consumer({"bootstrap.servers": cluster.bootstrap(), "group.id": group, "enable.auto.commit": False})

    def committed():
        # A consumer that never polled may not know its coordinator yet (_WAIT_COORD): retry, as apps do.
        try:
            c.commit(offsets=[TopicPartition(topic, p, 1) for p in range(PARTITIONS)], asynchronous=False)
            return True
        except KafkaException:
            c.poll(0.2)
            return False

    wait_until(committed, timeout=30, what="the group's offsets committed")
    c.close()
    lag = produced - PARTITIONS

    summaries = [call("GET", f"{a.http}/api/v1/cluster")[1] for a in agents]
    for s in summaries:
        assert (s["agents"], s["partitions"], s["leaderless_partitions"], s["messages"]) == (3, PARTITIONS, 0, produced)
    assert {s["agent_id"] for s in summaries} == {a.id for a in agents}
    status, listed = call("GET", f"{agents[2].http}/api/v1/agents")
    assert sorted(x["address"] for x in listed) == sorted(a.bootstrap for a in agents)
    assert sum(x["partitions_led"] for x in listed) == PARTITIONS
    assert call("GET", f"{agents[0].http}/api/v1/groups/{group}")[1]["lag"] == lag

    def metrics_add_up():
        texts = [scrape(a) for a in agents]
        led = sum(sum(samples(t, "streamhouse_partitions_led").values()) for t in texts)
        records_in = sum(sum(v for k, v in samples(t, "streamhouse_topic_records_in_total").items() if topic in k)
                         for t in texts)
        lags = [samples(t, "streamhouse_consumer_group_total_lag") for t in texts]
        exporting = [x for x in lags if any(group in k for k in x)]
        return (led == PARTITIONS and records_in == produced and len(exporting) == 1
                and sum(v for k, v in exporting[0].items() if group in k) == lag)

    # Group lag is computed at scrape time; the other figures are counted as they happen.
    wait_until(metrics_add_up, timeout=30, what="the agents' metrics to add up to the cluster")
    promtool = shutil.which("promtool")
    if promtool:
        for a in agents:
            r = subprocess.run([promtool, "check", "metrics"], input=scrape(a), capture_output=True, text=True)
            assert r.returncode == 0, r.stdout + r.stderr

    # One agent dies: the others' API shows it gone and every partition led again.
    agents[0].kill()
    survivors = agents[1:]
    wait_until(lambda: call("GET", f"{survivors[0].http}/api/v1/cluster")[1]["agents"] == 2, timeout=30,
               what="the dead agent's registration to expire")
    wait_until(lambda: call("GET", f"{survivors[1].http}/api/v1/cluster")[1]["leaderless_partitions"] == 0,
               timeout=30, what="every partition led again")
    for p in range(PARTITIONS):
        status, r = call("POST", f"{survivors[0].http}/api/v1/produce", {"topic": topic, "partition": p, "value": "after"})
        assert status == 200, r
    assert call("GET", f"{survivors[1].http}/api/v1/topics/{topic}")[1]["messages"] == produced + PARTITIONS
    assert call("GET", f"{survivors[1].http}/health/ready")[0] == 200
