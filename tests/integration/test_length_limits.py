"""Queue length limits as RabbitMQ 3.10 has them: x-max-length (messages) and x-max-length-bytes
(body bytes) count ready messages only (delivered, unacked ones do not count), and x-overflow
says what happens over the limit:

- drop-head (the default): the message at the head is dropped, dead-lettered with reason
  "maxlen" when the queue has a dead-letter exchange;
- reject-publish: the new message is not enqueued and, in confirm mode, nacked (no basic.return:
  it was routed);
- reject-publish-dlx: the same, and the refused message is dead-lettered ("maxlen").

A consumer that can take a message gets it before the limit applies (RabbitMQ hands a message
straight to such a consumer, it never counts), so a burst of publishes into a queue with room in
a consumer's prefetch window loses nothing. Behaviour checked against RabbitMQ 3.10.8, including a
tx.commit whose publish a queue refused: 406 "partial tx completion", the channel closed, the
accepted messages and the transaction's acks committed.
"""

import struct

import pika
import pika.exceptions
import pytest

import amqp_helpers
import rawamqp
from amqp_helpers import queue_depth, settle, wait_until
from amqp_helpers import dead_letter_pair, declare

DEADLINE = 30  # seconds to wait for something that must happen (bounds a hang only)


def drain(ch, queue):
    settle(ch)
    return amqp_helpers.bodies(amqp_helpers.get_all(ch, queue))


def confirmed(ch, queue, body, **kwargs):
    """Publishes in confirm mode: True when acked, False when nacked."""
    try:
        ch.basic_publish("", queue, body, **kwargs)
        return True
    except pika.exceptions.NackError:
        return False


def publish_burst(raw_client, queue, bodies):
    """Publishes `bodies` through the default exchange in a single socket write, then makes a
    round trip so that they have all been routed."""
    c = raw_client()
    c.handshake()
    c.channel_open(1)
    args = struct.pack(">H", 0) + rawamqp.shortstr("") + rawamqp.shortstr(queue) + b"\x00"
    data = b""
    for body in bodies:
        data += (rawamqp.method_frame(1, rawamqp.BASIC_PUBLISH, args)
                 + rawamqp.content_header_frame(1, len(body))
                 + rawamqp.body_frame(1, body))
    c.send(data)
    c.queue_declare(1, queue, passive=True)


# -- drop-head -----------------------------------------------------------------------------------

def test_max_length_drops_the_head(channel, uname):
    q = declare(channel, uname, "len-drop", **{"x-max-length": 3})
    for i in range(6):
        channel.basic_publish("", q, b"m%d" % i)
    settle(channel)
    assert queue_depth(channel, q) == 3
    assert drain(channel, q) == [b"m3", b"m4", b"m5"]
    channel.queue_delete(q)


def test_max_length_drop_head_dead_letters_with_reason_maxlen(channel, uname):
    q, dlq = dead_letter_pair(channel, uname, "len-dl", **{"x-max-length": 2})
    for i in range(5):
        channel.basic_publish("", q, b"m%d" % i, pika.BasicProperties(expiration="60000"))
    settle(channel)
    assert wait_until(lambda: queue_depth(channel, dlq) == 3, timeout=DEADLINE)
    got = amqp_helpers.get_all(channel, dlq)
    assert amqp_helpers.bodies(got) == [b"m0", b"m1", b"m2"]
    for _, props, _ in got:
        (death,) = props.headers["x-death"]
        assert death["reason"] == "maxlen"
        assert death["queue"] == q
        assert death["original-expiration"] == "60000"
        assert props.headers["x-first-death-reason"] == "maxlen"
        assert props.expiration is None
    assert drain(channel, q) == [b"m3", b"m4"]
    channel.queue_delete(q)
    channel.queue_delete(dlq)


