"""Publishing and consuming: mandatory returns, confirms, consumer tags,
cancel (client and broker initiated), basic.get, no-ack consumers."""

import time

import pika
import pika.exceptions
import pytest

import rawamqp
from amqp_helpers import Collector, queue_depth, settle, wait_until

DEADLINE = 30  # seconds to wait for something that must happen


def dispatch_returns(channel):
    """Hand every basic.return that the broker sent before now to the
    channel's return callbacks: a round trip (the broker sends a publish's
    return before it answers a later method on the channel), then the
    callbacks pika queued meanwhile."""
    settle(channel)
    channel.connection.process_data_events(time_limit=0)


def test_mandatory_unroutable_is_returned_312(channel, uname):
    x = uname("x")
    channel.exchange_declare(x, "direct", auto_delete=True)
    keeper = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(keeper, x, "routable")
    returned = []
    channel.add_on_return_callback(
        lambda ch, method, props, body: returned.append(
            (method, props, body)))
    props = pika.BasicProperties(message_id="m-1", headers={"h": "v"},
                                 content_type="text/plain")
    channel.basic_publish(x, "unroutable", b"come back", props,
                          mandatory=True)
    channel.basic_publish(x, "routable", b"stays", mandatory=True)
    assert wait_until(lambda: returned, connection=channel.connection,
                      timeout=DEADLINE)
    dispatch_returns(channel)  # a return of b"stays" would be there now
    assert len(returned) == 1
    method, rprops, body = returned[0]
    assert method.reply_code == 312
    assert method.reply_text == "NO_ROUTE"
    assert method.exchange == x
    assert method.routing_key == "unroutable"
    assert body == b"come back"
    assert rprops.message_id == "m-1"
    assert rprops.headers == {"h": "v"}
    assert rprops.content_type == "text/plain"
    assert queue_depth(channel, keeper) == 1


def test_mandatory_to_default_exchange_missing_queue_is_returned(channel,
                                                                 uname):
    returned = []
    channel.add_on_return_callback(
        lambda ch, method, props, body: returned.append((method, body)))
    missing = uname("no-such-queue")
    channel.basic_publish("", missing, b"x", mandatory=True)
    assert wait_until(lambda: returned, connection=channel.connection,
                      timeout=DEADLINE)
    method, body = returned[0]
    assert (method.reply_code, method.reply_text) == (312, "NO_ROUTE")
    assert method.exchange == ""
    assert method.routing_key == missing


def test_non_mandatory_unroutable_is_dropped_silently(channel, uname):
    returned = []
    channel.add_on_return_callback(
        lambda ch, method, props, body: returned.append(body))
    channel.basic_publish("amq.direct", uname("nobody"), b"x")
    # Positive control: the same message, mandatory, comes back; returns
    # arrive in publish order, so a return of b"x" would be ahead of it.
    channel.basic_publish("amq.direct", uname("nobody"), b"control",
                          mandatory=True)
    assert wait_until(lambda: returned, connection=channel.connection,
                      timeout=DEADLINE)
    assert returned == [b"control"]
    assert channel.is_open


def test_confirm_mode_acks_routable_and_flags_unroutable(channel, uname):
    channel.confirm_delivery()
    q = channel.queue_declare("", exclusive=True).method.queue
    for i in range(10):
        channel.basic_publish("", q, b"%d" % i)  # raises if nacked
    with pytest.raises(pika.exceptions.UnroutableError) as info:
        channel.basic_publish("amq.direct", uname("nobody"), b"lost",
                              mandatory=True)
    returned = info.value.messages
    assert len(returned) == 1
    assert returned[0].method.reply_code == 312
    assert returned[0].body == b"lost"
    # a non-mandatory unroutable message is simply confirmed
    channel.basic_publish("amq.direct", uname("nobody"), b"dropped")
    assert queue_depth(channel, q) == 10


def test_confirm_mode_publish_to_missing_exchange_closes_channel(
        connection, uname):
    ch = connection.channel()
    ch.confirm_delivery()
    missing = uname("missing")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.basic_publish(missing, "k", b"x")
    assert info.value.reply_code == 404
    assert info.value.reply_text == (
        "NOT_FOUND - no exchange '%s' in vhost '/'" % missing)


