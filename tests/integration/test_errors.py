"""Channel and connection exceptions, raised the way RabbitMQ raises them.

Every soft error closes only the channel (channel.close with the reply code
and a "CODE_NAME - text" reply text); the connection stays usable, which is
checked by opening another channel on it.
"""

import struct

import pika
import pika.exceptions
import pytest

import amqp_helpers
import rawamqp
from amqp_helpers import expect_channel_closed

NOOP = lambda *args: None  # noqa: E731
DEADLINE = 30  # seconds to wait for something that must happen


def check_closed(exc, code, name, *fragments):
    assert exc.reply_code == code, (exc.reply_code, exc.reply_text)
    assert exc.reply_text.startswith(name + " - "), exc.reply_text
    for fragment in fragments:
        assert fragment in exc.reply_text, (fragment, exc.reply_text)


def assert_connection_usable(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"usable")
    method, _, body = ch.basic_get(q, auto_ack=True)
    assert body == b"usable"
    ch.close()


def fails(conn, code, name, func, *fragments):
    """Run func(channel) on a fresh channel of conn; the broker must close
    that channel with `code`, and conn must stay usable."""
    ch = conn.channel()
    exc = expect_channel_closed(ch, conn, func, ch)
    check_closed(exc, code, name, *fragments)
    assert ch.is_closed
    assert conn.is_open
    assert_connection_usable(conn)
    return exc


# -- 404 NOT_FOUND ----------------------------------------------------------

def test_passive_declare_of_missing_queue_is_404(connection, uname):
    name = uname("missing-q")
    fails(connection, 404, "NOT_FOUND",
          lambda ch: ch.queue_declare(name, passive=True),
          "no queue '%s' in vhost '/'" % name)


def test_passive_declare_of_missing_exchange_is_404(connection, uname):
    name = uname("missing-x")
    fails(connection, 404, "NOT_FOUND",
          lambda ch: ch.exchange_declare(name, passive=True),
          "no exchange '%s' in vhost '/'" % name)


def test_publish_to_missing_exchange_closes_channel_404(connection, uname):
    name = uname("missing-x")
    fails(connection, 404, "NOT_FOUND",
          lambda ch: ch.basic_publish(name, "rk", b"lost"),
          "no exchange '%s'" % name)


@pytest.mark.parametrize("operation", [
    "bind-missing-queue", "bind-missing-exchange", "consume", "get", "purge",
])
def test_operations_on_missing_entities_are_404(connection, uname,
                                                 operation):
    setup = connection.channel()
    x = uname("x")
    q = uname("q")
    setup.exchange_declare(x, "fanout", auto_delete=False)
    setup.queue_declare(q, auto_delete=False)
    missing = uname("missing")
    funcs = {
        "bind-missing-queue": lambda ch: ch.queue_bind(missing, x),
        "bind-missing-exchange": lambda ch: ch.queue_bind(q, missing),
        "consume": lambda ch: ch.basic_consume(missing, NOOP),
        "get": lambda ch: ch.basic_get(missing),
        "purge": lambda ch: ch.queue_purge(missing),
    }
    try:
        fails(connection, 404, "NOT_FOUND", funcs[operation], missing)
    finally:
        setup.queue_delete(q)
        setup.exchange_delete(x)


def test_deleting_missing_queue_or_exchange_is_ok(channel, uname):
    """RabbitMQ treats delete of a missing queue/exchange as success."""
    ok = channel.queue_delete(uname("missing-q"))
    assert ok.method.message_count == 0
    channel.exchange_delete(uname("missing-x"))
    assert channel.is_open


def test_unbinding_missing_things_is_ok(channel, uname):
    x = uname("x")
    q = uname("q")
    channel.exchange_declare(x, "direct", auto_delete=True)
    channel.queue_declare(q, exclusive=True)
    channel.queue_unbind(q, x, "never-bound")
    channel.queue_unbind(uname("missing"), x, "k")
    channel.queue_unbind(q, uname("missing"), "k")
    assert channel.is_open
    channel.exchange_delete(x)


# -- 403 ACCESS_REFUSED -------------------------------------------------------

def test_declaring_exchange_with_amq_prefix_is_403(connection):
    fails(connection, 403, "ACCESS_REFUSED",
          lambda ch: ch.exchange_declare("amq.foo", "direct"),
          "amq.foo")