def test_max_length_bytes_counts_body_bytes(channel, uname):
    q, dlq = dead_letter_pair(channel, uname, "len-bytes", **{"x-max-length-bytes": 10})
    channel.basic_publish("", q, b"aaaa")
    channel.basic_publish("", q, b"bbbb")
    settle(channel)
    assert queue_depth(channel, q) == 2  # 8 bytes
    channel.basic_publish("", q, b"cccc")  # 12 bytes: the head goes
    settle(channel)
    assert wait_until(lambda: queue_depth(channel, dlq) == 1, timeout=DEADLINE)
    assert queue_depth(channel, q) == 2
    # A message larger than the limit pushes out everything, itself included.
    channel.basic_publish("", q, b"d" * 11)
    settle(channel)
    assert wait_until(lambda: queue_depth(channel, dlq) == 4, timeout=DEADLINE)
    assert queue_depth(channel, q) == 0
    assert drain(channel, dlq) == [b"aaaa", b"bbbb", b"cccc", b"d" * 11]
    channel.queue_delete(q)
    channel.queue_delete(dlq)


# -- reject-publish ------------------------------------------------------------------------------

def test_reject_publish_nacks_and_does_not_enqueue(connection, uname):
    ch = connection.channel()
    q, dlq = dead_letter_pair(ch, uname, "len-rej", **{"x-max-length": 2,
                                                     "x-overflow": "reject-publish"})
    ch.confirm_delivery()
    returned = []
    ch.add_on_return_callback(lambda *args: returned.append(args))
    assert confirmed(ch, q, b"m0")
    assert confirmed(ch, q, b"m1")
    assert not confirmed(ch, q, b"m2", mandatory=True)
    settle(ch)
    connection.process_data_events(time_limit=0)
    assert returned == []  # routed, so not returned, only nacked
    assert queue_depth(ch, q) == 2
    assert queue_depth(ch, dlq) == 0  # reject-publish does not dead-letter
    # Room again after a get: the next publish is acked and enqueued.
    assert ch.basic_get(q, auto_ack=True)[2] == b"m0"
    assert confirmed(ch, q, b"m3")
    assert drain(ch, q) == [b"m1", b"m3"]
    ch.queue_delete(q)
    ch.queue_delete(dlq)


@pytest.mark.parametrize("overflow", ["reject-publish", "reject-publish-dlx"])
def test_tx_commit_with_a_refused_publish_fails_with_partial_tx_completion(connection, uname,
                                                                           overflow):
    setup = connection.channel()
    q, dlq = dead_letter_pair(setup, uname, "len-tx", **{"x-max-length": 1, "x-overflow": overflow})
    setup.basic_publish("", q, b"acked-in-tx")
    settle(setup)
    ch = connection.channel()
    ch.tx_select()
    method, _, body = ch.basic_get(q)
    assert body == b"acked-in-tx"
    ch.basic_ack(method.delivery_tag)
    ch.basic_publish("", q, b"kept")
    ch.basic_publish("", q, b"refused")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.tx_commit()
    assert e.value.reply_code == 406
    assert e.value.reply_text == "PRECONDITION_FAILED - partial tx completion"
    # What the queue accepted stays, and so does the ack (it is not requeued at the close).
    assert drain(setup, q) == [b"kept"]
    assert queue_depth(setup, dlq) == (1 if overflow == "reject-publish-dlx" else 0)
    setup.queue_delete(q)
    setup.queue_delete(dlq)


def test_reject_publish_dlx_nacks_and_dead_letters(connection, uname):
    ch = connection.channel()
    q, dlq = dead_letter_pair(ch, uname, "len-rejdlx", **{"x-max-length": 1,
                                                        "x-overflow": "reject-publish-dlx"})
    ch.confirm_delivery()
    assert confirmed(ch, q, b"kept")
    assert not confirmed(ch, q, b"refused", properties=pika.BasicProperties(expiration="60000"))
    assert wait_until(lambda: queue_depth(ch, dlq) == 1, timeout=DEADLINE)
    _, props, body = ch.basic_get(dlq, auto_ack=True)
    assert body == b"refused"
    (death,) = props.headers["x-death"]
    assert death["reason"] == "maxlen"
    assert death["queue"] == q
    assert death["original-expiration"] == "60000"
    assert props.expiration is None
    assert drain(ch, q) == [b"kept"]
    ch.queue_delete(q)
    ch.queue_delete(dlq)


