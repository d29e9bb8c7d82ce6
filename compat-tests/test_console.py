"""The web console in a real browser: Debian's chromium driven by Playwright.

Every page loads without a console error; a topic is created from the browser, a message sent from
the Console page and found again in the topic's message browser; a consumer group's lag shows on
its page, its offsets are reset (preview, then execute); read-only mode hides every write control.

Screenshots of each page go to $COMPAT_ARTIFACTS/console-screenshots (default
/tmp/streamhouse-console-screenshots); the run prints the folder.

Needs /usr/bin/chromium (scripts/test.sh installs it with apt; `playwright install` is never run).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from compat_util import create_topic, wait_until
from conftest import BrokerProcess, resolve_broker_bin
from procs import port_accepts

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements.txt)")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1440, "height": 900}
UI_TIMEOUT_MS = 15_000

pytestmark = pytest.mark.skipif(
    os.environ.get("COMPAT_BOOTSTRAP") is not None, reason="starts its own agents with a console listener")


def screenshot_dir() -> Path:
    base = os.environ.get("COMPAT_ARTIFACTS")
    d = Path(base) / "console-screenshots" if base else Path("/tmp/streamhouse-console-screenshots")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def shots(request):
    d = screenshot_dir()
    yield d
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    line = f"console screenshots: {d}"
    if tr is not None:
        tr.write_line("")
        tr.write_line(line)
    else:
        print(line)


# ---- agents with a console listener ---------------------------------------------------------------
# conftest's BrokerProcess gives every agent an HTTP API (.http) and a console (.console) port.

class ReadOnlyAgent(BrokerProcess):
    def command(self):
        return super().command() + ["--http-read-only"]


def need_chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing (apt-get install chromium)")


def wait_console(b):
    deadline = time.monotonic() + 20
    while not port_accepts(b.host, b.console_port):
        if time.monotonic() > deadline:
            pytest.fail(f"console listener never came up\n{b.log_tail()}", pytrace=False)
        time.sleep(0.05)


@pytest.fixture
def agent(broker):
    need_chromium()
    wait_console(broker)
    return broker


@pytest.fixture
def ro_agent(request, tmp_path_factory):
    need_chromium()
    b = ReadOnlyAgent(resolve_broker_bin(), tmp_path_factory.mktemp("console-ro"))
    request.node._compat_broker = b
    try:
        b.start()
        wait_console(b)
        yield b
        panics = [line for line in b.log_text().splitlines() if "panicked at" in line]
        assert not panics, "agent panicked:\n" + "\n".join(panics[:5])
    finally:
        b.teardown()


def has_metrics(agent) -> bool:
    try:
        with urllib.request.urlopen(agent.http + "/metrics", timeout=10):
            return True
    except urllib.error.HTTPError:
        return False


# ---- the browser ----------------------------------------------------------------------------------

class Browser:
    """One chromium page; records console errors and uncaught exceptions."""

    def __init__(self, pw, base_url: str):
        self.profile = tempfile.mkdtemp(prefix="streamhouse-chromium-")
        self.ctx = pw.chromium.launch_persistent_context(
            self.profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport=VIEWPORT, device_scale_factor=1)
        self.ctx.set_default_timeout(UI_TIMEOUT_MS)
        self.page = self.ctx.pages[0] if self.ctx.pages else self.ctx.new_page()
        self.base = base_url
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text} ({m.location})"))
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.method} {r.url}: {r.failure}"))
        self.external: list[str] = []
        self.page.on("request", lambda r: None if r.url.startswith(self.base) or r.url.startswith("data:")
                     else self.external.append(r.url))

    def open(self, route: str, ready: str):
        """Go to a hash route and wait for a selector that only appears once its data is drawn."""
        self.page.goto(f"{self.base}/#{route}")
        self.page.wait_for_selector(ready, state="attached")
        self.wait_refreshed()

    def wait_refreshed(self):
        self.page.wait_for_function(
            "document.querySelector('#live-text').textContent.startsWith('live')")

    def shot(self, shots: Path, name: str):
        self.page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    def assert_clean(self, metrics: bool = True):
        if not metrics:
            # the dashboard asks /metrics once; an agent without it answers 404, logged by chromium
            self.errors = [e for e in self.errors if not ("404" in e and "/metrics" in e)]
        assert not self.errors, "browser errors:\n" + "\n".join(self.errors)
        assert not self.external, f"the console fetched from elsewhere: {self.external}"

    def close(self):
        self.ctx.close()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture
def pw():
    with sync_api.sync_playwright() as p:
        yield p


def api(agent, method, path, body=None):
    req = urllib.request.Request(agent.http + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def text(page, selector) -> str:
    return page.inner_text(selector)


# ---- the tests --------------------------------------------------------------------------------------

def test_console_pages_and_flows(agent, pw, shots, unique):
    topic = unique("console")
    other = unique("orders")
    group = unique("billing")
    create_topic(agent.bootstrap, other, partitions=3)
    # some traffic so the dashboard has numbers
    p = Producer({"bootstrap.servers": agent.bootstrap, "linger.ms": 5})
    for i in range(300):
        p.produce(other, key=f"k{i}".encode(), value=json.dumps({"n": i}).encode(), partition=i % 3)
    p.flush(30)

    br = Browser(pw, agent.console)
    page = br.page
    try:
        # -- dashboard: cards drawn, live refresh changes the numbers without a reload
        br.open("/", "#dash-cards .card")
        assert "topics" in text(page, "#dash-cards").lower()
        page.evaluate("window.__noReload = 1")
        before = text(page, "#dash-cards")
        for i in range(1200):
            p.produce(other, value=b"x" * 100, partition=i % 3)
        p.flush(30)
        page.wait_for_function(
            "before => document.querySelector('#dash-cards').innerText !== before", arg=before,
            timeout=UI_TIMEOUT_MS)
        page.wait_for_selector("#produce-rate .value")
        wait_until(lambda: page.evaluate(
            "window.streamhouseConsole.state.produceRates.some(r => r > 0)"), timeout=10,
            what="a produce rate above zero")
        assert page.evaluate("window.__noReload") == 1, "the page reloaded"

        # -- topics page: create a topic from the browser
        br.open("/topics", "#topics tbody tr[data-topic]")
        assert page.is_visible("#create-topic-form")
        page.fill("#create-topic-form input[name=name]", topic)
        page.fill("#create-topic-form input[name=partitions]", "3")
        page.fill("#create-topic-form input[name=config]", "retention.ms=86400000")
        # the refresh pauses while a form is being edited
        page.wait_for_selector("#live.paused")
        br.shot(shots, "02-topics")
        page.click("#create-topic-form button[type=submit]")
        page.wait_for_url(f"**/#/topics/{topic}")
        page.wait_for_selector("#partitions-table tbody tr:nth-child(3)")
        status, t = api(agent, "GET", f"/api/v1/topics/{topic}")
        assert status == 200 and len(t["partitions"]) == 3, t
        assert t["config"].get("retention.ms") == "86400000", t["config"]
        br.open("/topics", f"#topics tr[data-topic='{topic}']")

        # -- console page: send a message to partition 1 with a key and a header
        br.open("/console", "#produce-form")
        page.fill("#produce-form input[name=topic]", topic)
        page.fill("#produce-form input[name=partition]", "1")
        page.fill("#produce-form input[name=key]", "user-42")
        page.fill("#produce-form textarea[name=value]", '{"hello": "from the console"}')
        page.click("#add-header")
        page.fill("#headers-list .hrow >> nth=0 >> [data-h=key]", "trace-id")
        page.fill("#headers-list .hrow >> nth=0 >> [data-h=value]", "abc123")
        page.click("#send-btn")
        page.wait_for_selector("#produce-ok")
        assert text(page, "#produced-partition") == "1"
        offset = int(text(page, "#produced-offset"))
        assert offset == 0
        br.shot(shots, "03-console")

        # -- the message browser finds it (via the result's link)
        page.click("#produce-ok a")
        page.wait_for_selector("#messages-table tbody tr td.val")
        row = text(page, "#messages-table tbody tr:first-child")
        assert "user-42" in row and '{"hello": "from the console"}' in row, row
        assert "trace-id" in row and "abc123" in row, row
        # and from the form: partition 1, from the earliest offset
        page.select_option("#browse-form select[name=partition]", "1")
        page.select_option("#browse-form select[name=from]", "earliest")
        page.click("#browse-form button[type=submit]")
        page.wait_for_selector("#messages-table tbody tr td.val")
        assert "user-42" in text(page, "#messages-table")

        # -- a consumer group: one live member, committed offset behind the end
        c = Consumer({"bootstrap.servers": agent.bootstrap, "group.id": group,
                      "enable.auto.commit": False, "auto.offset.reset": "earliest",
                      "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                      "client.id": "console-test"})
        c.subscribe([other])
        wait_until(lambda: c.poll(0.2) is not None or bool(c.assignment()), timeout=30,
                   what="the consumer's assignment")
        res = c.commit(offsets=[TopicPartition(other, 0, 4), TopicPartition(other, 1, 10)],
                       asynchronous=False)
        assert all(tp.error is None for tp in res), res
        stop = threading.Event()

        def keep_polling():
            while not stop.is_set():
                m = c.poll(0.2)
                if m is not None and m.error() and m.error().code() != KafkaError._PARTITION_EOF:
                    break

        poller = threading.Thread(target=keep_polling, daemon=True)
        poller.start()
        try:
            _, hw = api(agent, "GET", f"/api/v1/topics/{other}")
            end0 = next(x["high_watermark"] for x in hw["partitions"] if x["partition"] == 0)
            br.open(f"/groups/{group}", "#offsets-table tbody tr td.num")
            page.wait_for_selector("#members-table tbody tr td.mono")
            page.wait_for_function(
                "() => document.querySelector('#group-cards').innerText.includes('Stable')")
            rows = page.eval_on_selector_all(
                "#offsets-table tbody tr", "rs => rs.map(r => Array.from(r.cells).map(c => c.innerText.trim()))")
            by_part = {int(r[1]): r for r in rows}
            assert by_part[0][2] == "4", rows
            assert by_part[0][3] == str(end0), rows
            lag0 = end0 - 4
            assert by_part[0][4] == str(lag0), rows
            assert "console-test" in text(page, "#members-table")
            # write controls are only for empty groups
            assert not page.is_visible("#reset-form")
            assert page.is_visible("#group-busy")
            br.shot(shots, "06-group-stable")

            br.open("/groups", f"#groups a[href='#/groups/{group}']")
            br.shot(shots, "05-groups")
        finally:
            stop.set()
            poller.join(10)
            c.close()

        # -- the group is empty now: preview a reset, then execute it
        br.open(f"/groups/{group}", "#offsets-table tbody tr td.num")
        page.wait_for_function(
            "() => document.querySelector('#group-cards').innerText.includes('Empty')", timeout=30_000)
        page.wait_for_selector("#reset-form", state="visible")
        page.fill("#reset-form input[name=topic]", other)
        page.fill("#reset-form input[name=partitions]", "0")
        page.select_option("#reset-form select[name=to]", "latest")
        page.click("#reset-preview-btn")
        page.wait_for_selector("#reset-preview tbody tr")
        preview = text(page, "#reset-preview")
        assert "preview" in text(page, "#reset-result") and str(end0) in preview, preview
        br.shot(shots, "07-group-reset-preview")
        _, g = api(agent, "GET", f"/api/v1/groups/{group}")
        assert {o["partition"]: o["committed_offset"] for o in g["offsets"]}[0] == 4, "a preview changed offsets"
        page.click("#reset-execute")
        page.wait_for_function(
            "() => document.querySelector('#reset-result').innerText.includes('executed')")
        _, g = api(agent, "GET", f"/api/v1/groups/{group}")
        assert {o["partition"]: o["committed_offset"] for o in g["offsets"]}[0] == end0, g

        # -- the topic page lists the group with its lag
        br.open(f"/topics/{other}", f"#topic-groups-table a[href='#/groups/{group}']")
        page.fill("#browse-form input[name=limit]", "20")
        page.click("#browse-form button[type=submit]")
        page.wait_for_selector("#messages-table tbody tr td.val")
        page.locator("body").click(position={"x": 5, "y": 5})  # leave the form: refresh resumes
        br.shot(shots, "04-topic")

        # -- agents page: this agent and its leases
        br.open("/agents", "#leases-table tbody tr td.num")
        assert agent.bootstrap in text(page, "#agents-table")
        assert other in text(page, "#leases-table")
        br.shot(shots, "08-agents")

        # -- the dashboard under steady traffic, for the screenshot (docs/console.png)
        stop_traffic = threading.Event()

        def traffic():
            i = 0
            while not stop_traffic.is_set():
                for _ in range(40):
                    p.produce(other if i % 4 else topic, value=b'{"event": "page_view"}', key=str(i).encode())
                    i += 1
                p.poll(0)
                time.sleep(0.1)

        producer = threading.Thread(target=traffic, daemon=True)
        producer.start()
        try:
            br.open("/", "#dash-cards .card")
            page.wait_for_timeout(12_000)  # samples for the throughput chart
            assert page.evaluate("window.streamhouseConsole.state.produceRates.slice(-3).every(r => r > 0)")
            br.shot(shots, "01-dashboard")
        finally:
            stop_traffic.set()
            producer.join(10)

        # -- an API error appears as a banner with its Kafka error code
        br.open("/console", "#produce-form")
        page.fill("#produce-form input[name=topic]", unique("no-such-topic"))
        page.fill("#produce-form input[name=partition]", "0")
        page.fill("#produce-form textarea[name=value]", "x")
        page.click("#send-btn")
        banner = page.wait_for_selector(".banner.error")
        assert "UNKNOWN_TOPIC_OR_PARTITION" in banner.inner_text(), banner.inner_text()
        br.shot(shots, "09-error-banner")
        # the 404 of that request is the one expected console error
        br.errors = [e for e in br.errors if not ("404" in e and "/api/v1/produce" in e)]

        br.assert_clean(metrics=has_metrics(agent))
    finally:
        p.flush(10)
        br.close()


def test_console_read_only_hides_write_controls(ro_agent, pw, shots, unique):
    topic = unique("ro")
    create_topic(ro_agent.bootstrap, topic, partitions=2)
    status, body = api(ro_agent, "POST", "/api/v1/topics", {"name": unique("nope")})
    assert status == 403 and body["error"]["code"] == "CLUSTER_AUTHORIZATION_FAILED", body

    br = Browser(pw, ro_agent.console)
    page = br.page
    try:
        br.open("/", "#dash-cards .card")
        assert page.is_visible("#read-only-badge")
        br.open("/topics", f"#topics tr[data-topic='{topic}']")
        assert not page.is_visible("#create-topic-form")
        assert not page.is_visible("#create-topic-panel")
        br.open(f"/topics/{topic}", "#partitions-table tbody tr:nth-child(2)")
        assert not page.is_visible("#add-partitions-form")
        assert not page.is_visible("#delete-topic")
        assert page.is_visible("#browse-form"), "reading messages is not a write"
        br.open("/console", "#produce-form")
        assert not page.is_visible("#produce-form")
        assert not page.is_visible("#send-btn")
        assert "read-only" in text(page, "#content")
        br.shot(shots, "10-console-read-only")
        # every write control on every page is hidden
        for route in ("/", "/topics", f"/topics/{topic}", "/groups", "/agents", "/console"):
            br.page.goto(f"{br.base}/#{route}")
            br.wait_refreshed()
            visible = page.eval_on_selector_all(
                ".write, #create-topic-form, #produce-form, #reset-form, #delete-group, #delete-topic",
                "els => els.filter(e => e.offsetParent !== null).map(e => e.id || e.className)")
            assert not visible, f"{route}: write controls visible in read-only mode: {visible}"
        br.assert_clean(metrics=has_metrics(ro_agent))
    finally:
        br.close()
