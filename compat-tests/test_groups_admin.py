"""Consumer-group administration with confluent-kafka's AdminClient (librdkafka 2.16): ListGroups
(with the state and type filters), DescribeGroups, OffsetFetch, OffsetCommit from the admin
(alter), DeleteGroups, consumer lag; and with kafka-python's KafkaAdminClient what the Python
binding of librdkafka does not offer: OffsetDelete (delete_group_offsets) and removing a static
member by its group.instance.id (LeaveGroup v3+, KIP-345)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    ConsumerGroupType,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from compat_util import admin, create_topic, high_watermarks, wait_until
from test_groups import (
    Ledger,
    Member,
    broker_committed,
    describe,
    group_broker,  # noqa: F401 - fixture
    group_consumer,
    produce,
    wait_consumed_to,
    wait_split,
)

OFFSET_INVALID = -1001


def kp_admin(bootstrap):
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000,
                            client_id="compat-kafka-python-admin")


def listed(bootstrap, **kwargs):
    a = admin(bootstrap)  # keep the client alive until the result is in
    res = a.list_consumer_groups(request_timeout=15, **kwargs).result(timeout=20)
    assert not res.errors, res.errors
    return {g.group_id: g for g in res.valid}


def offsets_of(bootstrap, group, partitions=None):
    req = ConsumerGroupTopicPartitions(group, partitions)
    a = admin(bootstrap)
    res = a.list_consumer_group_offsets([req], request_timeout=15)[group].result(timeout=20)
    return {(tp.topic, tp.partition): tp for tp in res.topic_partitions}


def lag_of(bootstrap, group, topic, partitions):
    """Kafka's consumer lag: high watermark minus committed offset, per partition."""
    hw = high_watermarks(bootstrap, topic, partitions)
    committed = offsets_of(bootstrap, group, [TopicPartition(topic, p) for p in range(partitions)])
    return {p: hw[p][1] - committed[(topic, p)].offset for p in range(partitions)}


def idle_group(b, group, topic, partitions, expect):
    """One subscribe() consumer reads `expect` records, commits them and closes: an Empty group
    with committed offsets."""
    c = group_consumer(b.bootstrap, group, **{"session.timeout.ms": 6000,
                                              "heartbeat.interval.ms": 1000})
    c.subscribe([topic])
    got = 0
    deadline = time.monotonic() + 30
    while got < expect and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got += 1
    assert got == expect
    c.commit(asynchronous=False)
    c.close()


