"""kafkajs 2.2.4 (pure JavaScript client): admin createTopics + producer acks=-1, verified with a
confluent-kafka assign() consumer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from compat_util import consume_all, skip_unless_group_apis

HERE = os.path.dirname(os.path.abspath(__file__))
N = 1000
BATCH = 100  # produce.js sends batches of 100


def node() -> str:
    path = shutil.which("node")
    if not path:
        pytest.fail("node is not installed", pytrace=False)
    if not os.path.isdir(os.path.join(HERE, "node_modules", "kafkajs")):
        pytest.fail("kafkajs is not installed: run `npm ci` in compat-tests/", pytrace=False)
    return path


@pytest.mark.timeout(90)
def test_kafkajs_create_topic_and_produce(broker, unique):
    topic = unique("kjs")
    env = dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1")
    p = subprocess.run(
        [node(), os.path.join(HERE, "kafkajs", "produce.js"), broker.bootstrap, topic, str(N), "3"],
        capture_output=True, timeout=60, cwd=HERE, env=env, check=False,
    )
    stderr = p.stderr.decode(errors="replace")
    assert p.returncode == 0, f"produce.js exited {p.returncode}\nstderr:\n{stderr}"
    out = json.loads(p.stdout.decode().strip().splitlines()[-1])

    assert out["created"] is True, out
    assert topic in out["topics"]
    assert out["partitions"] == 3
    assert out["sent"] == N
    results = out["results"]
    assert results, out
    for r in results:
        assert r["topicName"] == topic
        assert r["errorCode"] == 0, r

    consumed = consume_all(broker.bootstrap, topic, 3, expected=None, timeout=60)
    total = sum(len(v) for v in consumed.values())
    assert total == N, {p: len(v) for p, v in consumed.items()}

    seqs_seen = set()
    for part, msgs in consumed.items():
        assert [m.offset() for m in msgs] == list(range(len(msgs))), f"partition {part} offsets"
        seqs = []
        for m in msgs:
            seq = int(dict(m.headers())["seq"])
            assert m.key() == f"key-{seq % 31}".encode()
            assert m.value() == f"kafkajs-value-{seq}".encode()
            seqs.append(seq)
        assert seqs == sorted(seqs), f"partition {part}: order differs from send order"
        seqs_seen.update(seqs)
        # each send's RecordMetadata baseOffset points at the first record of that send in part
        by_offset = {m.offset(): int(dict(m.headers())["seq"]) for m in msgs}
        for r in (x for x in results if x["partition"] == part):
            base = int(r["baseOffset"])
            assert base in by_offset, (r, len(msgs))
            first_seq = by_offset[base]
            # the record before the base offset (if any) belongs to an earlier send
            if base > 0:
                assert by_offset[base - 1] // BATCH < first_seq // BATCH, r
    assert seqs_seen == set(range(N))
    # every key landed in exactly one partition
    key_parts = {}
    for part, msgs in consumed.items():
        for m in msgs:
            key_parts.setdefault(m.key(), set()).add(part)
    assert all(len(s) == 1 for s in key_parts.values())


@pytest.mark.timeout(120)
def test_kafkajs_group_consumer(broker, unique):
    """kafkajs only consumes through groups: JoinGroup/SyncGroup/Heartbeat, OffsetCommit, and
    fetchOffsets shows the committed positions at the end of each partition."""
    skip_unless_group_apis(broker.bootstrap)
    topic, group = unique("kjs-grp"), unique("kjs-group")
    env = dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1")
    n = 300
    p = subprocess.run(
        [node(), os.path.join(HERE, "kafkajs", "produce.js"), broker.bootstrap, topic, str(n), "2"],
        capture_output=True, timeout=60, cwd=HERE, env=env, check=False,
    )
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    c = subprocess.run(
        [node(), os.path.join(HERE, "kafkajs", "consume.js"), broker.bootstrap, topic, group, str(n)],
        capture_output=True, timeout=90, cwd=HERE, env=env, check=False,
    )
    stderr = c.stderr.decode(errors="replace")
    assert c.returncode == 0, f"consume.js exited {c.returncode}\n{c.stdout.decode()[-2000:]}\n{stderr}"
    out = json.loads(c.stdout.decode().strip().splitlines()[-1])
    assert out["consumed"] == n
    seqs = sorted(int(m["seq"]) for m in out["messages"])
    assert seqs == list(range(n)), "kafkajs group consumer missed or duplicated messages"
    for m in out["messages"]:
        assert m["value"] == f"kafkajs-value-{m['seq']}"
    per_part = {}
    for m in out["messages"]:
        per_part[m["partition"]] = max(per_part.get(m["partition"], -1), int(m["offset"]))
    [committed] = out["committed"]
    got = {int(x["partition"]): int(x["offset"]) for x in committed["partitions"]}
    assert got == {part: last + 1 for part, last in per_part.items()}, (got, per_part)