def test_declaring_queue_with_amq_prefix_is_403(connection):
    fails(connection, 403, "ACCESS_REFUSED",
          lambda ch: ch.queue_declare("amq.foo"), "amq.foo")


def test_redeclaring_builtin_exchange_equivalently_is_ok(channel):
    channel.exchange_declare("amq.direct", "direct", durable=True)
    channel.exchange_declare("amq.fanout", "fanout", durable=True)
    assert channel.is_open


def test_deleting_builtin_exchange_is_403(connection):
    fails(connection, 403, "ACCESS_REFUSED",
          lambda ch: ch.exchange_delete("amq.direct"), "amq.direct")


@pytest.mark.parametrize("operation", [
    "queue.bind", "queue.unbind", "exchange.delete", "exchange.declare",
    "exchange.bind-source", "exchange.bind-destination",
])
def test_default_exchange_operations_are_403(connection, uname, operation):
    setup = connection.channel()
    q = uname("q")
    x = uname("x")
    setup.queue_declare(q, exclusive=True)
    setup.exchange_declare(x, "fanout", auto_delete=False)
    funcs = {
        "queue.bind": lambda ch: ch.queue_bind(q, "", "k"),
        "queue.unbind": lambda ch: ch.queue_unbind(q, "", q),
        "exchange.delete": lambda ch: ch.exchange_delete(""),
        "exchange.declare": lambda ch: ch.exchange_declare("", "direct"),
        "exchange.bind-source": lambda ch: ch.exchange_bind(x, ""),
        "exchange.bind-destination": lambda ch: ch.exchange_bind("", x),
    }
    try:
        fails(connection, 403, "ACCESS_REFUSED", funcs[operation],
              "default exchange")
    finally:
        setup.exchange_delete(x)
    # the default exchange still routes by queue name
    setup.basic_publish("", q, b"still routed")
    method, _, body = setup.basic_get(q, auto_ack=True)
    assert body == b"still routed"


def test_exclusive_consumer_when_another_consumer_exists_is_403(
        connection, uname):
    setup = connection.channel()
    q = uname("q")
    setup.queue_declare(q, exclusive=True)
    setup.basic_consume(q, NOOP)
    fails(connection, 403, "ACCESS_REFUSED",
          lambda ch: ch.basic_consume(q, NOOP, exclusive=True),
          "in exclusive use")


def test_consumer_when_exclusive_consumer_exists_is_403(connect, uname):
    conn = connect()
    setup = conn.channel()
    q = uname("q")
    setup.queue_declare(q, auto_delete=True)
    setup.basic_consume(q, NOOP, exclusive=True)
    other = connect()
    fails(other, 403, "ACCESS_REFUSED",
          lambda ch: ch.basic_consume(q, NOOP), "in exclusive use")
    # also from the same connection
    fails(conn, 403, "ACCESS_REFUSED",
          lambda ch: ch.basic_consume(q, NOOP), "in exclusive use")


def test_publish_to_internal_exchange_is_403(connection, uname):
    setup = connection.channel()
    x = uname("internal")
    setup.exchange_declare(x, "fanout", internal=True, auto_delete=False)
    try:
        fails(connection, 403, "ACCESS_REFUSED",
              lambda ch: ch.basic_publish(x, "", b"nope"),
              "internal exchange")
    finally:
        setup.exchange_delete(x)


# -- 406 PRECONDITION_FAILED ----------------------------------------------

@pytest.mark.parametrize("change,arg", [
    (dict(exchange_type="fanout"), "type"),
    (dict(durable=True), "durable"),
    (dict(auto_delete=True), "auto_delete"),
])
def test_redeclare_exchange_differently_is_406(connection, uname, change,
                                               arg):
    setup = connection.channel()
    x = uname("x")
    setup.exchange_declare(x, "direct")
    kwargs = dict(exchange_type="direct")
    kwargs.update(change)
    try:
        fails(connection, 406, "PRECONDITION_FAILED",
              lambda ch: ch.exchange_declare(x, **kwargs),
              "inequivalent arg '%s'" % arg, x)
        # the original is untouched and an equivalent redeclare is ok
        setup.exchange_declare(x, "direct")
    finally:
        setup.exchange_delete(x)


