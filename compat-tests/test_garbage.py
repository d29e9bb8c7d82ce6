"""Robustness: malformed frames on raw sockets must never take the broker down or wedge it, and the
protocol's error paths answer the way Kafka clients expect."""

from __future__ import annotations

import random
import struct

import pytest
from confluent_kafka import Producer

import kafka_wire as kw
from compat_util import consume_all, create_topic

UNSUPPORTED_VERSION = 35


def roundtrip_works(broker, unique, n=200):
    topic = unique("garbage-check")
    create_topic(broker.bootstrap, topic, partitions=1)
    errors = []
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all",
                  "message.timeout.ms": 20000})
    for i in range(n):
        p.produce(topic, value=f"still-alive-{i}".encode(), partition=0,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(30) == 0
    assert not errors, errors[:3]
    msgs = consume_all(broker.bootstrap, topic, 1, expected={0: n})[0]
    assert [m.value() for m in msgs] == [f"still-alive-{i}".encode() for i in range(n)]


def send_and_watch(broker, data: bytes, timeout: float = 5.0, close_after_send=False) -> str:
    s = kw.connect(broker.bootstrap)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return "closed"
        if close_after_send:
            return "sent"
        return kw.wait_closed_or_idle(s, timeout)
    finally:
        s.close()


def apiversions_request(version: int, correlation_id: int) -> bytes:
    flexible = version >= 3
    body = (kw.compact_string("compat-garbage") + kw.compact_string("0.0.1") + kw.uvarint(0)
            if flexible else b"")
    return kw.frame(kw.request_header(18, version, correlation_id, "compat-garbage", flexible) + body)


@pytest.mark.timeout(60)
def test_apiversions_v0_and_v3_answer(broker):
    """The handshake every client starts with: v0 (non-flexible) and v3 (flexible request)."""
    for version, corr in ((0, 7), (3, 8)):
        s = kw.connect(broker.bootstrap)
        try:
            s.sendall(apiversions_request(version, corr))
            resp = kw.recv_frame(s)
        finally:
            s.close()
        (got_corr, err) = struct.unpack_from(">ih", resp, 0)
        assert got_corr == corr
        assert err == 0, f"ApiVersions v{version} error {err}"
        # ApiVersions responses always use response header v0: the body starts right after
        # the correlation id, api_keys is a plain array in v0, a compact array in v3
        if version == 0:
            (count,) = struct.unpack_from(">i", resp, 6)
            entries = [struct.unpack_from(">hhh", resp, 10 + 6 * i) for i in range(count)]
        else:
            count, off = _read_uvarint(resp, 6)
            count -= 1
            entries = []
            for _ in range(count):
                entries.append(struct.unpack_from(">hhh", resp, off))
                off += 6
                ntags, off = _read_uvarint(resp, off)
                assert ntags == 0
        keys = {k: (lo, hi) for k, lo, hi in entries}
        for api in (0, 1, 2, 3, 18):  # Produce, Fetch, ListOffsets, Metadata, ApiVersions
            assert api in keys, f"ApiVersions v{version} does not list api key {api}: {keys}"
            lo, hi = keys[api]
            assert 0 <= lo <= hi, (api, lo, hi)
        assert keys[18][1] >= 3, "ApiVersions v3 (KIP-511) must be supported"


def _read_uvarint(buf: bytes, off: int):
    shift = value = 0
    while True:
        b = buf[off]
        off += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, off
        shift += 7


@pytest.mark.timeout(60)
def test_apiversions_unsupported_version_gets_error_35(broker):
    s = kw.connect(broker.bootstrap)
    try:
        s.sendall(apiversions_request(99, 4242))
        resp = kw.recv_frame(s)
    finally:
        s.close()
    (corr, err) = struct.unpack_from(">ih", resp, 0)
    assert corr == 4242, "correlation id not echoed"
    assert err == UNSUPPORTED_VERSION, f"expected UNSUPPORTED_VERSION (35), got {err}"
    # Kafka answers with a v0 body listing its versions, so the client can retry with one it
    # supports (librdkafka and the Java client do exactly that)
    if len(resp) >= 10:
        (count,) = struct.unpack_from(">i", resp, 6)
        entries = [struct.unpack_from(">hhh", resp, 10 + 6 * i) for i in range(count)]
        assert 18 in {k for k, _lo, _hi in entries}, entries


@pytest.mark.timeout(90)
def test_garbage_frames_do_not_hurt_the_broker(broker, unique):
    outcomes = {}

    # random bytes (fixed seeds: reproducible)
    for seed in range(5):
        rnd = random.Random(seed)
        outcomes[f"random-{seed}"] = send_and_watch(broker, rnd.randbytes(4096), timeout=3)

    # a length prefix claiming 2 GiB: must not be allocated; Kafka closes such connections
    outcomes["2GiB"] = send_and_watch(broker, struct.pack(">i", 0x7FFFFFFF) + b"\x00" * 64)

    # negative length
    outcomes["negative"] = send_and_watch(broker, struct.pack(">i", -1) + b"\x00" * 16)

    # zero length: no header at all
    outcomes["zero"] = send_and_watch(broker, struct.pack(">i", 0))

    # truncated frame, then the client goes away
    outcomes["truncated"] = send_and_watch(
        broker, struct.pack(">i", 1000) + apiversions_request(0, 1)[4:], close_after_send=True)

    # a well-formed header with an unknown api key: error response or close, never a crash
    frame = kw.frame(kw.request_header(9999, 0, 77, "compat-garbage", False) + b"\x00" * 8)
    outcomes["unknown-api"] = send_and_watch(broker, frame)
    # and an api key that does not fit the known range at all
    frame = kw.frame(kw.request_header(-5, 0, 78, "compat-garbage", False))
    outcomes["negative-api"] = send_and_watch(broker, frame)

    # a known api (Metadata) with a body that is pure junk
    frame = kw.frame(kw.request_header(3, 1, 79, "compat-garbage", False) + b"\xff" * 32)
    outcomes["junk-metadata-body"] = send_and_watch(broker, frame)

    # a header whose client id length runs past the frame
    frame = kw.frame(struct.pack(">hhih", 18, 0, 80, 500) + b"abc")
    outcomes["bad-client-id"] = send_and_watch(broker, frame)

    # connection churn: many connect/close cycles without a byte
    for _ in range(200):
        s = kw.connect(broker.bootstrap)
        s.close()

    broker.assert_alive()
    # the broker still serves: ApiVersions on a fresh connection, and a real client roundtrip
    s = kw.connect(broker.bootstrap)
    try:
        s.sendall(apiversions_request(0, 99))
        assert struct.unpack_from(">i", kw.recv_frame(s), 0)[0] == 99
    finally:
        s.close()
    roundtrip_works(broker, unique)
    broker.assert_alive()
    print("outcomes:", outcomes)
    # Kafka closes a connection whose frame length is negative or above socket.request.max.bytes
    # instead of allocating it or waiting for 2 GiB to arrive
    assert outcomes["2GiB"] == "closed", f"a 2 GiB frame length must close the connection: {outcomes}"
    assert outcomes["negative"] == "closed", f"a negative frame length must close the connection: {outcomes}"


@pytest.mark.timeout(60)
def test_many_pipelined_requests_answer_in_order(broker):
    """Kafka guarantees responses on a connection come back in request order."""
    s = kw.connect(broker.bootstrap)
    try:
        s.sendall(b"".join(apiversions_request(v, 1000 + i)
                           for i, v in enumerate([0, 1, 2, 3] * 25)))
        corrs = [struct.unpack_from(">i", kw.recv_frame(s), 0)[0] for _ in range(100)]
    finally:
        s.close()
    assert corrs == [1000 + i for i in range(100)]
