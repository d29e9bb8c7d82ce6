"""The docker-compose deployment (docker/docker-compose.yml, docker/prometheus/prometheus.yml).

No Docker engine runs here, so the files are checked without starting them: docker-compose and
promtool validate them when installed (scripts/test.sh installs both), and the tests below check
what neither tool can know: that the three agents form one cluster on shared stores, that no two
containers claim one host port, that each agent advertises the Kafka port it listens on and
publishes, and that Prometheus scrapes every agent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker" / "docker-compose.yml"
PROMETHEUS = REPO / "docker" / "prometheus" / "prometheus.yml"
AGENTS = ["agent-1", "agent-2", "agent-3"]
API_PORT = 3001
CONSOLE_PORT = 3002


@pytest.fixture(scope="module")
def compose() -> dict:
    # PyYAML resolves the file's anchors and "<<" merge keys as docker-compose does.
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def prometheus() -> dict:
    return yaml.safe_load(PROMETHEUS.read_text())


def compose_command() -> list[str] | None:
    """docker-compose (v1, Debian's package) or the `docker compose` plugin, whichever is here."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def published(service: dict) -> dict[int, int]:
    """Container port → host port, from short ("19092:19092") or long ({target, published}) syntax."""
    ports = {}
    for p in service.get("ports", []):
        if isinstance(p, dict):
            ports[int(p["target"])] = int(p["published"])
            continue
        parts = str(p).split("/")[0].split(":")
        assert len(parts) in (2, 3), f"port {p!r} publishes no fixed host port"
        ports[int(parts[-1])] = int(parts[-2])
    return ports


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def test_docker_compose_accepts_the_file():
    cmd = compose_command()
    if cmd is None:
        pytest.skip("neither docker-compose nor the docker compose plugin is installed (apt-get install docker-compose)")
    run = subprocess.run([*cmd, "-f", str(COMPOSE), "config"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    resolved = yaml.safe_load(run.stdout)
    assert set(AGENTS) <= set(resolved["services"]), "the agents survive docker-compose's own merge of the anchors"
    for name in AGENTS:
        env = resolved["services"][name]["environment"]
        assert env["STREAMHOUSE_METADATA_URL"].startswith("postgres://"), env


def test_promtool_accepts_the_prometheus_config():
    if not shutil.which("promtool"):
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    run = subprocess.run(["promtool", "check", "config", str(PROMETHEUS)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


def test_agents_are_built_from_the_repository_dockerfile(compose):
    for name in AGENTS:
        build = compose["services"][name]["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == REPO / "docker" / "Dockerfile"


def test_agents_check_their_readiness_with_streamctl(compose):
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    assert "--bin streamctl" in dockerfile and "/usr/local/bin/streamctl" in dockerfile, "the image carries the CLI"
    for name in AGENTS:
        test = compose["services"][name]["healthcheck"]["test"]
        assert test == ["CMD", "streamctl", "--api", f"http://127.0.0.1:{API_PORT}", "cluster", "health"], test


def test_no_two_containers_share_a_host_port(compose):
    owners: dict[int, str] = {}
    for name, service in compose["services"].items():
        for host in published(service).values():
            assert host not in owners, f"host port {host} is published by both {owners[host]} and {name}"
            owners[host] = name


def test_each_agent_publishes_kafka_api_and_console(compose):
    ids = set()
    for name in AGENTS:
        service = compose["services"][name]
        env = {k: str(v) for k, v in service["environment"].items()}
        ports = published(service)
        assert env["STREAMHOUSE_HTTP_LISTEN"] == f"0.0.0.0:{API_PORT}"
        assert env["STREAMHOUSE_CONSOLE_LISTEN"] == f"0.0.0.0:{CONSOLE_PORT}"
        assert API_PORT in ports and CONSOLE_PORT in ports, f"{name} publishes {ports}"
        kafka = port_of(env["STREAMHOUSE_LISTEN"])
        # The advertised address must work from the host and from the other agents alike, so the
        # Kafka port is the same inside the container, on the host, and in what is advertised.
        assert ports.get(kafka) == kafka, f"{name} listens on {kafka} but publishes {ports}"
        advertised = env["STREAMHOUSE_ADVERTISED_ADDRESS"]
        assert port_of(advertised) == kafka, advertised
        assert re.fullmatch(r"\$\{STREAMHOUSE_ADVERTISED_HOST:-" + re.escape(name) + r"\}:\d+", advertised), advertised
        ids.add(env["STREAMHOUSE_AGENT_ID"])
    assert len(ids) == len(AGENTS), f"agent ids must differ: {ids}"


def test_agents_share_postgres_and_the_minio_bucket(compose):
    services = compose["services"]
    envs = [services[name]["environment"] for name in AGENTS]
    assert len({e["STREAMHOUSE_METADATA_URL"] for e in envs}) == 1, "one metadata store for the cluster"
    assert len({e["STREAMHOUSE_OBJECT_STORE_URL"] for e in envs}) == 1, "one object store for the cluster"
    env = envs[0]
    metadata = env["STREAMHOUSE_METADATA_URL"]
    assert re.fullmatch(r"postgres://[^:@]+:[^@]+@postgres:5432/\w+", metadata), metadata
    postgres = services["postgres"]["environment"]
    assert metadata.endswith(f"/{postgres['POSTGRES_DB']}") and f"//{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@" in metadata
    bucket = re.fullmatch(r"s3://([a-z0-9.-]+)(/.*)?", env["STREAMHOUSE_OBJECT_STORE_URL"]).group(1)
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
    minio = services["minio"]["environment"]
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"])
    init = services["minio-init"]
    assert f"mc mb --ignore-existing local/{bucket}" in "\n".join(init["command"]), "the init container creates the agents' bucket"
    for name in AGENTS:
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["minio-init"]["condition"] == "service_completed_successfully"


def test_prometheus_scrapes_every_agent(prometheus):
    (job,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "streamhouse"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert sorted(targets) == [f"{name}:{API_PORT}" for name in AGENTS]


def test_prometheus_and_grafana_get_their_files(compose):
    services = compose["services"]
    mounts = lambda name: {v.split(":")[0]: v.split(":")[1] for v in services[name]["volumes"] if v.startswith("./")}  # noqa: E731
    assert mounts("prometheus")["./prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    grafana = mounts("grafana")
    assert grafana["./grafana/provisioning"] == "/etc/grafana/provisioning"
    assert grafana["./grafana/dashboards"] == "/var/lib/grafana/dashboards"