def test_redeclare_builtin_exchange_non_durable_is_406(connection):
    fails(connection, 406, "PRECONDITION_FAILED",
          lambda ch: ch.exchange_declare("amq.direct", "direct"),
          "inequivalent arg 'durable'")


@pytest.mark.parametrize("original,change,arg", [
    ({}, dict(durable=True), "durable"),
    ({}, dict(auto_delete=True), "auto_delete"),
    ({}, dict(arguments={"x-max-length": 10}), "x-max-length"),
    (dict(arguments={"x-max-length": 10}),
     dict(arguments={"x-max-length": 11}), "x-max-length"),
    (dict(arguments={"x-max-length": 10}), {}, "x-max-length"),
    (dict(arguments={"x-message-ttl": 60000}),
     dict(arguments={"x-message-ttl": 1000}), "x-message-ttl"),
], ids=["durable", "auto_delete", "args-added", "args-changed",
        "args-removed", "ttl-changed"])
def test_redeclare_queue_differently_is_406(connection, uname, original,
                                            change, arg):
    setup = connection.channel()
    q = uname("q")
    setup.queue_declare(q, **original)
    try:
        fails(connection, 406, "PRECONDITION_FAILED",
              lambda ch: ch.queue_declare(q, **change),
              "inequivalent arg '%s'" % arg, q)
        # an identical redeclare is still fine
        ok = setup.queue_declare(q, **original)
        assert ok.method.queue == q
    finally:
        setup.queue_delete(q)


def test_ack_of_unknown_delivery_tag_is_406(connection):
    fails(connection, 406, "PRECONDITION_FAILED",
          lambda ch: ch.basic_ack(42), "unknown delivery tag 42")


@pytest.mark.parametrize("method", ["nack", "reject", "ack-multiple"])
def test_nack_reject_of_unknown_delivery_tag_is_406(connection, method):
    funcs = {
        "nack": lambda ch: ch.basic_nack(7),
        "reject": lambda ch: ch.basic_reject(7),
        "ack-multiple": lambda ch: ch.basic_ack(7, multiple=True),
    }
    fails(connection, 406, "PRECONDITION_FAILED", funcs[method],
          "unknown delivery tag 7")


def test_double_ack_is_406(connection):
    def double_ack(ch):
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, b"once")
        method, _, _ = ch.basic_get(q)
        ch.basic_ack(method.delivery_tag)
        ch.basic_ack(method.delivery_tag)

    fails(connection, 406, "PRECONDITION_FAILED", double_ack,
          "unknown delivery tag 1")


def test_ack_of_auto_acked_delivery_is_406(connection):
    def ack_auto_acked(ch):
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, b"auto")
        method, _, _ = ch.basic_get(q, auto_ack=True)
        ch.basic_ack(method.delivery_tag)

    fails(connection, 406, "PRECONDITION_FAILED", ack_auto_acked,
          "unknown delivery tag 1")


def test_delivery_tags_are_per_channel(connection):
    """A tag delivered on one channel is unknown on another, and the failed
    ack there does not ack the first channel's delivery."""
    ch1 = connection.channel()
    q = ch1.queue_declare("", exclusive=True).method.queue
    ch1.basic_publish("", q, b"m1")
    ch1.basic_publish("", q, b"m2")
    assert amqp_helpers.wait_until(
        lambda: amqp_helpers.queue_depth(ch1, q) == 2, timeout=DEADLINE)
    tags = [ch1.basic_get(q)[0].delivery_tag for _ in range(2)]
    assert tags == [1, 2]
    fails(connection, 406, "PRECONDITION_FAILED",
          lambda ch: ch.basic_ack(1), "unknown delivery tag 1")
    ch1.basic_ack(1)
    amqp_helpers.settle(ch1)  # the ack was accepted
    assert ch1.is_open
    # Closing ch1 requeues what it has not acked: m2 (the control), not m1.
    ch1.close()
    ch = connection.channel()
    assert amqp_helpers.wait_until(
        lambda: amqp_helpers.queue_depth(ch, q) == 1, timeout=DEADLINE)
    method, _, body = ch.basic_get(q, auto_ack=True)
    assert (body, method.redelivered) == (b"m2", True)
    assert ch.basic_get(q) == (None, None, None)