def test_server_generated_consumer_tag_raw(raw_client):
    """pika always picks its own tags, so ask for server-named ones with the
    raw client (empty consumer-tag in basic.consume)."""
    c = raw_client()
    c.handshake()
    c.channel_open(1)
    q, _, _ = c.queue_declare(1, "", exclusive=True)
    tags = [c.basic_consume(1, q, "") for _ in range(3)]
    for tag in tags:
        assert tag.startswith("amq.ctag-")
        assert len(tag) > len("amq.ctag-")
    assert len(set(tags)) == 3
    for tag in tags[1:]:
        c.send_method(1, (60, 30), rawamqp.shortstr(tag)
                      + rawamqp.bits(False))
        assert c.read_method((60, 31)).args.shortstr() == tag
    tag = tags[0]
    c.basic_publish(1, "", q, b"hello")
    deliver, _, body = c.read_delivery()
    assert deliver["consumer_tag"] == tag
    assert body == b"hello"
    c.close()


def test_delivery_fields(channel, uname):
    x = uname("x")
    channel.exchange_declare(x, "topic", auto_delete=True)
    q = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(q, x, "a.#")
    collector = Collector()
    tag = channel.basic_consume(q, collector, consumer_tag="my-tag")
    assert tag == "my-tag"
    channel.basic_publish(x, "a.b", b"1")
    channel.basic_publish(x, "a.c.d", b"2")
    channel.basic_publish("", q, b"3")
    assert wait_until(lambda: len(collector) == 3,
                      connection=channel.connection, timeout=DEADLINE)
    methods = [m for m, _, _ in collector.messages]
    assert [m.consumer_tag for m in methods] == ["my-tag"] * 3
    assert [m.delivery_tag for m in methods] == [1, 2, 3]
    assert [m.redelivered for m in methods] == [False] * 3
    assert [m.exchange for m in methods] == [x, x, ""]
    assert [m.routing_key for m in methods] == ["a.b", "a.c.d", q]
    assert collector.bodies == [b"1", b"2", b"3"]


def test_basic_cancel_stops_delivery(channel):
    q = channel.queue_declare("", exclusive=True).method.queue
    collector = Collector(ack=True)
    tag = channel.basic_consume(q, collector)
    channel.basic_publish("", q, b"before")
    assert wait_until(lambda: len(collector) == 1,
                      connection=channel.connection, timeout=DEADLINE)
    channel.basic_cancel(tag)
    channel.basic_publish("", q, b"after")
    settle(channel)  # a delivery of b"after" would be ahead of this reply
    channel.connection.process_data_events(time_limit=0)
    assert collector.bodies == [b"before"]
    assert queue_depth(channel, q) == 1  # b"after" is there, ready
    ok = channel.queue_declare(q, passive=True)
    assert ok.method.consumer_count == 0


def test_cancel_of_unknown_consumer_tag_is_ok(raw_client):
    """RabbitMQ answers basic.cancel for an unknown tag with cancel-ok."""
    c = raw_client()
    c.handshake()
    c.channel_open(1)
    c.send_method(1, (60, 30), rawamqp.shortstr("no-such-tag")
                  + rawamqp.bits(False))
    frm = c.read_method((60, 31))
    assert frm.args.shortstr() == "no-such-tag"
    c.close()


def test_broker_cancels_consumer_when_queue_deleted(connect, uname):
    conn = connect()
    ch = conn.channel()
    q = uname("q")
    ch.queue_declare(q)
    cancelled = []
    ch.add_on_cancel_callback(lambda frame: cancelled.append(frame))
    tag = ch.basic_consume(q, lambda *a: None)
    other = connect().channel()
    other.queue_delete(q)
    assert wait_until(lambda: cancelled, connection=conn, timeout=DEADLINE)
    assert cancelled[0].method.consumer_tag == tag
    assert ch.is_open
    # channel keeps working after the cancel
    q2 = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q2, b"ok")
    assert ch.basic_get(q2, auto_ack=True)[2] == b"ok"


def test_broker_cancel_raw(raw_client, connect, uname):
    """basic.cancel from the broker (consumer_cancel_notify) carries the
    consumer tag; no-wait is set."""
    c = raw_client()
    c.handshake()
    c.channel_open(1)
    q = uname("q")
    c.queue_declare(1, q)
    assert c.basic_consume(1, q, "raw-tag") == "raw-tag"
    connect().channel().queue_delete(q)
    frm = c.read_method((60, 30))
    assert frm.channel == 1
    assert frm.args.shortstr() == "raw-tag"
    assert frm.args.octet() & 1 == 1  # no-wait
    c.close()


def test_basic_get_and_get_empty(channel):
    q = channel.queue_declare("", exclusive=True).method.queue
    assert channel.basic_get(q) == (None, None, None)
    for i in range(3):
        channel.basic_publish("", q, b"m%d" % i)
    counts = []
    bodies = []
    for _ in range(3):
        method, props, body = channel.basic_get(q, auto_ack=True)
        counts.append(method.message_count)
        bodies.append(body)
        assert method.redelivered is False
        assert method.exchange == ""
        assert method.routing_key == q
    assert bodies == [b"m0", b"m1", b"m2"]
    assert counts == [2, 1, 0]  # messages remaining after this one
    assert channel.basic_get(q) == (None, None, None)