@pytest.mark.timeout(120)
def test_list_describe_alter_delete_groups(group_broker, unique):
    b = group_broker
    parts = 4
    topic, other = unique("adm"), unique("adm-other")
    active, idle, never = unique("g-active"), unique("g-idle"), unique("g-never")
    create_topic(b.bootstrap, topic, partitions=parts)
    create_topic(b.bootstrap, other, partitions=2)
    produce(b.bootstrap, topic, [f"r{i}".encode() for i in range(400)], parts)
    a = admin(b.bootstrap)

    idle_group(b, idle, topic, parts, 400)
    ledger = Ledger(topic)
    members = [Member(f"m{i}", b.bootstrap, active, topic, ledger) for i in range(2)]
    try:
        for m in members:
            m.start()
        split = wait_split(members, parts, [2, 2], what="active group")
        wait_consumed_to(ledger, {p: 100 for p in range(parts)})
        # a member may commit offsets of any topic: the active group also holds offsets of `other`
        res = members[0].call(lambda c: c.commit(
            offsets=[TopicPartition(other, 0, 3), TopicPartition(other, 1, 4)], asynchronous=False))
        assert all(tp.error is None for tp in res), res

        # -- ListGroups ------------------------------------------------------------------------
        groups = listed(b.bootstrap)
        assert active in groups and idle in groups, sorted(groups)
        assert never not in groups
        assert groups[active].state == ConsumerGroupState.STABLE
        assert groups[idle].state == ConsumerGroupState.EMPTY
        assert not groups[active].is_simple_consumer_group
        stable = listed(b.bootstrap, states={ConsumerGroupState.STABLE})
        assert active in stable and idle not in stable
        assert all(g.state == ConsumerGroupState.STABLE for g in stable.values())
        empty = listed(b.bootstrap, states={ConsumerGroupState.EMPTY})
        assert idle in empty and active not in empty
        classic = listed(b.bootstrap, types={ConsumerGroupType.CLASSIC})
        assert {active, idle} <= set(classic)
        assert listed(b.bootstrap, types={ConsumerGroupType.CONSUMER}).keys().isdisjoint({active, idle})

        # -- DescribeGroups --------------------------------------------------------------------
        d = describe(b.bootstrap, active)
        assert d.state == ConsumerGroupState.STABLE
        assert not d.is_simple_consumer_group
        assert d.partition_assignor == "range"
        assert len(d.members) == 2
        by_client = {x.client_id: x for x in d.members}
        assert set(by_client) == {"compat-m0", "compat-m1"}
        for m, own in zip(members, split):
            x = by_client[f"compat-{m.member}"]
            assert x.member_id and x.host.lstrip("/").startswith("127.0.0.1"), (x.member_id, x.host)
            assert {(tp.topic, tp.partition) for tp in x.assignment.topic_partitions} == \
                {(topic, p) for p in own}
        d = describe(b.bootstrap, idle)
        assert d.state == ConsumerGroupState.EMPTY and d.members == []

        # -- OffsetFetch -----------------------------------------------------------------------
        offs = offsets_of(b.bootstrap, idle)
        assert {k: tp.offset for k, tp in offs.items()} == {(topic, p): 100 for p in range(parts)}
        offs = offsets_of(b.bootstrap, active)
        assert {k: tp.offset for k, tp in offs.items()} == {
            **{(topic, p): 100 for p in range(parts)}, (other, 0): 3, (other, 1): 4}
        # a partition without a commit: OFFSET_INVALID
        offs = offsets_of(b.bootstrap, idle, [TopicPartition(topic, 0), TopicPartition(other, 1)])
        assert offs[(topic, 0)].offset == 100 and offs[(other, 1)].offset == OFFSET_INVALID

        # -- OffsetCommit from the admin (alter) -----------------------------------------------
        # refused while the group has members (Kafka: UNKNOWN_MEMBER_ID), nothing changes
        req = ConsumerGroupTopicPartitions(active, [TopicPartition(topic, 0, 1)])
        try:
            r = a.alter_consumer_group_offsets([req], request_timeout=15)[active].result(timeout=20)
            errors = [tp.error for tp in r.topic_partitions]
        except KafkaException as e:
            errors = [e.args[0]]
        assert [e and e.code() for e in errors] == [KafkaError.UNKNOWN_MEMBER_ID], errors
        assert offsets_of(b.bootstrap, active)[(topic, 0)].offset == 100
        # allowed on the empty group, metadata kept
        req = ConsumerGroupTopicPartitions(idle, [TopicPartition(topic, 0, 5, metadata="rewound"),
                                                  TopicPartition(topic, 1, 50)])
        r = a.alter_consumer_group_offsets([req], request_timeout=15)[idle].result(timeout=20)
        assert all(tp.error is None for tp in r.topic_partitions), r.topic_partitions
        offs = offsets_of(b.bootstrap, idle)
        assert offs[(topic, 0)].offset == 5 and offs[(topic, 0)].metadata == "rewound"
        assert offs[(topic, 1)].offset == 50 and offs[(topic, 2)].offset == 100

        # -- OffsetDelete (kafka-python) -------------------------------------------------------
        from kafka import TopicPartition as KTP
        from kafka.errors import GroupSubscribedToTopicError, NoError

        kp = kp_admin(b.bootstrap)
        try:
            # the members are subscribed to `topic`: refused per partition, offsets stay
            out = kp.delete_group_offsets(active, [KTP(topic, 0), KTP(topic, 1)])
            assert set(out.values()) == {GroupSubscribedToTopicError}, out
            assert offsets_of(b.bootstrap, active)[(topic, 0)].offset == 100
            # nobody is subscribed to `other`: deleted although the group is active
            out = kp.delete_group_offsets(active, [KTP(other, 0)])
            assert set(out.values()) == {NoError}, out
            offs = offsets_of(b.bootstrap, active)
            assert (other, 0) not in offs and offs[(other, 1)].offset == 4, offs.keys()
            # an empty group: deleted; the other partitions keep theirs
            out = kp.delete_group_offsets(idle, [KTP(topic, 0), KTP(topic, 2)])
            assert set(out.values()) == {NoError}, out
            offs = offsets_of(b.bootstrap, idle, [TopicPartition(topic, p) for p in range(parts)])
            assert {p: offs[(topic, p)].offset for p in range(parts)} == {
                0: OFFSET_INVALID, 1: 50, 2: OFFSET_INVALID, 3: 100}
        finally:
            kp.close()

        # -- DeleteGroups ----------------------------------------------------------------------
        with pytest.raises(KafkaException) as ei:
            a.delete_consumer_groups([active], request_timeout=15)[active].result(timeout=20)
        assert ei.value.args[0].code() == KafkaError.NON_EMPTY_GROUP, ei.value
        assert offsets_of(b.bootstrap, active)[(topic, 0)].offset == 100
    finally:
        for m in members:
            if m.is_alive():
                m.stop()
    # both members left (LeaveGroup): the group is Empty, its offsets are kept
    wait_until(lambda: describe(b.bootstrap, active).state == ConsumerGroupState.EMPTY,
               timeout=15, what="active group empty after its members left")
    assert listed(b.bootstrap, states={ConsumerGroupState.EMPTY}).keys() >= {active, idle}
    assert offsets_of(b.bootstrap, active)[(topic, 1)].offset == 100
    a.delete_consumer_groups([active], request_timeout=15)[active].result(timeout=20)
    assert active not in listed(b.bootstrap)
    assert offsets_of(b.bootstrap, active) == {}
    with pytest.raises(KafkaException) as ei:
        a.delete_consumer_groups([never], request_timeout=15)[never].result(timeout=20)
    assert ei.value.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND, ei.value
    # a new member of the deleted group starts from auto.offset.reset (earliest), not from 100
    c = group_consumer(b.bootstrap, active, **{"session.timeout.ms": 6000})
    c.subscribe([topic])
    try:
        m = None
        deadline = time.monotonic() + 20
        while (m is None or m.error()) and time.monotonic() < deadline:
            m = c.poll(0.5)
        assert m is not None and not m.error() and m.offset() == 0, m
    finally:
        c.close()
    # the idle group resumes at the altered offsets: p1 at 50, p0 (deleted) from earliest
    ledger2 = Ledger(topic)
    m = Member("resume", b.bootstrap, idle, topic, ledger2)
    m.start()
    try:
        wait_consumed_to(ledger2, {0: 100, 1: 100, 2: 100})
        time.sleep(1.0)  # partition 3 (committed at its end) must stay silent
    finally:
        m.stop()
    first = {}
    for _, p, o, _ in ledger2.deliveries:
        first.setdefault(p, o)
    assert first == {0: 0, 1: 50, 2: 0}, first  # nothing on partition 3
    assert broker_committed(b.bootstrap, idle, topic, parts) == {p: 100 for p in range(parts)}


