"""Queue declaration, counts, purge, delete, bindings, auto-delete and
exclusive queue lifetimes."""

import re

import pika
import pika.exceptions

import amqp_helpers
from amqp_helpers import (expect_channel_closed, queue_depth, settle,
                          wait_until)

NOOP = lambda *args: None  # noqa: E731
DEADLINE = 30  # seconds to wait for something that must happen


def check_queue_gone(connection, q):
    """A passive declare of q on a fresh channel is refused with 404 and
    RabbitMQ's text."""
    ch = connection.channel()
    exc = expect_channel_closed(ch, connection, ch.queue_declare, q,
                                passive=True)
    assert exc.reply_code == 404, (exc.reply_code, exc.reply_text)
    assert exc.reply_text == "NOT_FOUND - no queue '%s' in vhost '/'" % q


def test_declare_ok_reports_name_and_zero_counts(channel, uname):
    q = uname("q")
    ok = channel.queue_declare(q, exclusive=True)
    assert ok.method.queue == q
    assert ok.method.message_count == 0
    assert ok.method.consumer_count == 0


def test_declare_ok_counts_ready_messages_and_consumers(connection, uname):
    ch = connection.channel()
    q = uname("q")
    ch.queue_declare(q, exclusive=True)
    for i in range(5):
        ch.basic_publish("", q, b"m%d" % i)
    assert wait_until(lambda: queue_depth(ch, q) == 5, timeout=DEADLINE)
    # a consumer holding one unacked message (prefetch 1)
    consumer_ch = connection.channel()
    consumer_ch.basic_qos(prefetch_count=1)
    got = []
    consumer_ch.basic_consume(q, lambda c, m, p, b: got.append(m))
    assert wait_until(lambda: got, connection=connection, timeout=DEADLINE)
    # and a second idle consumer on another channel
    other_ch = connection.channel()
    other_ch.basic_qos(prefetch_count=1)
    other = []
    other_ch.basic_consume(q, lambda c, m, p, b: other.append(m))
    assert wait_until(lambda: other, connection=connection, timeout=DEADLINE)
    ok = ch.queue_declare(q, exclusive=True)
    # message_count counts only ready (not unacked) messages
    assert ok.method.message_count == 5 - len(got) - len(other) == 3
    assert ok.method.consumer_count == 2
    passive = ch.queue_declare(q, passive=True)
    assert passive.method.message_count == 3
    assert passive.method.consumer_count == 2


def test_server_named_queues(channel):
    names = set()
    for _ in range(5):
        ok = channel.queue_declare("", exclusive=True)
        assert ok.method.queue.startswith("amq.gen-")
        assert len(ok.method.queue) > len("amq.gen-")
        assert re.match(r"^amq\.gen-[A-Za-z0-9_-]+$", ok.method.queue)
        names.add(ok.method.queue)
    assert len(names) == 5
    q = names.pop()
    channel.basic_publish("", q, b"to server named")
    method, _, body = channel.basic_get(q, auto_ack=True)
    assert body == b"to server named"


def test_purge_returns_ready_count(channel, uname):
    q = uname("q")
    channel.queue_declare(q, exclusive=True)
    for i in range(7):
        channel.basic_publish("", q, b"x")
    assert wait_until(lambda: queue_depth(channel, q) == 7, timeout=DEADLINE)
    # two unacked messages are not purged
    m1, _, _ = channel.basic_get(q)
    m2, _, _ = channel.basic_get(q)
    ok = channel.queue_purge(q)
    assert ok.method.message_count == 5
    assert queue_depth(channel, q) == 0
    assert channel.queue_purge(q).method.message_count == 0
    # the unacked ones come back when rejected
    channel.basic_reject(m1.delivery_tag, requeue=True)
    channel.basic_reject(m2.delivery_tag, requeue=True)
    assert wait_until(lambda: queue_depth(channel, q) == 2, timeout=DEADLINE)


def test_delete_returns_message_count(connection, uname):
    ch = connection.channel()
    q = uname("q")
    ch.queue_declare(q)
    for i in range(4):
        ch.basic_publish("", q, b"x")
    assert wait_until(lambda: queue_depth(ch, q) == 4, timeout=DEADLINE)
    ok = ch.queue_delete(q)
    assert ok.method.message_count == 4
    check_queue_gone(connection, q)


def test_delete_removes_bindings(channel, uname, make_exchange):
    x = make_exchange("fanout")
    q = uname("q")
    control = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(control, x)
    channel.queue_declare(q)
    channel.queue_bind(q, x)
    channel.queue_delete(q)
    channel.queue_declare(q, exclusive=True)  # same name, new queue
    channel.basic_publish(x, "", b"should not arrive")
    # the control queue, bound to the same exchange, gets the message: it was
    # routed, and q was not among its destinations
    assert wait_until(lambda: queue_depth(channel, control) == 1,
                      timeout=DEADLINE)
    assert queue_depth(channel, q) == 0


def test_unbind_stops_routing(channel, uname, make_exchange):
    x = make_exchange("direct")
    q = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(q, x, "k1")
    channel.queue_bind(q, x, "k2")
    channel.basic_publish(x, "k1", b"a")
    channel.basic_publish(x, "k2", b"b")
    channel.queue_unbind(q, x, "k1")
    channel.basic_publish(x, "k1", b"c")
    channel.basic_publish(x, "k2", b"d")
    settle(channel)
    assert wait_until(lambda: queue_depth(channel, q) == 3, timeout=DEADLINE)
    assert amqp_helpers.bodies(amqp_helpers.get_all(channel, q)) == [
        b"a", b"b", b"d"]