def test_basic_get_with_ack_and_delivery_tags(connection):
    channel = connection.channel()
    q = channel.queue_declare("", exclusive=True).method.queue
    for i in range(3):
        channel.basic_publish("", q, b"m%d" % i)
    tags = []
    for _ in range(3):
        method, _, _ = channel.basic_get(q)
        tags.append(method.delivery_tag)
    assert tags == [1, 2, 3]
    assert queue_depth(channel, q) == 0  # all three unacked
    channel.basic_ack(2, multiple=True)  # acks 1 and 2, not 3
    settle(channel)
    assert channel.is_open
    # Closing the channel requeues what is still unacked: only m2.
    channel.close()
    other = connection.channel()
    assert wait_until(lambda: queue_depth(other, q) == 1, timeout=DEADLINE)
    method, _, body = other.basic_get(q, auto_ack=True)
    assert (body, method.redelivered) == (b"m2", True)


def test_no_ack_consumer_removes_messages(connect):
    conn = connect()
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    for i in range(5):
        ch.basic_publish("", q, b"%d" % i)
    expected = [b"%d" % i for i in range(5)]
    # Control: a consumer that acks nothing gets them too, and closing its
    # channel requeues them (the check below would see that).
    ack_ch = conn.channel()
    unacked = Collector()
    ack_ch.basic_consume(q, unacked)
    assert wait_until(lambda: len(unacked) == 5, connection=conn,
                      timeout=DEADLINE)
    assert unacked.bodies == expected
    ack_ch.close()
    assert wait_until(lambda: queue_depth(ch, q) == 5, timeout=DEADLINE)
    cons_ch = conn.channel()
    collector = Collector()
    cons_ch.basic_consume(q, collector, auto_ack=True)
    assert wait_until(lambda: len(collector) == 5, connection=conn,
                      timeout=DEADLINE)
    cons_ch.close()  # nothing to requeue: auto-ack
    assert queue_depth(ch, q) == 0
    assert collector.bodies == expected


def test_consumer_on_several_queues_one_channel(channel):
    q1 = channel.queue_declare("", exclusive=True).method.queue
    q2 = channel.queue_declare("", exclusive=True).method.queue
    c1 = Collector()
    c2 = Collector()
    channel.basic_consume(q1, c1, auto_ack=True)
    channel.basic_consume(q2, c2, auto_ack=True)
    for i in range(3):
        channel.basic_publish("", q1, b"q1-%d" % i)
        channel.basic_publish("", q2, b"q2-%d" % i)
    assert wait_until(lambda: len(c1) == 3 and len(c2) == 3,
                      connection=channel.connection, timeout=DEADLINE)
    assert c1.bodies == [b"q1-0", b"q1-1", b"q1-2"]
    assert c2.bodies == [b"q2-0", b"q2-1", b"q2-2"]
    # delivery tags are shared by the channel: 1..6 overall
    tags = sorted(m.delivery_tag for m, _, _ in c1.messages + c2.messages)
    assert tags == list(range(1, 7))


def test_consumer_receives_backlog_then_live_messages(channel):
    q = channel.queue_declare("", exclusive=True).method.queue
    for i in range(3):
        channel.basic_publish("", q, b"old-%d" % i)
    settle(channel)
    collector = Collector(ack=True)
    channel.basic_consume(q, collector)
    for i in range(3):
        channel.basic_publish("", q, b"new-%d" % i)
    assert wait_until(lambda: len(collector) == 6,
                      connection=channel.connection, timeout=DEADLINE)
    assert collector.bodies == [b"old-0", b"old-1", b"old-2",
                                b"new-0", b"new-1", b"new-2"]


def test_consume_generator_style(channel):
    """The BlockingChannel.consume() generator with inactivity_timeout."""
    q = channel.queue_declare("", exclusive=True).method.queue
    for i in range(3):
        channel.basic_publish("", q, b"%d" % i)
    got = []
    idle_after_all = False
    deadline = time.monotonic() + DEADLINE
    for method, props, body in channel.consume(q, inactivity_timeout=0.3):
        if method is None:  # 0.3 s without a delivery
            if len(got) == 3:
                idle_after_all = True
                break
            assert time.monotonic() < deadline, got
            continue
        got.append(body)
        channel.basic_ack(method.delivery_tag)
    requeued = channel.cancel()
    assert requeued == 0
    assert got == [b"0", b"1", b"2"]
    assert idle_after_all