def test_queue_delete_if_unused_with_consumer_is_406(connection, uname):
    setup = connection.channel()
    q = uname("q")
    setup.queue_declare(q, exclusive=True)
    setup.basic_consume(q, NOOP)
    fails(connection, 406, "PRECONDITION_FAILED",
          lambda ch: ch.queue_delete(q, if_unused=True), q, "in use")
    # still there
    assert setup.queue_declare(q, passive=True).method.consumer_count == 1


def test_queue_delete_if_empty_with_messages_is_406(connection, uname):
    setup = connection.channel()
    q = uname("q")
    setup.queue_declare(q, exclusive=True)
    setup.basic_publish("", q, b"not empty")
    assert amqp_helpers.wait_until(
        lambda: amqp_helpers.queue_depth(setup, q) == 1, timeout=DEADLINE)
    fails(connection, 406, "PRECONDITION_FAILED",
          lambda ch: ch.queue_delete(q, if_empty=True), q, "not empty")
    assert amqp_helpers.queue_depth(setup, q) == 1


def test_queue_delete_if_unused_and_if_empty_succeed_when_true(connection,
                                                             uname):
    channel = connection.channel()
    q = uname("q")
    channel.queue_declare(q)
    ok = channel.queue_delete(q, if_unused=True, if_empty=True)
    assert ok.method.message_count == 0
    fails(connection, 404, "NOT_FOUND",
          lambda ch: ch.queue_declare(q, passive=True),
          "no queue '%s' in vhost '/'" % q)


def test_exchange_delete_if_unused_with_bindings_is_406(connection, uname):
    setup = connection.channel()
    x = uname("x")
    q = uname("q")
    setup.exchange_declare(x, "fanout")
    setup.queue_declare(q, exclusive=True)
    setup.queue_bind(q, x)
    try:
        fails(connection, 406, "PRECONDITION_FAILED",
              lambda ch: ch.exchange_delete(x, if_unused=True), x, "in use")
        setup.exchange_declare(x, "fanout", passive=True)
        setup.queue_unbind(q, x)
        setup.exchange_delete(x, if_unused=True)
        fails(connection, 404, "NOT_FOUND",
              lambda ch: ch.exchange_declare(x, passive=True))
    finally:
        setup.exchange_delete(x)


def test_user_id_other_than_authenticated_user_is_406(connection, uname):
    q = uname("q")
    setup = connection.channel()
    setup.queue_declare(q, exclusive=True)
    fails(connection, 406, "PRECONDITION_FAILED",
          lambda ch: ch.basic_publish("", q, b"x",
                                      pika.BasicProperties(user_id="bob")),
          "user_id property set to 'bob' but authenticated user was "
          "'guest'")
    # Control: the right user_id is accepted and routed. It is published
    # after the refused message was handled (its channel is closed), so the
    # refused one would be ahead of it in the queue.
    setup.basic_publish("", q, b"ok", pika.BasicProperties(user_id="guest"))
    assert amqp_helpers.wait_until(
        lambda: amqp_helpers.queue_depth(setup, q) >= 1, timeout=DEADLINE)
    assert amqp_helpers.bodies(amqp_helpers.get_all(setup, q)) == [b"ok"]


# -- 405 RESOURCE_LOCKED --------------------------------------------------

@pytest.mark.parametrize("operation", [
    "declare", "declare-exclusive", "passive-declare", "consume", "get",
    "purge", "delete", "bind",
])
def test_exclusive_queue_from_other_connection_is_405(connect, uname,
                                                      operation):
    owner = connect()
    q = uname("exclusive")
    owner.channel().queue_declare(q, exclusive=True)
    other = connect()
    funcs = {
        "declare": lambda ch: ch.queue_declare(q),
        "declare-exclusive": lambda ch: ch.queue_declare(q, exclusive=True),
        "passive-declare": lambda ch: ch.queue_declare(q, passive=True),
        "consume": lambda ch: ch.basic_consume(q, NOOP),
        "get": lambda ch: ch.basic_get(q),
        "purge": lambda ch: ch.queue_purge(q),
        "delete": lambda ch: ch.queue_delete(q),
        "bind": lambda ch: ch.queue_bind(q, "amq.fanout"),
    }
    fails(other, 405, "RESOURCE_LOCKED", funcs[operation],
          "cannot obtain exclusive access to locked queue '%s'" % q)
    # the owner can still use it
    assert owner.channel().queue_declare(q, passive=True).method.queue == q