def test_redeclare_with_same_arguments_is_ok(channel, uname):
    q = uname("q")
    args = {"x-max-length": 100, "x-message-ttl": 3600000,
            "x-dead-letter-exchange": "amq.fanout"}
    channel.queue_declare(q, exclusive=True, arguments=args)
    ok = channel.queue_declare(q, exclusive=True, arguments=dict(args))
    assert ok.method.queue == q
    # passive declare ignores arguments
    channel.queue_declare(q, passive=True)
    assert channel.is_open


def test_durable_queue_declare_and_redeclare(connection, uname):
    """The durable flag is kept: an equal redeclare is fine, a non-durable
    one is refused (406), and the queue is still there afterwards."""
    channel = connection.channel()
    q = uname("durable")
    try:
        channel.queue_declare(q, durable=True)
        ok = channel.queue_declare(q, durable=True)
        assert ok.method.queue == q
        other = connection.channel()
        exc = expect_channel_closed(other, connection, other.queue_declare, q,
                                    durable=False)
        assert exc.reply_code == 406, (exc.reply_code, exc.reply_text)
        assert exc.reply_text.startswith("PRECONDITION_FAILED - ")
        assert "inequivalent arg 'durable'" in exc.reply_text
        assert channel.queue_declare(q, passive=True).method.queue == q
    finally:
        channel.queue_delete(q)


def test_auto_delete_queue_deleted_when_last_consumer_cancels(connect,
                                                              uname):
    conn = connect()
    ch = conn.channel()
    q = uname("autodel")
    keep = uname("keep")  # control: not auto-delete
    ch.queue_declare(q, auto_delete=True)
    ch.queue_declare(keep, exclusive=True)
    tag1 = ch.basic_consume(q, NOOP)
    tag2 = ch.basic_consume(q, NOOP)
    ch.basic_cancel(ch.basic_consume(keep, NOOP))
    ch.basic_cancel(tag1)
    # one consumer left: still there
    assert ch.queue_declare(q, passive=True).method.consumer_count == 1
    ch.basic_cancel(tag2)
    check_queue_gone(conn, q)
    assert ch.queue_declare(keep, passive=True).method.consumer_count == 0


def test_auto_delete_queue_deleted_when_consumer_channel_closes(connect,
                                                                uname):
    conn = connect()
    ch = conn.channel()
    q = uname("autodel")
    ch.queue_declare(q, auto_delete=True)
    ch.basic_consume(q, NOOP)
    checker = conn.channel()
    # there while its consumer is
    assert checker.queue_declare(q, passive=True).method.consumer_count == 1
    ch.close()
    check_queue_gone(conn, q)


def test_auto_delete_queue_without_consumers_survives(channel, uname):
    q = uname("autodel")
    channel.queue_declare(q, auto_delete=True)
    channel.basic_publish("", q, b"kept")
    settle(channel)
    assert wait_until(lambda: queue_depth(channel, q) == 1, timeout=DEADLINE)
    # basic.get does not count as a consumer
    method, _, body = channel.basic_get(q, auto_ack=True)
    assert body == b"kept"
    assert channel.queue_declare(q, passive=True).method.queue == q
    channel.queue_delete(q)


def test_exclusive_queue_deleted_when_connection_closes(connect, uname):
    owner = connect()
    q = uname("exclusive")
    owner.channel().queue_declare(q, exclusive=True)
    observer = connect()
    ch = observer.channel()
    exc = expect_channel_closed(ch, observer, ch.queue_declare, q,
                                passive=True)
    assert exc.reply_code == 405, exc.reply_text  # exists, but locked
    assert exc.reply_text.startswith("RESOURCE_LOCKED - ")
    owner.close()

    def gone():
        probe = observer.channel()
        try:
            probe.queue_declare(q, passive=True)
        except pika.exceptions.ChannelClosedByBroker as err:
            return err.reply_code == 404
        probe.close()
        return False

    assert wait_until(gone, timeout=DEADLINE, interval=0.05)


def test_exclusive_queue_survives_channel_close(connection, uname):
    ch = connection.channel()
    q = uname("exclusive")
    ch.queue_declare(q, exclusive=True)
    ch.close()
    ch2 = connection.channel()
    assert ch2.queue_declare(q, passive=True).method.queue == q


def test_queue_names_are_case_sensitive(channel, uname):
    q = uname("CaseQ")
    channel.queue_declare(q, exclusive=True)
    channel.queue_declare(q.lower(), exclusive=True)
    channel.basic_publish("", q, b"upper")
    settle(channel)
    assert wait_until(lambda: queue_depth(channel, q) == 1, timeout=DEADLINE)
    assert queue_depth(channel, q.lower()) == 0


def test_long_queue_name_255_bytes(channel):
    q = (amqp_helpers.unique("long") + "-" + "n" * 255)[:255]
    ok = channel.queue_declare(q, exclusive=True)
    assert ok.method.queue == q
    channel.basic_publish("", q, b"long name")
    method, _, body = channel.basic_get(q, auto_ack=True)
    assert body == b"long name"
