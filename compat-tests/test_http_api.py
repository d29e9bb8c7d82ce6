"""The HTTP API next to real Kafka clients: messages sent over HTTP are what consumers read, on the
partition Kafka's own (murmur2) partitioner picks; a group with a live consumer shows its members and
assignments, and refuses delete and reset until the consumer leaves.

Endpoint-by-endpoint checks live in broker/tests/http_api.rs; these need real clients and processes.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest
from confluent_kafka import Consumer, Producer

from compat_util import wait_until

pytestmark = pytest.mark.needs_process


def call(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"content-type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_http_messages_land_where_java_puts_them_and_consumers_read_them(broker):
    topic = f"http-{uuid.uuid4().hex[:8]}"
    status, created = call("POST", f"{broker.http}/api/v1/topics", {"name": topic, "partitions": 6})
    assert status == 201, created
    keys = [f"user-{i}" for i in range(30)]
    placed = {}
    for k in keys:
        status, r = call("POST", f"{broker.http}/api/v1/produce",
                         {"topic": topic, "key": k, "value": {"key": k}, "headers": {"source": "http"}})
        assert status == 200, r
        placed[k] = r["partition"]
    assert len(set(placed.values())) > 1, "keys spread over partitions"

    # librdkafka's murmur2_random is Java's default partitioner: the same key, the same partition.
    p = Producer({"bootstrap.servers": broker.bootstrap, "partitioner": "murmur2_random"})
    java_placed = {}
    for k in keys:
        p.produce(topic, key=k.encode(), value=b"java",
                  on_delivery=lambda err, m: java_placed.__setitem__(m.key().decode(), m.partition()))
    assert p.flush(30) == 0
    assert java_placed == placed

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"g-{topic}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    seen = {}
    try:
        wait_until(lambda: _poll_into(c, seen) >= 2 * len(keys), timeout=30, what="all messages consumed")
    finally:
        c.close()
    http_values = {k: v for (k, v, _) in seen.values() if v != "java"}
    assert http_values == {k: json.dumps({"key": k}, separators=(",", ":")) for k in keys}
    assert all(h == [("source", b"http")] for (_, v, h) in seen.values() if v != "java")


def _poll_into(c: Consumer, seen: dict) -> int:
    m = c.poll(0.5)
    if m is not None and m.error() is None:
        seen[(m.partition(), m.offset())] = (m.key().decode(), m.value().decode(), m.headers())
    return len(seen)


def test_a_live_group_is_described_and_protected(broker):
    topic = f"grp-{uuid.uuid4().hex[:8]}"
    group = f"g-{topic}"
    call("POST", f"{broker.http}/api/v1/topics", {"name": topic, "partitions": 3})
    for i in range(9):
        call("POST", f"{broker.http}/api/v1/produce", {"topic": topic, "partition": i % 3, "value": str(i)})

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "client.id": "http-api-test",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    try:
        got = []
        wait_until(lambda: (m := c.poll(0.5)) is None or m.error() or got.append(m) or len(got) >= 9,
                   timeout=30, what="nine messages")
        c.commit(asynchronous=False)
        status, g = call("GET", f"{broker.http}/api/v1/groups/{group}")
        assert status == 200, g
        assert g["state"] == "Stable"
        assert [m["client_id"] for m in g["members"]] == ["http-api-test"]
        assigned = sorted(p for a in g["members"][0]["assignments"] if a["topic"] == topic for p in a["partitions"])
        assert assigned == [0, 1, 2]
        assert g["lag"] == 0
        assert all(o["member_id"] == g["members"][0]["member_id"] for o in g["offsets"])

        status, r = call("DELETE", f"{broker.http}/api/v1/groups/{group}")
        assert (status, r["error"]["code"]) == (409, "NON_EMPTY_GROUP")
        status, r = call("POST", f"{broker.http}/api/v1/groups/{group}/reset-offsets",
                         {"topic": topic, "to": "earliest", "execute": True})
        assert (status, r["error"]["code"]) == (409, "NON_EMPTY_GROUP")
        status, listed = call("GET", f"{broker.http}/api/v1/groups")
        mine = [x for x in listed["groups"] if x["group"] == group]
        assert mine and mine[0]["members"] == 1 and mine[0]["state"] == "Stable"
    finally:
        c.close()

    wait_until(lambda: call("GET", f"{broker.http}/api/v1/groups/{group}")[1]["state"] == "Empty",
               timeout=20, what="the group empties once its consumer leaves")
    status, r = call("POST", f"{broker.http}/api/v1/groups/{group}/reset-offsets",
                     {"topic": topic, "to": "earliest", "execute": True})
    assert status == 200, r
    assert call("GET", f"{broker.http}/api/v1/groups/{group}")[1]["lag"] == 9
    # The reset is what a restarted consumer starts from.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False})
    c.subscribe([topic])
    try:
        again = []
        wait_until(lambda: (m := c.poll(0.5)) is None or m.error() or again.append(m) or len(again) >= 9,
                   timeout=30, what="the nine messages again")
    finally:
        c.close()
    status, r = call("DELETE", f"{broker.http}/api/v1/groups/{group}")
    assert (status, r) == (200, {"deleted": group})


def test_json_logs_are_one_object_per_line(tmp_path):
    """--log-format json, for log shippers: every line the agent writes parses as JSON."""
    import subprocess
    import time

    from procs import broker_bin, free_port, port_accepts

    port, http = free_port(), free_port()
    proc = subprocess.Popen([str(broker_bin()), "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path),
                             "--http-listen", f"127.0.0.1:{http}", "--console-listen", "off",
                             "--log-format", "json"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: port_accepts("127.0.0.1", http), timeout=30, what="the agent to listen")
        time.sleep(0.2)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines, "the agent logged nothing"
    events = [json.loads(ln) for ln in lines]
    assert all({"timestamp", "level", "fields"} <= e.keys() for e in events), events[:3]
    messages = [e["fields"].get("message", "") for e in events]
    assert any("HTTP API listening" in m for m in messages), messages
    assert any("shutdown complete" in m for m in messages), messages
