"""Queue and consumer x-arguments: what RabbitMQ 3.10.8 refuses, with its exact texts.

RabbitMQ checks a new queue's arguments in a fixed order (rabbit_channel, then
rabbit_amqqueue:check_declare_arguments): the dead-letter exchange's type first, then
x-queue-type, then the classic queue's arguments in declare_args() order (so with several bad
arguments the first in that order is reported, whatever the table order), then arguments that
belong to other queue types. Reasons are printed with ~p: text built by rabbit_misc:format
appears in double quotes ("expected integer, got longstr"), terms as Erlang terms
({value_negative,-1}). Every refusal closes the channel only: the connection keeps working, and
the queue was not created. Each text below was compared with RabbitMQ 3.10.8 (Debian 12).

x-queue-type quorum and stream are Warren's own refusal (RabbitMQ creates those queues): Warren
has only classic queues and must never create a classic queue that the client asked to be a
quorum queue.
"""

import decimal

import pika
import pika.exceptions
import pytest

import amqp_helpers
from amqp_helpers import expect_channel_closed

NOOP = lambda *args: None  # noqa: E731


def assert_connection_usable(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"usable")
    amqp_helpers.settle(ch)
    _, _, body = ch.basic_get(q, auto_ack=True)
    assert body == b"usable"
    ch.close()


def refused(conn, func):
    """Runs func(channel) on a fresh channel; returns the reply text of the channel.close the
    broker answers with (406), after checking that only the channel was closed."""
    ch = conn.channel()
    exc = expect_channel_closed(ch, conn, func, ch)
    assert exc.reply_code == 406, (exc.reply_code, exc.reply_text)
    assert conn.is_open
    assert_connection_usable(conn)
    return exc.reply_text


def assert_not_created(conn, name):
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare(name, passive=True)
    assert info.value.reply_code == 404, info.value


def invalid(key, name, reason):
    return ("PRECONDITION_FAILED - invalid arg '%s' for queue '%s' in vhost '/': %s"
            % (key, name, reason))