def test_reject_publish_bytes(connection, uname):
    ch = connection.channel()
    q = declare(ch, uname, "len-rejbytes", **{"x-max-length-bytes": 8,
                                             "x-overflow": "reject-publish"})
    ch.confirm_delivery()
    assert confirmed(ch, q, b"12345")
    assert not confirmed(ch, q, b"6789")  # 9 bytes
    assert confirmed(ch, q, b"678")  # 8 bytes
    assert drain(ch, q) == [b"12345", b"678"]
    ch.queue_delete(q)


# -- only ready messages count -------------------------------------------------------------------

@pytest.mark.parametrize("overflow", ["drop-head", "reject-publish"])
def test_unacked_messages_do_not_count(connection, uname, overflow):
    ch = connection.channel()
    q, dlq = dead_letter_pair(ch, uname, "len-unacked", **{"x-max-length": 2,
                                                         "x-overflow": overflow})
    ch.confirm_delivery()
    assert confirmed(ch, q, b"u0")
    assert confirmed(ch, q, b"u1")
    held = [ch.basic_get(q)[0], ch.basic_get(q)[0]]  # delivered, not acked
    assert all(m is not None for m in held)
    # Two more fit: the queue has no ready message.
    assert confirmed(ch, q, b"r0")
    assert confirmed(ch, q, b"r1")
    assert queue_depth(ch, dlq) == 0
    # The limit still applies to ready ones (control).
    if overflow == "reject-publish":
        assert not confirmed(ch, q, b"r2")
        assert queue_depth(ch, dlq) == 0
    else:
        assert confirmed(ch, q, b"r2")
        assert wait_until(lambda: queue_depth(ch, dlq) == 1, timeout=DEADLINE)
        assert drain(ch, dlq) == [b"r0"]
    # The held ones were never dropped: they come back when requeued (over the limit now, so
    # drop-head keeps the newest two of the queue, in queue order).
    for m in held:
        ch.basic_nack(m.delivery_tag, requeue=True)
    settle(ch)
    if overflow == "reject-publish":
        assert drain(ch, q) == [b"u0", b"u1", b"r0", b"r1"]
    else:
        assert wait_until(lambda: queue_depth(ch, dlq) == 2, timeout=DEADLINE)
        assert drain(ch, dlq) == [b"u0", b"u1"]
        assert drain(ch, q) == [b"r1", b"r2"]
    ch.queue_delete(q)
    ch.queue_delete(dlq)


@pytest.mark.parametrize("overflow", ["drop-head", "reject-publish"])
def test_a_consumer_with_room_gets_messages_before_the_limit_applies(connection, raw_client,
                                                                      uname, overflow):
    ch = connection.channel()
    q, dlq = dead_letter_pair(ch, uname, "len-consumer", **{"x-max-length": 1,
                                                          "x-overflow": overflow})
    consumer = connection.channel()
    consumer.basic_qos(prefetch_count=3)
    got = amqp_helpers.Collector()
    consumer.basic_consume(q, got)
    # Six publishes in one write: the broker reads them together, and must not count them
    # against the limit before the consumer has had what it can take.
    publish_burst(raw_client, q, [b"m%d" % i for i in range(6)])
    # Three go to the consumer (its prefetch), the fourth waits in the queue (the limit is 1);
    # the rest is over the limit.
    assert wait_until(lambda: len(got) == 3, timeout=DEADLINE, connection=connection)
    assert got.bodies == [b"m0", b"m1", b"m2"]
    if overflow == "drop-head":
        assert wait_until(lambda: queue_depth(ch, dlq) == 2, timeout=DEADLINE)
        assert drain(ch, dlq) == [b"m3", b"m4"]
        left = [b"m5"]
    else:
        left = [b"m3"]
    assert queue_depth(ch, q) == 1
    consumer.basic_cancel(consumer.consumer_tags[0])
    assert drain(ch, q) == left
    ch.queue_delete(q)
    ch.queue_delete(dlq)
