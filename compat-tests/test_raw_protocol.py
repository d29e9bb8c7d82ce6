"""Protocol semantics that real clients only hit on failures, driven with hand-made requests on a
raw socket: CRC validation and idempotent-producer deduplication (architecture invariants 4, 5)."""

from __future__ import annotations

import pytest

import kafka_wire as kw
from compat_util import consume_all, create_topic, high_watermarks

NONE = 0
CORRUPT_MESSAGE = 2
OUT_OF_ORDER_SEQUENCE_NUMBER = 45


@pytest.mark.timeout(60)
def test_raw_produce_crc_is_checked(broker, unique):
    """A record batch with a wrong CRC-32C is rejected with CORRUPT_MESSAGE and never stored; the
    same batch with the right CRC is accepted at offset 0 and reads back byte-identical."""
    topic = unique("raw-crc")
    create_topic(broker.bootstrap, topic, partitions=1)
    values = [f"raw-{i}".encode() for i in range(5)]

    s = kw.connect(broker.bootstrap, timeout=15)
    try:
        s.sendall(kw.produce_request_v3(501, topic, 0, kw.record_batch(values, corrupt_crc=True)))
        corr, parts = kw.parse_produce_response_v3(kw.recv_frame(s))
        assert corr == 501
        assert len(parts) == 1 and parts[0][:3] == (topic, 0, CORRUPT_MESSAGE), parts

        s.sendall(kw.produce_request_v3(502, topic, 0, kw.record_batch(values)))
        corr, parts = kw.parse_produce_response_v3(kw.recv_frame(s))
        assert corr == 502
        assert parts == [(topic, 0, 0, 0)], parts
    finally:
        s.close()

    msgs = consume_all(broker.bootstrap, topic, 1, expected={0: len(values)})[0]
    assert [(m.offset(), m.value(), m.key()) for m in msgs] == [
        (i, v, None) for i, v in enumerate(values)
    ]


@pytest.mark.timeout(60)
def test_idempotent_retry_is_not_written_twice(broker, unique):
    """The same idempotent batch sent twice (a producer retry after a lost response) is stored once
    and the retry is answered with the original base offset; a sequence gap is rejected."""
    topic = unique("raw-idem")
    create_topic(broker.bootstrap, topic, partitions=1)
    s = kw.connect(broker.bootstrap, timeout=15)
    try:
        s.sendall(kw.init_producer_id_request_v0(600))
        corr, err, pid, epoch = kw.parse_init_producer_id_response_v0(kw.recv_frame(s))
        assert (corr, err) == (600, NONE), (corr, err)
        assert pid >= 0 and epoch >= 0, (pid, epoch)

        def produce(corr_id, values, seq):
            batch = kw.record_batch(values, producer_id=pid, producer_epoch=epoch, base_sequence=seq)
            s.sendall(kw.produce_request_v3(corr_id, topic, 0, batch))
            got_corr, parts = kw.parse_produce_response_v3(kw.recv_frame(s))
            assert got_corr == corr_id
            assert len(parts) == 1 and parts[0][:2] == (topic, 0), parts
            return parts[0][2], parts[0][3]  # error code, base offset

        first = [f"idem-a{i}".encode() for i in range(5)]
        second = [f"idem-b{i}".encode() for i in range(3)]
        assert produce(601, first, 0) == (NONE, 0)
        # the retry of the same batch: success with the ORIGINAL offset, not a new write
        assert produce(602, first, 0) == (NONE, 0)
        assert produce(603, second, 5) == (NONE, 5)
        assert produce(604, second, 5) == (NONE, 5)
        # a gap in the sequence (8 expected) is OUT_OF_ORDER_SEQUENCE_NUMBER and is not written
        err, _ = produce(605, [b"gap"], 100)
        assert err == OUT_OF_ORDER_SEQUENCE_NUMBER, err
    finally:
        s.close()

    assert high_watermarks(broker.bootstrap, topic, 1)[0] == (0, 8)
    msgs = consume_all(broker.bootstrap, topic, 1, expected={0: 8})[0]
    assert [m.value() for m in msgs] == first + second
