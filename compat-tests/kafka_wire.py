"""Just enough of the Kafka wire format to send hand-made (and broken) requests over a raw socket."""

from __future__ import annotations

import socket
import struct
import time


# -- primitive encoders ----------------------------------------------------------------------------
def i8(v: int) -> bytes:
    return struct.pack(">b", v)


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def string(s: str | None) -> bytes:
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def uvarint(v: int) -> bytes:
    out = bytearray()
    while True:
        byte = v & 0x7F
        v >>= 7
        if v:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def varint(v: int) -> bytes:
    """zig-zag signed varint (record fields)."""
    return uvarint((v << 1) ^ (v >> 63))


def compact_string(s: str | None) -> bytes:
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


def request_header(api_key: int, api_version: int, correlation_id: int, client_id: str | None,
                   flexible: bool) -> bytes:
    h = i16(api_key) + i16(api_version) + i32(correlation_id) + string(client_id)
    if flexible:
        h += uvarint(0)  # empty tagged fields (request header v2)
    return h


def frame(payload: bytes) -> bytes:
    return i32(len(payload)) + payload


# -- CRC-32C (Castagnoli), for record batches ------------------------------------------------------
def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def record_batch(values: list[bytes], base_timestamp_ms: int | None = None,
                 corrupt_crc: bool = False, producer_id: int = -1, producer_epoch: int = -1,
                 base_sequence: int = -1) -> bytes:
    """An uncompressed magic-v2 record batch with keyless records (base offset 0). Give
    producer_id/epoch/base_sequence for an idempotent batch."""
    ts = base_timestamp_ms if base_timestamp_ms is not None else int(time.time() * 1000)
    records = b""
    for i, v in enumerate(values):
        body = (i8(0) + varint(0) + varint(i) + varint(-1)  # attributes, ts delta, offset delta, no key
                + varint(len(v)) + v + uvarint(0))        # value, no headers
        records += varint(len(body)) + body
    after_crc = (
        i16(0)                      # attributes: no compression, CreateTime
        + i32(len(values) - 1)      # lastOffsetDelta
        + i64(ts) + i64(ts)         # base / max timestamp
        + i64(producer_id) + i16(producer_epoch) + i32(base_sequence)
        + i32(len(values))
        + records
    )
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0xDEADBEEF
    body = i32(-1) + i8(2) + struct.pack(">I", crc) + after_crc  # partitionLeaderEpoch, magic, crc
    return i64(0) + i32(len(body)) + body


def produce_request_v3(correlation_id: int, topic: str, partition: int, batch: bytes,
                       acks: int = -1, timeout_ms: int = 10000) -> bytes:
    body = (
        string(None)  # transactional id
        + i16(acks) + i32(timeout_ms)
        + i32(1) + string(topic)
        + i32(1) + i32(partition) + i32(len(batch)) + batch
    )
    return frame(request_header(0, 3, correlation_id, "compat-raw", flexible=False) + body)


def init_producer_id_request_v0(correlation_id: int) -> bytes:
    body = string(None) + i32(60000)  # no transactional id, transaction timeout
    return frame(request_header(22, 0, correlation_id, "compat-raw", flexible=False) + body)


def parse_init_producer_id_response_v0(payload: bytes):
    """Returns (correlation_id, error_code, producer_id, producer_epoch)."""
    corr, _throttle, err, pid, epoch = struct.unpack_from(">iihqh", payload, 0)
    return corr, err, pid, epoch


def parse_produce_response_v3(payload: bytes):
    """payload = response after the size prefix. Returns (correlation_id, [(topic, partition, error,
    base_offset)])."""
    off = 0
    (corr,) = struct.unpack_from(">i", payload, off); off += 4
    (ntopics,) = struct.unpack_from(">i", payload, off); off += 4
    out = []
    for _ in range(ntopics):
        (tlen,) = struct.unpack_from(">h", payload, off); off += 2
        name = payload[off:off + tlen].decode(); off += tlen
        (nparts,) = struct.unpack_from(">i", payload, off); off += 4
        for _ in range(nparts):
            part, err, base = struct.unpack_from(">ihq", payload, off); off += 4 + 2 + 8
            off += 8  # log_append_time (v2+)
            out.append((name, part, err, base))
    return corr, out


# -- socket helpers --------------------------------------------------------------------------------
def connect(bootstrap: str, timeout: float = 5.0) -> socket.socket:
    host, _, port = bootstrap.rpartition(":")
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.settimeout(timeout)
    return s


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def recv_frame(s: socket.socket) -> bytes:
    (size,) = struct.unpack(">i", recv_exact(s, 4))
    assert 0 <= size < 64 * 1024 * 1024, f"absurd response size {size}"
    return recv_exact(s, size)


def wait_closed_or_idle(s: socket.socket, timeout: float) -> str:
    """Drain the socket. Returns 'closed' if the peer closed (EOF/RST), 'data' if it sent bytes and
    then stayed open past timeout, 'open' if nothing happened within timeout."""
    s.settimeout(timeout)
    got = False
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return "closed"
            got = True
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    except socket.timeout:
        return "data" if got else "open"


def api_versions(bootstrap: str) -> dict[int, tuple[int, int]]:
    """The broker's ApiVersions (v0) answer: {api_key: (min_version, max_version)}."""
    s = connect(bootstrap)
    try:
        s.sendall(frame(request_header(18, 0, 1, "compat-probe", flexible=False)))
        resp = recv_frame(s)
    finally:
        s.close()
    corr, err, count = struct.unpack_from(">ihi", resp, 0)
    assert corr == 1 and err == 0, (corr, err)
    return {k: (lo, hi) for k, lo, hi in
            (struct.unpack_from(">hhh", resp, 10 + 6 * i) for i in range(count))}
