"""Multi-agent harness: N `streamhouse` agents sharing one fresh PostgreSQL database and one S3 bucket.

Used by the `test_cluster_*.py` tests (through the `cluster` fixture defined here: import it into the
test module) and by scripts/bench/cluster.py (through `Cluster` directly, no pytest needed).

    from cluster_util import cluster  # noqa: F401  (registers the fixture in the test module)

    def test_x(cluster):
        a, b, c = cluster.add_agents(3)          # agent ids 1, 2, 3 on free ports
        cluster.start_all()                      # all at once, then wait until each accepts
        cluster.create_topic("t", 12)            # and wait until every partition has a leader
        victim = cluster.agent(cluster.leader_of("t", 0))
        victim.kill()                            # SIGKILL; also .stop() (SIGTERM, exit 0), .pause()
                                                 # (SIGSTOP), .resume() (SIGCONT), .restart()
        cluster.wait_all_led("t", 12)            # every partition led by a live agent, per every
                                                 # live agent's Metadata

Environment (scripts/test.sh exports all of it):
  STREAMHOUSE_TEST_POSTGRES_URL   postgres://USER@HOST:PORT/DB of a server where we may CREATE
                                  DATABASE; each cluster gets its own database (dropped afterwards).
                                  Unset: the cluster tests skip.
  STREAMHOUSE_TEST_S3_ENDPOINT    the S3 API endpoint (moto); each cluster gets its own bucket.
  AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION   passed to the agents.
  STREAMHOUSE_BIN                 the agent binary (default <repo>/target/debug/streamhouse).
  STREAMHOUSE_LOG                 agent log filter (default info).
  STREAMHOUSE_TEST_KEEP_DB=1      keep each cluster's database after the test (to inspect it).

Metadata is read with a hand-made Metadata v7 request sent to ONE chosen agent (librdkafka's
list_topics may ask any broker it knows), without auto-creation; find_coordinator() likewise.

Also here: ProducerLoad (an idempotent acks=all confluent-kafka producer in a thread, unique payloads,
every delivery report timed: gaps, recovery after an event), read_back() + check_exactly_acked() (dense
offsets, nothing lost, nothing duplicated, nothing unacknowledged), TcpProxy (put between an agent and
S3 to hold its PUTs), psql()/xact_commit() for PostgreSQL.

With COMPAT_BOOTSTRAP set (an external broker under test) the cluster tests skip: they start their own
agents.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from procs import broker_bin, die_with_parent, free_port, port_accepts

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
PG_ENV = "STREAMHOUSE_TEST_POSTGRES_URL"
S3_ENV = "STREAMHOUSE_TEST_S3_ENDPOINT"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
LOG_TAIL_LINES = 40

# Kafka error codes the tests look at
NONE = 0
LEADER_NOT_AVAILABLE = 5
NOT_LEADER_OR_FOLLOWER = 6
UNKNOWN_TOPIC_OR_PARTITION = 3


class ClusterError(AssertionError):
    """A harness failure (an agent that does not start, a wait that times out)."""


# -- environment ------------------------------------------------------------------------------------
def env_missing_reason() -> str | None:
    """Why the cluster tests cannot run here, or None."""
    if os.environ.get("COMPAT_BOOTSTRAP"):
        return "COMPAT_BOOTSTRAP is set: the multi-agent tests start their own agents"
    if not os.environ.get(PG_ENV):
        return (f"{PG_ENV} is not set: the multi-agent tests need PostgreSQL and an S3 API server "
                f"(scripts/test.sh starts both and sets it)")
    return None


def resolve_bin() -> Path:
    try:
        return broker_bin()
    except FileNotFoundError as e:
        raise ClusterError(str(e)) from None


# -- PostgreSQL and S3 --------------------------------------------------------------------------------
def _psql_bin() -> str:
    found = shutil.which("psql")
    if found:
        return found
    for cand in sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"), reverse=True):
        return str(cand)
    raise ClusterError("psql not found (apt-get install postgresql-client)")


def psql(admin_url: str, sql: str, db: str | None = None, timeout: float = 30.0) -> str:
    """Runs `sql` with psql against the server of `admin_url` (database `db`, default the URL's)."""
    u = urllib.parse.urlparse(admin_url)
    cmd = [_psql_bin(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
           "-h", u.hostname or "127.0.0.1", "-p", str(u.port or 5432),
           "-U", urllib.parse.unquote(u.username or "postgres"),
           "-d", db or (u.path.lstrip("/") or "postgres"), "-c", sql]
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = urllib.parse.unquote(u.password)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if p.returncode != 0:
        raise ClusterError(f"psql failed ({p.returncode}) for {sql!r}: {p.stderr.strip()}")
    return p.stdout


def database_url(admin_url: str, db: str) -> str:
    u = urllib.parse.urlparse(admin_url)
    return urllib.parse.urlunparse(u._replace(path="/" + db))


def create_database(admin_url: str, db: str) -> str:
    psql(admin_url, f'CREATE DATABASE "{db}"')
    return database_url(admin_url, db)


def drop_database(admin_url: str, db: str) -> None:
    psql(admin_url, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def xact_commit(admin_url: str, db: str) -> int:
    """pg_stat_database.xact_commit of `db` (committed transactions since the server started)."""
    out = psql(admin_url, f"SELECT pg_stat_clear_snapshot(); SELECT xact_commit FROM pg_stat_database "
                          f"WHERE datname = '{db}'")
    return int(out.split()[-1])


def s3_client(endpoint: str | None = None):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint or os.environ.get(S3_ENV) or os.environ.get("AWS_ENDPOINT_URL"),
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )


def create_bucket(bucket: str, endpoint: str | None = None) -> None:
    s3_client(endpoint).create_bucket(Bucket=bucket)


def list_objects(bucket: str, prefix: str = "", endpoint: str | None = None) -> list[str]:
    c = s3_client(endpoint)
    keys = []
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


# -- a minimal Metadata v7 client ---------------------------------------------------------------------
class _Reader:
    def __init__(self, b: bytes):
        self.b, self.o = b, 0

    def take(self, fmt: str):
        v = struct.unpack_from(fmt, self.b, self.o)
        self.o += struct.calcsize(fmt)
        return v[0]

    def i8(self):
        return self.take(">b")

    def i16(self):
        return self.take(">h")

    def i32(self):
        return self.take(">i")

    def string(self):
        n = self.i16()
        if n < 0:
            return None
        s = self.b[self.o:self.o + n].decode()
        self.o += n
        return s

    def array(self, item):
        n = self.i32()
        return [] if n < 0 else [item() for _ in range(n)]


@dataclass
class PartitionMd:
    error: int
    leader: int
    epoch: int
    replicas: list[int]
    isr: list[int]


@dataclass
class TopicMd:
    error: int
    partitions: dict[int, PartitionMd] = field(default_factory=dict)


@dataclass
class Metadata:
    answered_by: int  # agent id asked (-1 when asked by address)
    brokers: dict[int, tuple[str, int, str | None]]  # id -> (host, port, rack)
    controller: int
    topics: dict[str, TopicMd]

    def leaders(self, topic: str) -> dict[int, int]:
        return {p: pm.leader for p, pm in self.topics[topic].partitions.items()}


_CORR = [0]


def _exchange(bootstrap: str, api_key: int, version: int, body: bytes, timeout: float = 5.0) -> bytes:
    host, _, port = bootstrap.rpartition(":")
    _CORR[0] += 1
    corr = _CORR[0]
    client_id = b"cluster-tests"
    header = struct.pack(">hhih", api_key, version, corr, len(client_id)) + client_id
    payload = header + body
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(payload)) + payload)
        size = struct.unpack(">i", _recv(s, 4))[0]
        resp = _recv(s, size)
    got = struct.unpack_from(">i", resp, 0)[0]
    if got != corr:
        raise ClusterError(f"correlation id {got} != {corr} from {bootstrap}")
    return resp[4:]


