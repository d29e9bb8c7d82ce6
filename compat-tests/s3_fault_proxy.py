"""An HTTP reverse proxy in front of an S3 API server (moto) that can be switched, while agents use it,
between passing requests through, answering every request with S3's 503 SlowDown, and hanging requests
(test_cluster_faults.py). Point an agent at it with AWS_ENDPOINT_URL=proxy.url.

    proxy = S3FaultProxy("http://127.0.0.1:9000")
    proxy.set_mode("503")      # every request answered 503 SlowDown with S3's XML error body
    proxy.set_mode("hang")     # every request is held unanswered ...
    proxy.set_mode("pass")     # ... until the mode changes; see `after_hang` for what then happens to it
    proxy.counts               # {(mode, method): requests}, to prove the faults happened
    proxy.close()

A held request, once the hang ends, is by default forwarded to the server and its answer thrown away with
the connection closed (after_hang="lose_answer"): the request took effect (a PUT stored its object) but the
client never heard, the nastiest outcome of an S3 timeout. after_hang="forward" answers it late instead
(S3 was slow), after_hang="drop" closes the connection without forwarding it.
"""

from __future__ import annotations

import http.client
import threading
import urllib.parse
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("pass", "503", "hang")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
              "upgrade", "content-length"}


def slow_down_body(resource: str) -> bytes:
    rid = uuid.uuid4().hex[:16].upper()
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
            f"<Resource>{resource}</Resource><RequestId>{rid}</RequestId>"
            f"<HostId>{uuid.uuid4().hex}</HostId></Error>").encode()


class S3FaultProxy:
    def __init__(self, target: str, after_hang: str = "lose_answer"):
        assert after_hang in ("lose_answer", "forward", "drop"), after_hang
        u = urllib.parse.urlparse(target if "://" in target else "http://" + target)
        self.target = (u.hostname, u.port or 80)
        self.after_hang = after_hang
        self.mode = "pass"
        self._cond = threading.Condition()
        self.counts: Counter = Counter()
        self.held_now = 0
        self.errors: list[str] = []  # upstream failures while passing through
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects

            def log_message(self, *args):  # quiet
                pass

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    out = bytearray()
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return bytes(out)
                        out += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _handle(self):
                body = self._body()
                mode = proxy.mode
                with proxy._cond:
                    proxy.counts[(mode, self.command)] += 1
                if mode == "503":
                    self._answer(503, {"Content-Type": "application/xml", "Retry-After": "1"},
                                 slow_down_body(self.path))
                    return
                if mode == "hang":
                    with proxy._cond:
                        proxy.held_now += 1
                        while proxy.mode == "hang" and not proxy._closed:
                            proxy._cond.wait(0.5)
                        proxy.held_now -= 1
                    if proxy.after_hang == "drop" or proxy._closed:
                        self.close_connection = True
                        return
                    status, headers, data = self._forward(body)
                    if proxy.after_hang == "lose_answer" or status is None:
                        self.close_connection = True
                        return
                    self._answer(status, headers, data)
                    return
                status, headers, data = self._forward(body)
                if status is None:
                    self.close_connection = True
                    return
                self._answer(status, headers, data)

            def _forward(self, body: bytes):
                conn = http.client.HTTPConnection(*proxy.target, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    headers["Content-Length"] = str(len(body))
                    conn.request(self.command, self.path, body=body, headers=headers)
                    r = conn.getresponse()
                    data = r.read()
                    out = {k: v for k, v in r.getheaders() if k.lower() not in HOP_BY_HOP}
                    if self.command == "HEAD" and r.getheader("Content-Length") is not None:
                        out["Content-Length"] = r.getheader("Content-Length")  # the object's size
                    return r.status, out, data
                except OSError as e:
                    proxy.errors.append(f"{self.command} {self.path}: {e!r}")
                    return None, None, None
                finally:
                    conn.close()

            def _answer(self, status: int, headers: dict, data: bytes):
                self.send_response(status)
                headers = dict(headers)
                length = headers.pop("Content-Length", None) if self.command == "HEAD" else None
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._closed = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._thread.start()

    def set_mode(self, mode: str) -> None:
        assert mode in MODES, mode
        with self._cond:
            self.mode = mode
            self._cond.notify_all()

    def count(self, mode: str, method: str | None = None) -> int:
        return sum(n for (m, meth), n in self.counts.items() if m == mode and (method is None or meth == method))

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self.mode = "pass"
            self._cond.notify_all()
        self.server.shutdown()
        self.server.server_close()