# (id, arguments, key RabbitMQ reports, reason)
DECLARE_CASES = [
    ("ttl-negative", {"x-message-ttl": -1}, "x-message-ttl", "{value_negative,-1}"),
    ("ttl-string", {"x-message-ttl": "10"}, "x-message-ttl",
     '"expected integer, got longstr"'),
    ("ttl-decimal", {"x-message-ttl": decimal.Decimal("1.5")}, "x-message-ttl",
     '"expected integer, got decimal"'),
    ("ttl-over-ten-years", {"x-message-ttl": 315360000001}, "x-message-ttl",
     "{value_too_large,315360000001}"),
    ("expires-zero", {"x-expires": 0}, "x-expires", "{value_zero,0}"),
    ("expires-over-ten-years", {"x-expires": 2 ** 40}, "x-expires",
     "{value_too_large,1099511627776}"),
    ("max-priority-300", {"x-max-priority": 300}, "x-max-priority",
     "{max_value_exceeded,300}"),
    ("max-priority-256", {"x-max-priority": 256}, "x-max-priority",
     "{max_value_exceeded,256}"),
    ("max-priority-negative", {"x-max-priority": -1}, "x-max-priority", "{value_negative,-1}"),
    ("max-priority-string", {"x-max-priority": "5"}, "x-max-priority",
     '"expected integer, got longstr"'),
    ("overflow-foo", {"x-overflow": "foo"}, "x-overflow", "invalid_overflow"),
    ("overflow-integer", {"x-overflow": 1}, "x-overflow", "{unacceptable_type,signedint}"),
    ("max-length-string", {"x-max-length": "10"}, "x-max-length",
     '"expected integer, got longstr"'),
    ("max-length-bool", {"x-max-length": True}, "x-max-length",
     '"expected integer, got bool"'),
    ("max-length-negative", {"x-max-length": -1}, "x-max-length", "{value_negative,-1}"),
    ("max-length-bytes-string", {"x-max-length-bytes": "10"}, "x-max-length-bytes",
     '"expected integer, got longstr"'),
    ("dead-letter-routing-key-without-exchange", {"x-dead-letter-routing-key": "rk"},
     "x-dead-letter-routing-key", "routing_key_but_no_dlx_defined"),
    ("dead-letter-routing-key-integer",
     {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": 1},
     "x-dead-letter-routing-key", "{unacceptable_type,signedint}"),
    ("single-active-consumer-string", {"x-single-active-consumer": "yes"},
     "x-single-active-consumer", "{unacceptable_type,longstr}"),
    ("single-active-consumer-integer", {"x-single-active-consumer": 1},
     "x-single-active-consumer", "{unacceptable_type,signedint}"),
    ("queue-type-foo", {"x-queue-type": "foo"}, "x-queue-type",
     "\"unsupported queue type 'foo'\""),
    ("queue-type-integer", {"x-queue-type": 1}, "x-queue-type",
     "{unacceptable_type,signedint}"),
    ("queue-mode-foo", {"x-queue-mode": "foo"}, "x-queue-mode",
     "\"unsupported queue mode 'foo'\""),
    ("queue-version-7", {"x-queue-version": 7}, "x-queue-version",
     "\"unsupported queue version '7'\""),
    ("queue-version-negative", {"x-queue-version": -1}, "x-queue-version",
     "{value_negative,-1}"),
    ("queue-version-string", {"x-queue-version": "2"}, "x-queue-version",
     '"expected integer, got longstr"'),
    # Several invalid arguments: RabbitMQ's order decides, not the table's.
    ("order-ttl-before-priority", {"x-max-priority": 300, "x-message-ttl": -1},
     "x-message-ttl", "{value_negative,-1}"),
    ("order-queue-type-first", {"x-message-ttl": -1, "x-queue-type": "foo"}, "x-queue-type",
     "\"unsupported queue type 'foo'\""),
]


@pytest.mark.parametrize("args,key,reason", [c[1:] for c in DECLARE_CASES],
                         ids=[c[0] for c in DECLARE_CASES])
def test_invalid_queue_argument_is_406_with_rabbitmq_text(connection, uname, args, key, reason):
    name = uname("args")
    text = refused(connection, lambda ch: ch.queue_declare(name, arguments=args))
    assert text == invalid(key, name, reason)
    assert_not_created(connection, name)


def test_dead_letter_exchange_type_is_checked_first(connection, uname):
    """rabbit_channel checks x-dead-letter-exchange's type before the queue's arguments are
    validated, with a text of its own."""
    name = uname("args")
    text = refused(connection, lambda ch: ch.queue_declare(
        name, arguments={"x-message-ttl": -1, "x-dead-letter-exchange": 5}))
    assert text == ("PRECONDITION_FAILED - invalid type 'signedint' for arg "
                    "'x-dead-letter-exchange' in queue '%s' in vhost '/'" % name)
    assert_not_created(connection, name)


@pytest.mark.parametrize("key,value", [
    ("x-max-in-memory-length", 5), ("x-max-in-memory-bytes", 5), ("x-delivery-limit", 5),
    ("x-dead-letter-strategy", "at-least-once"), ("x-max-age", "1D"),
    ("x-stream-max-segment-size-bytes", 5), ("x-initial-cluster-size", 1),
    ("x-quorum-initial-group-size", 1), ("x-queue-leader-locator", "balanced"),
])
def test_arguments_of_other_queue_types_are_refused(connection, uname, key, value):
    """Quorum and stream queue arguments on a classic queue (RabbitMQ 3.10's
    check_arguments_key), not validated as values."""
    name = uname("args")
    text = refused(connection, lambda ch: ch.queue_declare(name, arguments={key: value}))
    assert text == ("PRECONDITION_FAILED - invalid arg '%s' for queue '%s' in vhost '/' of "
                    "queue type rabbit_classic_queue" % (key, name))
    assert_not_created(connection, name)


@pytest.mark.parametrize("args", [
    {"x-max-priority": 255}, {"x-max-priority": 0}, {"x-message-ttl": 315360000000},
    {"x-expires": 2 ** 32}, {"x-queue-version": 2}, {"x-single-active-consumer": False},
    {"x-overflow": "reject-publish-dlx", "x-dead-letter-exchange": ""},
    {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "rk"},
    {"x-queue-master-locator": "min-masters"}, {"x-unknown": [1, {"a": None}]},
], ids=lambda a: ",".join(a))
def test_valid_edge_arguments_are_accepted(connection, uname, args):
    """Positive controls for the refusals above: the limits themselves are accepted."""
    ch = connection.channel()
    name = uname("args")
    ok = ch.queue_declare(name, arguments=args).method
    assert ok.queue == name
    ch.queue_delete(name)


def test_classic_queue_type_is_accepted_and_equivalent_to_none(connection, uname):
    """x-queue-type classic makes an ordinary queue; RabbitMQ treats it as equal to no
    x-queue-type when the queue is declared again."""
    ch = connection.channel()
    name = uname("classic")
    ch.queue_declare(name, arguments={"x-queue-type": "classic"})
    ch.basic_publish("", name, b"m")
    amqp_helpers.settle(ch)
    assert ch.queue_declare(name).method.message_count == 1  # no x-queue-type: equivalent
    assert ch.queue_declare(name, arguments={"x-queue-type": "classic"}).method.message_count == 1
    ch.queue_delete(name)


@pytest.mark.parametrize("queue_type", ["quorum", "stream"])
@pytest.mark.parametrize("durable", [True, False])
def test_quorum_and_stream_queues_are_refused_never_classic(warren_factory, queue_type, durable):
    """Warren's own refusal (RabbitMQ 3.10 creates a quorum or stream queue here): 406 with a
    text naming the type, never a silently classic queue."""
    b = warren_factory()
    conn = pika.BlockingConnection(amqp_helpers.params(b.port))
    try:
        name = amqp_helpers.unique(queue_type)
        text = refused(conn, lambda ch: ch.queue_declare(
            name, durable=durable, arguments={"x-queue-type": queue_type}))
        assert text == invalid(
            "x-queue-type", name,
            "queue type '%s' is not supported by Warren (only 'classic')" % queue_type)
        assert_not_created(conn, name)
    finally:
        amqp_helpers.close_quietly(conn)


# ---------------------------------------------------------------------------
# basic.consume arguments


@pytest.mark.parametrize("value,type_name", [
    ("a", "longstr"), (decimal.Decimal("1.5"), "decimal"), (True, "bool"),
], ids=["string", "decimal", "bool"])
def test_invalid_consumer_priority_is_406(connection, value, type_name):
    setup = connection.channel()
    q = setup.queue_declare("", exclusive=True).method.queue
    text = refused(connection, lambda ch: ch.basic_consume(q, NOOP, arguments={"x-priority": value}))
    assert text == invalid("x-priority", q, '"expected integer, got %s"' % type_name)
    assert setup.queue_declare(q, passive=True).method.consumer_count == 0


def test_consume_arguments_of_other_queue_types_are_refused(connection):
    setup = connection.channel()
    q = setup.queue_declare("", exclusive=True).method.queue
    text = refused(connection, lambda ch: ch.basic_consume(
        q, NOOP, arguments={"x-stream-offset": "first"}))
    assert text == ("PRECONDITION_FAILED - invalid arg 'x-stream-offset' for queue '%s' in "
                    "vhost '/' of queue type rabbit_classic_queue" % q)
    text = refused(connection, lambda ch: ch.basic_consume(
        q, NOOP, arguments={"x-cancel-on-ha-failover": "x"}))
    assert text == invalid("x-cancel-on-ha-failover", q, "{unacceptable_type,longstr}")
    # x-priority is checked first
    text = refused(connection, lambda ch: ch.basic_consume(
        q, NOOP, arguments={"x-stream-offset": 1, "x-priority": "a"}))
    assert text == invalid("x-priority", q, '"expected integer, got longstr"')


def test_consumer_priority_accepts_any_integer_size(connection):
    """RabbitMQ accepts every integer type for x-priority, a 64-bit long included (the
    priority is then higher than any 32-bit one; see test_consumer_priorities.py)."""
    ch = connection.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    for value in (2 ** 40, -5, 0):
        tag = ch.basic_consume(q, NOOP, arguments={"x-priority": value})
        assert ch.queue_declare(q, passive=True).method.consumer_count == 1
        ch.basic_cancel(tag)


def test_invalid_consume_argument_is_checked_before_exclusive_use(connection):
    """RabbitMQ validates consume arguments before it looks at the queue's consumers: a bad
    x-priority on a queue in exclusive use is 406, not 403."""
    owner = connection.channel()
    q = owner.queue_declare("", exclusive=True).method.queue
    owner.basic_consume(q, NOOP, exclusive=True)
    text = refused(connection, lambda ch: ch.basic_consume(q, NOOP, arguments={"x-priority": "a"}))
    assert text == invalid("x-priority", q, '"expected integer, got longstr"')
    ch = connection.channel()
    exc = expect_channel_closed(ch, connection, ch.basic_consume, q, NOOP)
    assert exc.reply_code == 403, exc  # the positive control: the queue is in exclusive use