def _recv(s: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return bytes(buf)


def metadata(bootstrap: str, topics: list[str] | None = None, timeout: float = 5.0) -> Metadata:
    """Metadata v7 (leader epochs, racks) from the agent at `bootstrap`; never auto-creates."""
    if topics is None:
        body = struct.pack(">i", -1)
    else:
        body = struct.pack(">i", len(topics))
        for t in topics:
            tb = t.encode()
            body += struct.pack(">h", len(tb)) + tb
    body += b"\x00"  # allow_auto_topic_creation = false
    r = _Reader(_exchange(bootstrap, 3, 7, body, timeout))
    r.i32()  # throttle
    brokers = {}
    for _ in range(r.i32()):
        node, host, port, rack = r.i32(), r.string(), r.i32(), r.string()
        brokers[node] = (host, port, rack)
    r.string()  # cluster id
    controller = r.i32()
    topics_md: dict[str, TopicMd] = {}
    for _ in range(r.i32()):
        err, name, _internal = r.i16(), r.string(), r.i8()
        tm = TopicMd(err)
        for _ in range(r.i32()):
            perr, idx, leader, epoch = r.i16(), r.i32(), r.i32(), r.i32()
            replicas = r.array(r.i32)
            isr = r.array(r.i32)
            r.array(r.i32)  # offline
            tm.partitions[idx] = PartitionMd(perr, leader, epoch, replicas, isr)
        topics_md[name] = tm
    return Metadata(-1, brokers, controller, topics_md)


def find_coordinator(bootstrap: str, group: str, timeout: float = 5.0) -> tuple[int, int]:
    """FindCoordinator v0 for a consumer group: (error code, coordinator node id)."""
    gb = group.encode()
    r = _Reader(_exchange(bootstrap, 10, 0, struct.pack(">h", len(gb)) + gb, timeout))
    err, node = r.i16(), r.i32()
    return err, node


# -- one agent ----------------------------------------------------------------------------------------
class Agent:
    """One streamhouse agent process of a Cluster."""

    def __init__(self, cluster: "Cluster", agent_id: int, zone: str | None, group: str | None,
                 lease_ttl_ms: int, extra_args: list[str], env: dict[str, str]):
        self.cluster = cluster
        self.id = agent_id
        self.zone = zone
        self.group = group
        self.lease_ttl_ms = lease_ttl_ms
        self.extra_args = list(extra_args)
        self.extra_env = dict(env)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.bootstrap = f"{self.host}:{self.port}"
        self.http_port = free_port()
        self.http = f"http://{self.host}:{self.http_port}"
        self.workdir = cluster.workdir / f"agent-{agent_id}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "agent.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.expected_exit = False
        self.paused = False
        self.exit_codes: list[int] = []

    def __repr__(self):
        return f"Agent({self.id} @{self.bootstrap}{' zone=' + self.zone if self.zone else ''}" \
               f"{' group=' + self.group if self.group else ''})"

    def command(self) -> list[str]:
        c = self.cluster
        cmd = [str(c.binary),
               "--listen", self.bootstrap, "--advertised-address", self.bootstrap,
               "--agent-id", str(self.id), "--data-dir", str(self.workdir / "data"),
               "--metadata-url", c.metadata_url, "--object-store-url", c.object_store_url,
               "--lease-ttl-ms", str(self.lease_ttl_ms),
               "--http-listen", f"{self.host}:{self.http_port}", "--console-listen", "off"]
        if self.zone:
            cmd += ["--zone", self.zone]
        if self.group:
            cmd += ["--agent-group", self.group]
        return cmd + self.extra_args

    def spawn(self) -> None:
        """Starts the process without waiting for the port (see wait_ready)."""
        assert not self.alive(), f"{self} already running"
        env = dict(os.environ)
        env.setdefault("STREAMHOUSE_LOG", "info")
        env.setdefault("RUST_LOG", env["STREAMHOUSE_LOG"])
        env.setdefault("RUST_BACKTRACE", "1")
        env.update(self.extra_env)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== cluster-tests: start #{self.starts}: {' '.join(self.command())}\n"
                      .encode())
            log.flush()
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.workdir, env=env,
                                         preexec_fn=die_with_parent)
        self.expected_exit = False
        self.paused = False

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise ClusterError(f"{self} exited with code {rc} during startup\n{self.log_tail()}")
            if port_accepts(self.host, self.port) and port_accepts(self.host, self.http_port):
                return
            time.sleep(0.05)
        raise ClusterError(f"{self} did not accept connections within {timeout}s\n{self.log_tail()}")

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no flush, no lease release."""
        self.expected_exit = True
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.exit_codes.append(self.proc.wait(timeout=10))
        self.paused = False

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM; waits for the exit and returns its code (the caller asserts it)."""
        self.expected_exit = True
        if self.paused:
            self.resume()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise ClusterError(f"{self} did not exit within {timeout}s of SIGTERM\n{self.log_tail()}")
        self.exit_codes.append(rc)
        return rc

    def pause(self) -> None:
        """SIGSTOP: the process freezes with its connections, leases and pending writes."""
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def restart(self) -> None:
        if self.alive():
            rc = self.stop()
            if rc != 0:
                raise ClusterError(f"{self} exited {rc} after SIGTERM\n{self.log_tail()}")
        self.start()

    def exited_unexpectedly(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None and not self.expected_exit

    def teardown(self) -> None:
        if not self.alive():
            return
        self.expected_exit = True
        if self.paused:
            self.resume()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def metadata(self, topics: list[str] | None = None, timeout: float = 5.0) -> Metadata:
        md = metadata(self.bootstrap, topics, timeout)
        md.answered_by = self.id
        return md

    # logs
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_lines(self, contains: str | None = None, since_start: int | None = None) -> list[str]:
        """Log lines (of start number `since_start` onwards when given) containing `contains`."""
        lines = self.log_text().splitlines()
        if since_start is not None:
            marker = f"===== cluster-tests: start #{since_start}:"
            for i, line in enumerate(lines):
                if line.startswith(marker):
                    lines = lines[i:]
                    break
        return [ln for ln in lines if contains is None or contains in ln]

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        tail = self.log_text().splitlines()[-lines:]
        return f"--- {self} log {self.log_path} (last {len(tail)} lines) ---\n" + "\n".join(tail)


# -- the cluster ----------------------------------------------------------------------------------------
class Cluster:
    """Agents sharing one fresh PostgreSQL database and one fresh S3 bucket."""

    def __init__(self, workdir: Path, pg_admin_url: str, s3_endpoint: str | None = None,
                 binary: Path | None = None, name: str | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.binary = binary or resolve_bin()
        self.pg_admin_url = pg_admin_url
        self.s3_endpoint = s3_endpoint or os.environ.get(S3_ENV)
        if not self.s3_endpoint:
            raise ClusterError(f"{S3_ENV} is not set: the multi-agent tests need an S3 API server "
                               f"(scripts/test.sh starts moto and sets it)")
        self.name = name or f"sh_{uuid.uuid4().hex[:12]}"
        self.db = self.name
        self.bucket = self.name.replace("_", "-")
        self.prefix = "cluster"
        self.metadata_url = create_database(pg_admin_url, self.db)
        create_bucket(self.bucket, self.s3_endpoint)
        self.object_store_url = f"s3://{self.bucket}/{self.prefix}"
        # the agents read their S3 endpoint from AWS_ENDPOINT_URL
        os.environ.setdefault("AWS_ENDPOINT_URL", self.s3_endpoint)
        for k, v in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                     ("AWS_REGION", "us-east-1")):
            os.environ.setdefault(k, v)
        self.agents: dict[int, Agent] = {}
        self._next_id = 1

    # agents
    def add_agent(self, zone: str | None = None, group: str | None = None, lease_ttl_ms: int = 3000,
                  extra_args: list[str] | None = None, env: dict[str, str] | None = None,
                  agent_id: int | None = None) -> Agent:
        aid = agent_id if agent_id is not None else self._next_id
        self._next_id = max(self._next_id, aid + 1)
        a = Agent(self, aid, zone, group, lease_ttl_ms, extra_args or [], env or {})
        self.agents[aid] = a
        return a

    def add_agents(self, n: int, **kw) -> list[Agent]:
        return [self.add_agent(**kw) for _ in range(n)]

    def agent(self, agent_id: int) -> Agent:
        return self.agents[agent_id]

    def start_all(self, agents: list[Agent] | None = None) -> None:
        """Spawns all (not running) agents at once, then waits until each accepts connections."""
        todo = [a for a in (agents or self.agents.values()) if not a.alive()]
        for a in todo:
            a.spawn()
        for a in todo:
            a.wait_ready()

    def live(self) -> list[Agent]:
        return [a for a in self.agents.values() if a.alive() and not a.paused]

    def bootstrap(self, agents: list[Agent] | None = None) -> str:
        return ",".join(a.bootstrap for a in (agents or self.agents.values()))

    # topics and leaders
    def create_topic(self, topic: str, partitions: int, config: dict | None = None,
                     wait: bool = True, timeout: float = 30.0) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        a = AdminClient({"bootstrap.servers": self.bootstrap(self.live()),
                         "socket.timeout.ms": 10000})
        futs = a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1,
                                         config=config or {})],
                               request_timeout=30, operation_timeout=30)
        futs[topic].result(timeout=30)
        if wait:
            self.wait_all_led(topic, partitions, timeout=timeout)

    def metadata_from(self, agent: Agent, topics: list[str] | None = None) -> Metadata:
        return agent.metadata(topics)

    def leaders(self, topic: str, via: Agent | None = None) -> dict[int, int]:
        via = via or self.live()[0]
        md = via.metadata([topic])
        return {p: pm.leader for p, pm in md.topics[topic].partitions.items()}

    def leader_of(self, topic: str, partition: int, via: Agent | None = None) -> int:
        return self.leaders(topic, via)[partition]

    def wait_all_led(self, topic: str, partitions: int, via: list[Agent] | None = None,
                     allowed: set[int] | None = None, timeout: float = 30.0,
                     settle: float = 0.0) -> dict[int, int]:
        """Waits until the Metadata of every agent in `via` (default: the live ones) shows all
        `partitions` of `topic` with a leader among `allowed` (default: the live agents) that the same
        response lists as a broker, and they all agree. With settle > 0 the same answer must hold for that long. Returns {partition: leader}."""
        deadline = time.monotonic() + timeout
        last = None
        stable_since, stable_value = None, None
        while time.monotonic() < deadline:
            agents = via or self.live()
            ok_ids = allowed if allowed is not None else {a.id for a in self.live()}
            try:
                views = [a.metadata([topic]) for a in agents]
            except (OSError, ClusterError, struct.error) as e:
                last = f"metadata failed: {e!r}"
                time.sleep(0.2)
                continue
            maps = []
            good = True
            for md in views:
                t = md.topics.get(topic)
                if t is None or t.error != 0 or len(t.partitions) != partitions:
                    good = False
                    last = (md.answered_by, t)
                    break
                m = {p: pm.leader for p, pm in t.partitions.items()}
                # a leader must be a live agent AND be described in the same response's broker list
                # (clients cannot use a leader they have no address for)
                if any(pm.error != 0 or pm.leader not in ok_ids or pm.leader not in md.brokers
                       for pm in t.partitions.values()):
                    good = False
                    last = (md.answered_by, m)
                    break
                maps.append(m)
            if good and all(m == maps[0] for m in maps):
                if settle <= 0:
                    return maps[0]
                if stable_value != maps[0]:
                    stable_since, stable_value = time.monotonic(), maps[0]
                elif time.monotonic() - stable_since >= settle:
                    return maps[0]
            elif good:
                last = {"disagree": [(md.answered_by, m) for md, m in zip(views, maps)]}
                stable_value = None
            else:
                stable_value = None
            time.sleep(0.1)
        raise ClusterError(f"timed out after {timeout}s waiting for every partition of {topic} to be "
                           f"led by one of {sorted(allowed) if allowed is not None else 'the live agents'}"
                           f": last {last}\n{self.log_tails()}")

    # logs and checks
    def log_tails(self, lines: int = 25) -> str:
        return "\n".join(a.log_tail(lines) for a in self.agents.values())

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:  # for conftest's failure report hook
        return self.log_tails(max(8, 3 * lines // max(1, len(self.agents))))

    def problems(self) -> list[str]:
        out = []
        for a in self.agents.values():
            if a.exited_unexpectedly():
                out.append(f"{a} exited unexpectedly with code {a.proc.returncode}")
            panics = [ln for ln in a.log_text().splitlines() if "panicked at" in ln]
            if panics:
                out.append(f"{a} panicked: " + " | ".join(panics[:3]))
        return out

    def teardown(self, drop: bool = True) -> None:
        for a in self.agents.values():
            if a.paused and a.alive():
                a.resume()
        threads = [threading.Thread(target=a.teardown) for a in self.agents.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if drop and not os.environ.get("STREAMHOUSE_TEST_KEEP_DB"):
            try:
                drop_database(self.pg_admin_url, self.db)
            except ClusterError:
                pass


# -- pytest fixture ------------------------------------------------------------------------------------
try:
    import pytest
except ImportError:  # the bench script runs without pytest
    pytest = None

if pytest is not None:

    @pytest.fixture
    def cluster(request, tmp_path_factory):
        """A Cluster with a fresh database and bucket and no agent yet; the test adds and starts agents.
        Afterwards: every agent is stopped, the test fails if one exited unexpectedly or panicked, and
        the database is dropped."""
        reason = env_missing_reason()
        if reason:
            pytest.skip(reason)
        try:
            c = Cluster(tmp_path_factory.mktemp("cluster"), os.environ[PG_ENV])
        except ClusterError as e:
            pytest.fail(str(e), pytrace=False)
        request.node._compat_broker = c  # conftest's report hook appends c.log_tail() on failure
        try:
            yield c
            problems = c.problems()
            if problems:
                pytest.fail("\n".join(problems) + "\n" + c.log_tails(), pytrace=False)
        finally:
            c.teardown()


# -- load generators and read-back checks ----------------------------------------------------------
@dataclass
class Delivery:
    t: float          # monotonic time of the delivery report
    sent: float       # monotonic time the message was handed to the client
    partition: int
    offset: int
    ident: str
    error: str | None


class ProducerLoad:
    """A confluent-kafka producer in a thread writing unique payloads round-robin over `partitions`
    at about `rate` messages/s, recording every delivery report."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, rate: float = 500.0,
                 run_id: str | None = None, **conf):
        from confluent_kafka import Producer

        self.topic, self.partitions, self.rate = topic, partitions, rate
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.client_errors: list[str] = []
        base = {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": 60000,
            "socket.timeout.ms": 10000,
            "error_cb": lambda e: self.client_errors.append(f"{e.name()} {e.str()} fatal={e.fatal()}"),
        }
        base.update(conf)
        self.producer = Producer(base)
        self.deliveries: list[Delivery] = []
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.fatal: str | None = None

    def _cb(self, sent_at: float, ident: str):
        def cb(err, msg):
            self.deliveries.append(Delivery(time.monotonic(), sent_at, msg.partition(),
                                            msg.offset() if err is None else -1, ident,
                                            None if err is None else str(err)))
        return cb

    def _run(self):
        period = 1.0 / self.rate
        nxt = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            while nxt <= now and not self._stop.is_set():
                ident = f"{self.run_id}-{self.sent}"
                p = self.sent % self.partitions
                try:
                    self.producer.produce(self.topic, value=ident.encode(), partition=p,
                                          on_delivery=self._cb(time.monotonic(), ident))
                    self.sent += 1
                except BufferError:
                    break  # queue full: the client is stalled; try again after a poll
                except Exception as e:  # KafkaException: e.g. fatal idempotence error
                    self.fatal = repr(e)
                    self._stop.set()
                    break
                nxt += period
            self.producer.poll(min(0.005, max(0.0, nxt - time.monotonic())))

    def start(self) -> "ProducerLoad":
        self._thread.start()
        return self

    def stop(self, flush_timeout: float = 70.0) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        left = self.producer.flush(flush_timeout)
        if left:
            raise ClusterError(f"{left} messages still undelivered {flush_timeout}s after stop")
        self.producer = None  # closes its connections now rather than at garbage collection

    # results
    def acked(self) -> dict[str, tuple[int, int]]:
        return {d.ident: (d.partition, d.offset) for d in self.deliveries if d.error is None}

    def failed(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.error is not None]

    def max_gap(self, partition: int | None = None, after: float | None = None) -> float:
        """Longest time between successive successful delivery reports (of one partition)."""
        ts = [d.t for d in self.deliveries if d.error is None
              and (partition is None or d.partition == partition)
              and (after is None or d.t >= after)]
        return max((b - a for a, b in zip(ts, ts[1:])), default=0.0)

    def recovery_after(self, t0: float, partition: int) -> float | None:
        """Seconds from t0 until the first message handed to the client after t0 for `partition`
        was acknowledged (the partition was writable again); None if none was."""
        ds = [d.t for d in self.deliveries
              if d.error is None and d.partition == partition and d.sent > t0]
        return (min(ds) - t0) if ds else None


def read_back(bootstrap: str, topic: str, partitions: int, timeout: float = 60.0):
    """{partition: [(offset, value bytes), ...]} read with an assign() consumer from offset 0 up to the
    high watermark of each partition."""
    import compat_util

    out = compat_util.consume_all(bootstrap, topic, partitions, timeout=timeout)
    return {p: [(m.offset(), m.value()) for m in msgs] for p, msgs in out.items()}


def check_exactly_acked(records: dict[int, list[tuple[int, bytes]]],
                        acked: dict[str, tuple[int, int]]) -> list[str]:
    """Problems (empty when fine): per partition offsets 0..n-1 without a gap or duplicate; no payload
    twice; every acknowledged payload at its acknowledged (partition, offset); nothing that was not
    acknowledged."""
    problems = []
    seen: dict[str, tuple[int, int]] = {}
    for p, recs in sorted(records.items()):
        offsets = [o for o, _ in recs]
        if offsets != list(range(len(offsets))):
            gaps = [(a, b) for a, b in zip(offsets, offsets[1:]) if b != a + 1][:5]
            problems.append(f"partition {p}: offsets not dense 0..{len(offsets) - 1}: first "
                            f"{offsets[:3]}, breaks {gaps}")
        for o, v in recs:
            ident = v.decode(errors="replace") if v is not None else None
            if ident in seen:
                problems.append(f"payload {ident} twice: at {seen[ident]} and {(p, o)}")
            seen[ident] = (p, o)
    missing = [i for i in acked if i not in seen]
    if missing:
        problems.append(f"{len(missing)} acknowledged messages missing, e.g. "
                        f"{[(i, acked[i]) for i in missing[:5]]}")
    moved = [(i, acked[i], seen[i]) for i in acked if i in seen and seen[i] != acked[i]]
    if moved:
        problems.append(f"{len(moved)} messages not at their acknowledged (partition, offset), e.g. "
                        f"{moved[:5]}")
    extra = [(i, seen[i]) for i in seen if i not in acked]
    if extra:
        problems.append(f"{len(extra)} records that were never acknowledged, e.g. {extra[:5]}")
    return problems


# -- a TCP proxy that can hold traffic --------------------------------------------------------------
class TcpProxy:
    """Forwards 127.0.0.1:port to target (e.g. the S3 server). hold() makes it keep every client->server
    byte that arrives from then on until release(): e.g. an agent's segment PUT, so the test can freeze
    the agent between its lease check and its commit."""

    def __init__(self, target: str):
        u = urllib.parse.urlparse(target if "://" in target else "http://" + target)
        self.target = (u.hostname, u.port or 80)
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._open = threading.Event()
        self._open.set()
        self.held: list[bytes] = []  # first bytes of every chunk that had to wait
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def held_puts(self) -> int:
        return sum(1 for h in self.held if h.startswith(b"PUT "))

    def _accept(self):
        while not self._closed:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self.target, timeout=10)
            except OSError:
                c.close()
                continue
            u.settimeout(None)
            threading.Thread(target=self._pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if upstream and not self._open.is_set():
                    self.held.append(data[:64])
                    self._open.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self):
        self._closed = True
        self._open.set()
        self.srv.close()