def test_other_connection_may_publish_to_exclusive_queue(connect, uname):
    owner = connect()
    q = uname("exclusive")
    och = owner.channel()
    och.queue_declare(q, exclusive=True)
    other = connect()
    ch = other.channel()
    ch.basic_publish("", q, b"for the owner")
    amqp_helpers.settle(ch)  # round trip: publish was accepted
    assert ch.is_open
    assert amqp_helpers.wait_until(
        lambda: amqp_helpers.queue_depth(och, q) == 1, timeout=DEADLINE)
    method, _, body = och.basic_get(q, auto_ack=True)
    assert body == b"for the owner"


def test_redeclare_as_exclusive_from_same_connection_is_405(connection,
                                                            uname):
    setup = connection.channel()
    q = uname("q")
    setup.queue_declare(q, auto_delete=True)
    setup.basic_consume(q, NOOP)  # keeps the auto-delete queue alive
    fails(connection, 405, "RESOURCE_LOCKED",
          lambda ch: ch.queue_declare(q, auto_delete=True, exclusive=True),
          q)


# -- connection level errors -----------------------------------------------

def test_unknown_exchange_type_is_connection_error_503(connect, uname):
    conn = connect()
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        ch.exchange_declare(uname("x"), "no-such-type")
    assert info.value.reply_code == 503
    assert info.value.reply_text.startswith("COMMAND_INVALID - ")
    assert "no-such-type" in info.value.reply_text
    assert conn.is_closed


def test_qos_prefetch_size_is_connection_error_540(connect):
    conn = connect()
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        ch.basic_qos(prefetch_size=10)
    assert info.value.reply_code == 540
    assert info.value.reply_text.startswith("NOT_IMPLEMENTED - ")


def test_recover_without_requeue_is_connection_error_540(connect):
    conn = connect()
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        ch.basic_recover(requeue=False)
    assert info.value.reply_code == 540
    assert info.value.reply_text.startswith("NOT_IMPLEMENTED - ")


def test_reused_consumer_tag_is_connection_error_530(raw_client):
    """pika refuses a duplicate tag client-side, so use the raw client."""
    c = raw_client()
    c.handshake()
    c.channel_open(1)
    q, _, _ = c.queue_declare(1, "", exclusive=True)
    assert c.basic_consume(1, q, "dup-tag") == "dup-tag"
    c.send_method(1, rawamqp.BASIC_CONSUME,
                  struct.pack(">H", 0) + rawamqp.shortstr(q)
                  + rawamqp.shortstr("dup-tag")
                  + rawamqp.bits(False, False, False, False)
                  + rawamqp.table({}))
    close = c.expect_connection_close()
    assert close.reply_code == 530
    assert close.reply_text.startswith("NOT_ALLOWED - ")
    assert "dup-tag" in close.reply_text
    assert (close.class_id, close.method_id) == rawamqp.BASIC_CONSUME


def test_channel_open_on_open_channel_is_504(raw_client):
    c = raw_client()
    c.handshake()
    c.channel_open(5)
    c.send_method(5, rawamqp.CHANNEL_OPEN, rawamqp.shortstr(""))
    close = c.expect_connection_close()
    assert close.reply_code == 504
    assert close.reply_text.startswith("CHANNEL_ERROR - ")
    assert (close.class_id, close.method_id) == rawamqp.CHANNEL_OPEN


def test_channel_close_reports_failing_method_ids(raw_client, uname):
    """channel.close carries the class/method id of the failing method."""
    c = raw_client()
    c.handshake()
    c.channel_open(1)
    name = uname("missing")
    c.send_method(1, rawamqp.QUEUE_DECLARE,
                  struct.pack(">H", 0) + rawamqp.shortstr(name)
                  + rawamqp.bits(True, False, False, False, False)
                  + rawamqp.table({}))
    close = c.expect_channel_close(1)
    assert close.reply_code == 404
    assert (close.class_id, close.method_id) == rawamqp.QUEUE_DECLARE
    # the channel number can be reused after close-ok
    c.channel_open(1)
    q, _, _ = c.queue_declare(1, "", exclusive=True)
    assert q.startswith("amq.gen-")
    c.close()
