"""Java kafka-clients 3.9.1 (the reference client): default producer settings (acks=all,
idempotent), assign() + seekToBeginning() consumer. The driver is java/src/.../ProduceConsume.java."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import pytest

from compat_util import skip_unless_group_apis

HERE = os.path.dirname(os.path.abspath(__file__))
JARS_DIR = os.path.join(HERE, ".tools", "java")
BUILD_DIR = os.path.join(HERE, "java", "build")
MAIN = "streamhouse.compat.ProduceConsume"
REQUIRED_JARS = ["kafka-clients", "lz4-java", "snappy-java", "zstd-jni", "slf4j-api"]


def classpath() -> str:
    missing = [j for j in REQUIRED_JARS if not os.path.exists(os.path.join(JARS_DIR, f"{j}.jar"))]
    if missing:
        pytest.fail(f"missing jars in {JARS_DIR}: {missing} (run scripts/test.sh)", pytrace=False)
    if not glob.glob(os.path.join(BUILD_DIR, "streamhouse", "compat", "ProduceConsume.class")):
        pytest.fail(f"Java driver not compiled into {BUILD_DIR} (run scripts/test.sh)", pytrace=False)
    if not shutil.which("java"):
        pytest.fail("java is not installed", pytrace=False)
    return os.pathsep.join([os.path.join(JARS_DIR, f"{j}.jar") for j in REQUIRED_JARS] + [BUILD_DIR])


def run_driver(broker, topic, count, partitions, compression, timeout=100):
    return run_java(MAIN, [broker.bootstrap, topic, str(count), str(partitions), compression],
                    timeout)


def run_java(main_class, args, timeout=100):
    p = subprocess.run(
        ["java", "-Xmx512m", "-cp", classpath(), main_class, *args],
        capture_output=True, timeout=timeout, check=False,
    )
    out = p.stdout.decode(errors="replace")
    err = p.stderr.decode(errors="replace")
    results = {}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            for kv in line[len("RESULT "):].split(" "):
                if "=" in kv:
                    k, v = kv.split("=", 1)
                    results[k] = v
    problems = [line for line in out.splitlines() if line.startswith("PROBLEM ")]
    return p.returncode, results, problems, out, err


@pytest.mark.timeout(120)
def test_java_default_producer_10k_then_assign_consumer(broker, unique):
    topic = unique("java")
    rc, res, problems, out, err = run_driver(broker, topic, 10_000, 3, "none")
    assert rc == 0, f"driver exited {rc}\n{out}\nstderr tail:\n{err[-3000:]}"
    assert res.get("created") == topic
    assert res["produced"] == "10000" and res["acked"] == "10000", res
    assert res["send_errors"] == "0", res
    assert res["partitions"] == "3"
    assert res["consumed"] == "10000" and res["duplicates"] == "0" and res["mismatches"] == "0", res
    assert not problems, problems


@pytest.mark.timeout(120)
@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_java_compressed(broker, unique, codec):
    topic = unique(f"java-{codec}")
    rc, res, problems, out, err = run_driver(broker, topic, 2000, 2, codec)
    assert rc == 0, f"driver exited {rc}\n{out}\nstderr tail:\n{err[-3000:]}"
    assert res["consumed"] == "2000" and res["mismatches"] == "0", res


@pytest.mark.timeout(120)
def test_java_auto_created_topic(broker, unique):
    """No admin call: the producer's metadata request auto-creates the topic (broker default)."""
    topic = unique("java-auto")
    rc, res, problems, out, err = run_driver(broker, topic, 1000, 0, "none")
    assert rc == 0, f"driver exited {rc}\n{out}\nstderr tail:\n{err[-3000:]}"
    assert int(res["partitions"]) >= 1
    assert res["consumed"] == "1000" and res["mismatches"] == "0", res


@pytest.mark.timeout(150)
def test_java_group_consumer(broker, unique):
    """The Java consumer's classic group protocol: subscribe(), JoinGroup/SyncGroup, commitSync(),
    committed() at the end of each partition."""
    skip_unless_group_apis(broker.bootstrap)
    topic, group = unique("java-grp"), unique("java-group")
    rc, res, problems, out, err = run_driver(broker, topic, 3000, 3, "lz4")
    assert rc == 0, f"producer driver exited {rc}\n{out}\nstderr tail:\n{err[-3000:]}"
    rc, res, problems, out, err = run_java("streamhouse.compat.GroupConsume",
                                           [broker.bootstrap, topic, group, "3000"])
    assert rc == 0, f"GroupConsume exited {rc}\n{out}\nstderr tail:\n{err[-3000:]}"
    assert res["consumed"] == "3000" and res["distinct"] == "3000", res
    assert not problems, problems
