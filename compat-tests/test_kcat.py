"""kcat 1.7.1 (librdkafka 2.0.2, Debian's package): an OLD client that apt users get."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from compat_util import create_topic, high_watermarks

N = 10_000


def kcat() -> str:
    path = shutil.which("kcat")
    if not path:
        pytest.fail("kcat is not installed (apt-get install -y kcat)", pytrace=False)
    return path


def run_kcat(args, stdin: bytes | None = None, timeout: float = 60):
    p = subprocess.run(
        [kcat(), *args], input=stdin, capture_output=True, timeout=timeout, check=False
    )
    return p


def _produce(broker, topic, lines: list[str], extra: list[str]):
    payload = ("\n".join(lines) + "\n").encode()
    p = run_kcat(
        ["-b", broker.bootstrap, "-P", "-t", topic, "-p", "0", "-K:",
         "-H", "h1=v1", "-H", "trace=abc-123", *extra],
        stdin=payload,
    )
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0, f"kcat -P exited {p.returncode}: {err}"
    assert "Delivery failed" not in err and "ERROR" not in err, err
    return err


def _consume(broker, topic, fmt="%k:%s:%h:%o\\n"):
    p = run_kcat(
        ["-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e",
         "-f", fmt.replace("\\n", "\n"), "-X", "check.crcs=true"],
    )
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0, f"kcat -C exited {p.returncode}: {err}"
    return p.stdout.decode().splitlines()


@pytest.mark.timeout(120)
def test_kcat_produce_consume_10k_with_keys_and_headers(broker, unique):
    topic = unique("kcat")
    create_topic(broker.bootstrap, topic, partitions=1)
    lines = [f"key-{i:05d}:value-{i:05d}-{'x' * (i % 37)}" for i in range(N)]
    _produce(broker, topic, lines, [])

    out = _consume(broker, topic)
    assert len(out) == N, f"expected {N} messages, kcat printed {len(out)}"
    for i, line in enumerate(out):
        key, value, headers, offset = line.split(":")
        assert key == f"key-{i:05d}", line
        assert value == f"value-{i:05d}-{'x' * (i % 37)}", line
        assert headers == "h1=v1,trace=abc-123", line
        assert int(offset) == i, line
    # ListOffsets agrees with what kcat read
    assert high_watermarks(broker.bootstrap, topic, 1)[0] == (0, N)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_kcat_idempotent_compressed(broker, unique, codec):
    """The old librdkafka's idempotent producer (InitProducerId, sequence numbers) with compression."""
    topic = unique(f"kcat-{codec}")
    create_topic(broker.bootstrap, topic, partitions=1)
    n = 2000
    lines = [f"k{i}:{codec}-payload-{i}-" + "abcdefgh" * 8 for i in range(n)]
    _produce(broker, topic, lines, ["-z", codec, "-X", "enable.idempotence=true",
                                    "-X", "linger.ms=20"])
    out = _consume(broker, topic, fmt="%k:%s:%o\\n")
    assert len(out) == n
    for i, line in enumerate(out):
        assert line == f"k{i}:{codec}-payload-{i}-" + "abcdefgh" * 8 + f":{i}"


@pytest.mark.timeout(60)
def test_kcat_metadata_listing(broker, unique):
    topic = unique("kcat-md")
    create_topic(broker.bootstrap, topic, partitions=3)
    p = run_kcat(["-b", broker.bootstrap, "-L", "-J", "-t", topic], timeout=30)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    md = json.loads(p.stdout)
    brokers = {b["id"]: b["name"] for b in md["brokers"]}
    assert brokers, md
    # every advertised broker address is the one the broker was told to advertise
    host, port = broker.bootstrap.rsplit(":", 1)
    assert any(name == f"{host}:{port}" for name in brokers.values()), brokers
    topics = {t["topic"]: t for t in md["topics"]}
    assert topic in topics, md
    t = topics[topic]
    assert "error" not in t or not t["error"], t
    assert sorted(p["partition"] for p in t["partitions"]) == [0, 1, 2]
    for part in t["partitions"]:
        assert part["leader"] in brokers, (part, brokers)

    # the plain text listing (what a human runs) names the topic too
    p = run_kcat(["-b", broker.bootstrap, "-L"], timeout=30)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert f'topic "{topic}" with 3 partitions' in p.stdout.decode(), p.stdout.decode()