@pytest.mark.timeout(60)
def test_describe_unknown_and_deleted_group_is_dead(group_broker, unique):
    """DescribeGroups of a group id nobody ever used says Dead (Kafka, DescribeGroups v0-5), and so
    does a group after DeleteGroups; neither is listed (FINDINGS G5)."""
    b = group_broker
    topic, never, deleted = unique("adm-dead"), unique("g-never"), unique("g-deleted")
    create_topic(b.bootstrap, topic, partitions=1)
    produce(b.bootstrap, topic, [b"x"] * 5, 1)
    idle_group(b, deleted, topic, 1, 5)
    a = admin(b.bootstrap)
    a.delete_consumer_groups([deleted], request_timeout=15)[deleted].result(timeout=20)
    assert not {never, deleted} & set(listed(b.bootstrap))
    for g in (never, deleted):
        d = describe(b.bootstrap, g)
        assert d.state == ConsumerGroupState.DEAD and d.members == [], (g, d.state)


@pytest.mark.timeout(90)
def test_consumer_lag(group_broker, unique):
    """Lag = high watermark (ListOffsets latest) - committed offset (OffsetFetch), per partition,
    as kafka-consumer-groups computes it: exact after a consumer commits, after more records
    arrive, after an admin rewind; the consumer's own committed() and position() agree."""
    b = group_broker
    parts = 3
    topic, group = unique("lag"), unique("g-lag")
    create_topic(b.bootstrap, topic, partitions=parts)
    sizes = {0: 50, 1: 80, 2: 120}
    for p, n in sizes.items():
        produce_to(b.bootstrap, topic, p, n)
    c = group_consumer(b.bootstrap, group, **{"session.timeout.ms": 6000})
    c.subscribe([topic])
    read = {p: 0 for p in range(parts)}
    deadline = time.monotonic() + 30
    # read 20 records of each partition only (pause a partition when it has 20)
    while any(v < 20 for v in read.values()) and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        if read[m.partition()] < 20:
            read[m.partition()] += 1
            c.commit(message=m, asynchronous=False)
            if read[m.partition()] == 20:
                c.pause([TopicPartition(topic, m.partition())])
    assert read == {p: 20 for p in range(parts)}, read
    assert lag_of(b.bootstrap, group, topic, parts) == {p: n - 20 for p, n in sizes.items()}
    committed = c.committed([TopicPartition(topic, p) for p in range(parts)], timeout=10)
    assert {tp.partition: tp.offset for tp in committed} == {p: 20 for p in range(parts)}

    # more records: lag grows by exactly that many
    for p, n in {0: 7, 1: 0, 2: 13}.items():
        produce_to(b.bootstrap, topic, p, n)
    assert lag_of(b.bootstrap, group, topic, parts) == {0: 37, 1: 60, 2: 113}
    # the consumer catches up on partition 1 only
    c.resume([TopicPartition(topic, 1)])
    c.pause([TopicPartition(topic, 0), TopicPartition(topic, 2)])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            c.commit(message=m, asynchronous=False)
            if m.offset() == 79:
                break
    assert c.position([TopicPartition(topic, 1)])[0].offset == 80
    assert lag_of(b.bootstrap, group, topic, parts) == {0: 37, 1: 0, 2: 113}
    c.close()
    # an admin rewind of partition 1 to 10 (the group is empty now)
    a = admin(b.bootstrap)
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 1, 10)])
    a.alter_consumer_group_offsets([req], request_timeout=15)[group].result(timeout=20)
    assert lag_of(b.bootstrap, group, topic, parts) == {0: 37, 1: 70, 2: 113}


def produce_to(bootstrap, topic, partition, n):
    if n == 0:
        return
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    errors = []
    for i in range(n):
        p.produce(topic, value=f"p{partition}-{i}".encode(), partition=partition,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(30) == 0 and not errors, errors[:3]


@pytest.mark.timeout(90)
def test_remove_static_member_by_instance_id(group_broker, unique):
    """KIP-345's admin removal: a static member that closed (no LeaveGroup) would keep its
    partitions until session.timeout.ms; removing it by group.instance.id (LeaveGroup v3+ from
    kafka-python's admin) hands its partitions to the others at once. Removing an unknown
    instance id is UNKNOWN_MEMBER_ID for that member."""
    from kafka.admin import MemberToRemove
    from kafka.errors import NoError, UnknownMemberIdError

    b = group_broker
    parts = 4
    topic, group = unique("adm-static"), unique("g-static")
    create_topic(b.bootstrap, topic, partitions=parts)
    ledger = Ledger(topic)
    conf = {"session.timeout.ms": 30000, "max.poll.interval.ms": 30000}
    members = [Member(n, b.bootstrap, group, topic, ledger, {**conf, "group.instance.id": f"{group}-{n}"})
               for n in ("s0", "s1")]
    try:
        for m in members:
            m.start()
        wait_split(members, parts, [2, 2], what="two static members")
        gone = members[1]
        gone.stop()  # static: no LeaveGroup, the group keeps it for 30 s
        time.sleep(1.5)
        d = describe(b.bootstrap, group)
        assert len(d.members) == 2 and d.state == ConsumerGroupState.STABLE, d
        kp = kp_admin(b.bootstrap)
        try:
            t0 = time.monotonic()
            out = kp.remove_group_members(group, [MemberToRemove(group_instance_id=f"{group}-s1"),
                                                  MemberToRemove(group_instance_id=f"{group}-nope")])
            # kafka-python keys the answer by member id, else instance id
            assert out == {f"{group}-s1": NoError, f"{group}-nope": UnknownMemberIdError}, out
        finally:
            kp.close()
        wait_split(members[:1], parts, [4], timeout=10, what="after removing the static member")
        assert time.monotonic() - t0 < 10
        d = describe(b.bootstrap, group)
        assert [x.group_instance_id for x in d.members] == [f"{group}-s0"], d.members
    finally:
        for m in members:
            if m.is_alive():
                m.stop()
