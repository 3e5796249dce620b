"""Delayed delivery: the exchange type x-delayed-message of RabbitMQ's community plugin
rabbitmq-delayed-message-exchange (checked against RabbitMQ 3.10.8 with the plugin's 3.10
build), with its x-delayed-type argument (how the exchange routes once a message is due) and the
x-delay header (ms; absent, zero, negative or above 2^32-1: routed at once).

Where Warren differs from the plugin on purpose (README, "Delayed messages"), the test says what
each does and checks the plugin's behaviour when WARREN_TEST_AMQP_PORT points at a RabbitMQ with
the plugin:
* a mandatory publish that waits is not returned (the plugin returns it as NO_ROUTE, then
  delivers it anyway);
* a message that waits does not also go to the alternate exchange at once (plugin issue #36);
* a non-numeric string x-delay routes at once (the plugin's channel crashes: 541);
* deleting the exchange drops the messages waiting in it (the plugin routes them by name when
  due, into an exchange declared again under that name);
* a delayed publish in a transaction that is rolled back is not delivered (the plugin stores it
  when the channel routes it, before the commit).

And where Warren promises more: on a durable exchange a persistent message is on disk when it
is confirmed (proved with the sync gate) and survives a clean restart and kill -9, due at the
same wall-clock time (late ones at once, in due order).

No test measures time: order is proved by due order (a message that was due earlier must arrive
earlier), and "still waiting" by messages with a 10-minute delay next to ones that arrive.
"""

import struct

import pika
import pika.exceptions
import pytest

import amqp_helpers
import rawamqp
from amqp_helpers import close_quietly, params, queue_depth, settle, unique, wait_until

DELAYED = "x-delayed-message"
LONG = 600000  # 10 minutes: waits for the whole test
CONFIRM_SELECT = (85, 10)
CONFIRM_SELECT_OK = (85, 11)
BASIC_NACK = (60, 120)
HEADERS_FLAG = 1 << 13
DELIVERY_MODE_FLAG = 1 << 12


def declare_delayed(ch, name, kind="direct", durable=False, **arguments):
    arguments["x-delayed-type"] = kind
    ch.exchange_declare(name, DELAYED, durable=durable, arguments=arguments)


def delayed(ms, **props):
    headers = dict(props.pop("headers", None) or {})
    headers["x-delay"] = ms
    return pika.BasicProperties(headers=headers, **props)


def fresh_queue(ch, exchange=None, key="", arguments=None):
    q = ch.queue_declare("", exclusive=True).method.queue
    if exchange is not None:
        ch.queue_bind(q, exchange, key, arguments=arguments)
    return q


def collect(ch, queue, n, timeout=30):
    """Bodies taken from queue (basic.get, auto-ack) in arrival order until n have come."""
    got = []

    def enough():
        got.extend(body for _, _, body in amqp_helpers.get_all(ch, queue))
        return len(got) >= n

    wait_until(enough, timeout=timeout)
    return got


def raw_publish(port, exchange, items, confirm=False, channel=1):
    """Publishes (routing key, body, headers or None, delivery mode) items back to back on one
    connection (rawamqp, so any field type can be sent); with confirm, reads confirms until the
    last one. Returns the confirms [(kind, tag, multiple)]."""
    client = rawamqp.RawClient("127.0.0.1", port, timeout=30)
    try:
        client.handshake()
        client.channel_open(channel)
        if confirm:
            client.send_method(channel, CONFIRM_SELECT, rawamqp.bits(False))
            client.read_method(CONFIRM_SELECT_OK)
        out = []
        for key, body, headers, mode in items:
            flags, props = DELIVERY_MODE_FLAG, b""
            if headers is not None:
                flags |= HEADERS_FLAG
                props += rawamqp.table(headers)
            props += bytes([mode])
            out.append(rawamqp.method_frame(
                channel, rawamqp.BASIC_PUBLISH, struct.pack(">H", 0) + rawamqp.shortstr(exchange)
                + rawamqp.shortstr(key) + rawamqp.bits(False, False)))
            out.append(rawamqp.content_header_frame(channel, len(body), flags=flags, props=props))
            out.append(rawamqp.body_frame(channel, body))
        client.send(b"".join(out))
        confirms = []
        while confirm and (not confirms or confirms[-1][1] < len(items)):
            frm = client.read_method()
            assert frm.class_method in (rawamqp.BASIC_ACK, BASIC_NACK), frm
            kind = "ack" if frm.class_method == rawamqp.BASIC_ACK else "nack"
            confirms.append((kind, frm.args.longlong(), bool(frm.args.octet() & 1)))
        if not confirm:
            # A synchronous round trip: every publish before it has been routed.
            client.basic_qos(channel, 0)
        return confirms
    finally:
        client.close_socket()


# ---------------------------------------------------------------------------
# 1. Order, routing types, what routes at once.


def test_shorter_delays_come_first_whatever_the_publish_order(connection, make_exchange):
    ch = connection.channel()
    x = make_exchange(DELAYED, arguments={"x-delayed-type": "direct"})
    q = fresh_queue(ch, x, "k")
    for body, ms in ((b"third", 1500), (b"first", 500), (b"second", 1000)):
        ch.basic_publish(x, "k", body, delayed(ms))
    ch.basic_publish(x, "k", b"no-delay", pika.BasicProperties())
    ch.basic_publish(x, "k", b"waits", delayed(LONG))
    assert collect(ch, q, 4) == [b"no-delay", b"first", b"second", b"third"]
    assert queue_depth(ch, q) == 0  # the 10-minute one still waits


def test_without_a_positive_delay_up_to_2_32_ms_a_message_routes_at_once(connection,
                                                                          make_exchange):
    ch = connection.channel()
    x = make_exchange(DELAYED, arguments={"x-delayed-type": "fanout"})
    q = fresh_queue(ch, x)
    ch.basic_publish(x, "", b"waits", delayed(LONG))  # the positive control: it stays away
    ch.basic_publish(x, "", b"no-header", pika.BasicProperties())
    ch.basic_publish(x, "", b"other-headers", pika.BasicProperties(headers={"a": 1}))
    ch.basic_publish(x, "", b"zero", delayed(0))
    ch.basic_publish(x, "", b"negative", delayed(-5000))
    ch.basic_publish(x, "", b"too-large", delayed(2 ** 32))  # the plugin's timer limit
    ch.basic_publish(x, "", b"bool", delayed(True))
    settle(ch)
    assert [body for _, _, body in amqp_helpers.get_all(ch, q)] == \
        [b"no-header", b"other-headers", b"zero", b"negative", b"too-large", b"bool"]


def test_x_delay_field_types(broker, connection, make_exchange):
    """Integer types as they are, a longstr parsed, float and double truncated; a byte array or
    a timestamp is no delay. Proved by arrival order: the immediate ones first, then by delay."""
    ch = connection.channel()
    x = make_exchange(DELAYED, arguments={"x-delayed-type": "fanout"})
    q = fresh_queue(ch, x)
    T = rawamqp.Typed
    waiting = [(b"f-1500", T("f", 1500.7)), (b"S-1200", "1200"), (b"s-900", T("s", 900)),
               (b"d-600", T("d", 600.9)), (b"u-300", T("u", 300))]
    at_once = [(b"x", T("x", b"100")), (b"T", T("T", 100)), (b"V", None)]
    if not broker.external:
        at_once.append((b"S-abc", "abc"))  # the plugin's channel crashes (541) on this one
    items = [("", body, {"x-delay": value}, 1) for body, value in waiting + at_once]
    raw_publish(broker.port, x, items)
    assert collect(ch, q, len(items)) == \
        [body for body, _ in at_once] + [body for body, _ in reversed(waiting)]


@pytest.mark.parametrize("kind", ["direct", "fanout", "topic", "headers"])
def test_due_messages_route_by_x_delayed_type(connection, make_exchange, kind):
    ch = connection.channel()
    x = make_exchange(DELAYED, arguments={"x-delayed-type": kind})
    # (binding key, binding arguments) of a queue that matches and of one that does not
    # (fanout: both match).
    bindings = {
        "direct": (("a.b", None), ("a.c", None)),
        "fanout": (("", None), ("other", None)),
        "topic": (("a.*", None), ("b.#", None)),
        "headers": (("", {"x-match": "all", "colour": "red"}),
                    ("", {"x-match": "all", "colour": "blue"})),
    }[kind]
    hit, other = [fresh_queue(ch, x, key, arguments) for key, arguments in bindings]
    ch.basic_publish(x, "a.b", b"m", delayed(200, headers={"colour": "red"}))
    assert collect(ch, hit, 1) == [b"m"]
    # The matching queue got it, so routing is done.
    assert queue_depth(ch, other) == (1 if kind == "fanout" else 0)


def test_properties_exchange_and_key_pass_through_unchanged(connection, make_exchange):
    """The plugin rewrites x-delay to -x-delay internally, but AMQP 0-9-1 consumers get the
    properties as published (its header swap does not reach the encoded content)."""
    ch = connection.channel()
    x = make_exchange(DELAYED, arguments={"x-delayed-type": "direct"})
    q = fresh_queue(ch, x, "key")
    props = dict(content_type="text/plain", headers={"zz": 1, "x-delay": 100, "aa": "s"},
                 delivery_mode=2, priority=3, correlation_id="c", message_id="m-1",
                 timestamp=1700000000, type="t", app_id="a")
    ch.basic_publish(x, "key", b"body", pika.BasicProperties(**props))
    assert wait_until(lambda: queue_depth(ch, q) == 1)
    method, got, body = ch.basic_get(q, auto_ack=True)
    assert (body, method.exchange, method.routing_key, method.redelivered) == \
        (b"body", x, "key", False)
    assert dict(vars(got)) == dict(vars(pika.BasicProperties(**props)))
    assert list(got.headers) == ["zz", "x-delay", "aa"]  # order kept too


# ---------------------------------------------------------------------------
# 2. Declaring.


def test_declare_errors_are_the_plugins(connect):
    cases = [
        ({}, 406, "PRECONDITION_FAILED - Invalid argument, 'x-delayed-type' must be an existing "
                  "exchange type"),
        ({"x-delayed-type": 5}, 406, "PRECONDITION_FAILED - Invalid argument, 'x-delayed-type' "
                                     "must be an existing exchange type"),
        ({"x-delayed-type": DELAYED}, 406, "PRECONDITION_FAILED - Invalid argument, "
                                           "'x-delayed-message' can't be used for "
                                           "'x-delayed-type'"),
    ]
    for arguments, code, text in cases:
        conn = connect()
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.exchange_declare(unique("bad"), DELAYED, arguments=arguments)
        assert (info.value.reply_code, info.value.reply_text) == (code, text), arguments
        assert conn.is_open  # a channel error
    # An unknown type is a connection error, as for exchange.declare itself.
    conn = connect()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        conn.channel().exchange_declare(unique("bad"), DELAYED,
                                        arguments={"x-delayed-type": "nope"})
    assert (info.value.reply_code, info.value.reply_text) == \
        (503, "COMMAND_INVALID - unknown exchange type 'nope'")


def test_redeclare_compares_the_type_not_the_delayed_type(connection, make_exchange):
    ch = connection.channel()
    x = make_exchange(DELAYED, arguments={"x-delayed-type": "direct"})
    ch.exchange_declare(x, DELAYED, arguments={"x-delayed-type": "topic"})  # not compared
    ch.exchange_declare(x, passive=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.exchange_declare(x, "direct")
    assert (info.value.reply_code, info.value.reply_text) == (
        406, "PRECONDITION_FAILED - inequivalent arg 'type' for exchange '%s' in vhost '/': "
             "received 'direct' but current is ''x-delayed-message''" % x)
    # Still direct routing: the redeclare with "topic" changed nothing.
    ch = connection.channel()
    q = fresh_queue(ch, x, "a.*")
    exact = fresh_queue(ch, x, "a.b")
    ch.basic_publish(x, "a.b", b"m", delayed(100))
    assert collect(ch, exact, 1) == [b"m"]
    assert queue_depth(ch, q) == 0


# ---------------------------------------------------------------------------
# 3. Mandatory, alternate exchanges, exchange-to-exchange bindings, deletion.


def test_mandatory(broker, connection, make_exchange):
    """Warren does not return a mandatory publish that waits: whether it routes is known only
    when it is due (then it is dropped if unroutable). The plugin returns it as NO_ROUTE at once
    and still delivers it later. Both return an unroutable publish that does not wait."""
    ch = connection.channel()
    returned = []
    ch.add_on_return_callback(lambda _ch, method, props, body: returned.append(body))
    x = make_exchange(DELAYED, arguments={"x-delayed-type": "direct"})
    q = fresh_queue(ch, x, "k")
    ch.basic_publish(x, "k", b"delayed-routable", delayed(300), mandatory=True)
    ch.basic_publish(x, "nowhere", b"delayed-unroutable", delayed(200), mandatory=True)
    ch.basic_publish(x, "nowhere", b"unroutable", pika.BasicProperties(), mandatory=True)
    assert collect(ch, q, 1) == [b"delayed-routable"]
    connection.process_data_events(time_limit=0)
    if broker.external:
        assert returned == [b"delayed-routable", b"delayed-unroutable", b"unroutable"]
    else:
        assert returned == [b"unroutable"]


def test_alternate_exchange_gets_what_is_unroutable_when_due(broker, connection, make_exchange):
    """Warren: the alternate exchange sees a delayed message only if it matches nothing when it
    is due. The plugin also hands every message that waits to the alternate exchange at once
    (issue #36)."""
    ch = connection.channel()
    ae = make_exchange("fanout")
    ae_q = fresh_queue(ch, ae)
    x = make_exchange(DELAYED, arguments={"x-delayed-type": "direct", "alternate-exchange": ae})
    q = fresh_queue(ch, x, "k")
    ch.basic_publish(x, "nowhere", b"unroutable-now", pika.BasicProperties())
    ch.basic_publish(x, "k", b"routable", delayed(300))
    ch.basic_publish(x, "nowhere", b"unroutable-when-due", delayed(300))
    settle(ch)
    if broker.external:
        assert collect(ch, ae_q, 4) == [b"unroutable-now", b"routable", b"unroutable-when-due",
                                        b"unroutable-when-due"]
        return
    # The message that does not wait reached the alternate exchange; those that wait did not.
    assert [body for _, _, body in amqp_helpers.get_all(ch, ae_q)] == [b"unroutable-now"]
    assert collect(ch, ae_q, 1) == [b"unroutable-when-due"]
    assert collect(ch, q, 1) == [b"routable"]  # due at the same time
    assert queue_depth(ch, ae_q) == 0


def test_reached_through_a_binding_delays_once_and_keeps_the_published_exchange(
        connection, make_exchange):
    """A message reaching a delayed exchange through an exchange-to-exchange binding waits
    there; when due it is not delayed again by a delayed exchange further on (proved by order:
    delayed twice, 'first' would come after 'second')."""
    ch = connection.channel()
    src = make_exchange("direct")
    d1 = make_exchange(DELAYED, arguments={"x-delayed-type": "fanout"})
    d2 = make_exchange(DELAYED, arguments={"x-delayed-type": "direct"})
    ch.exchange_bind(d1, src, "k")
    ch.exchange_bind(d2, d1, "")
    q = fresh_queue(ch, d2, "k")
    ch.basic_publish(src, "k", b"first", delayed(1500))
    ch.basic_publish(d2, "k", b"second", delayed(2500))
    ch.basic_publish(src, "k", b"waits", delayed(LONG))
    got = []
    assert wait_until(lambda: got.extend(amqp_helpers.get_all(ch, q)) or len(got) >= 2)
    assert [(m.exchange, body) for m, _, body in got] == [(src, b"first"), (d2, b"second")]


def test_deleting_the_exchange_drops_its_waiting_messages(broker, connection, uname):
    """Warren drops what waits in a deleted exchange (and acks it in the journal). The plugin
    keeps it and routes it by the exchange's name when due, so an exchange declared again under
    that name receives it."""
    ch = connection.channel()
    x = uname("dx")
    declare_delayed(ch, x, "fanout")
    q = fresh_queue(ch, x)
    ch.basic_publish(x, "", b"dropped", delayed(500))
    settle(ch)
    ch.exchange_delete(x)
    declare_delayed(ch, x, "fanout")
    ch.queue_bind(q, x)
    ch.basic_publish(x, "", b"control", delayed(1000))
    if broker.external:
        assert collect(ch, q, 2) == [b"dropped", b"control"]
    else:
        # 'dropped' was due before 'control': had it survived, it would be there first.
        assert collect(ch, q, 1) == [b"control"]
    ch.exchange_delete(x)


def test_dead_lettered_messages_wait_too(connection, make_exchange):
    """A delayed exchange as a queue's dead-letter exchange (retries with a back-off): the
    rejected message waits for its x-delay like a published one. Proved by order: 'retried' was
    rejected after 'control' was published with a shorter delay, and must come after it."""
    ch = connection.channel()
    x = make_exchange(DELAYED, arguments={"x-delayed-type": "direct"})
    retry_q = fresh_queue(ch, x, "retry")
    work_q = ch.queue_declare("", exclusive=True, arguments={
        "x-dead-letter-exchange": x, "x-dead-letter-routing-key": "retry"}).method.queue
    ch.basic_publish("", work_q, b"retried", delayed(1500))
    ch.basic_publish(x, "retry", b"control", delayed(500))
    method, _, body = ch.basic_get(work_q, auto_ack=False)
    assert body == b"retried"
    ch.basic_reject(method.delivery_tag, requeue=False)
    got = []
    assert wait_until(lambda: got.extend(amqp_helpers.get_all(ch, retry_q)) or len(got) >= 2)
    assert [body for _, _, body in got] == [b"control", b"retried"]
    assert got[1][1].headers["x-death"][0]["reason"] == "rejected"


def test_transactions_publish_delayed_messages_at_commit(broker, connection, make_exchange):
    """In a transaction a delayed publish takes effect at tx.commit and vanishes at rollback.
    The plugin stores the message when the channel routes it, at publish time, so a rolled back
    one is delivered anyway."""
    ch = connection.channel()
    x = make_exchange(DELAYED, arguments={"x-delayed-type": "fanout"})
    q = fresh_queue(ch, x)
    ch.tx_select()
    ch.basic_publish(x, "", b"rolled-back", delayed(300))
    ch.tx_rollback()
    ch.basic_publish(x, "", b"committed", delayed(600))
    ch.tx_commit()
    if broker.external:
        assert collect(ch, q, 2) == [b"rolled-back", b"committed"]
    else:
        # 'rolled-back' would have been due first.
        assert collect(ch, q, 1) == [b"committed"]


def test_more_than_the_ram_budget_waiting_arrive_complete_and_in_order(broker, connection,
                                                                        make_exchange):
    """25,000 transient messages wait at once: past 20,000 (the RAM budget) their bodies are
    written to the journal and read back when due."""
    ch = connection.channel()
    x = make_exchange(DELAYED, arguments={"x-delayed-type": "fanout"})
    q = fresh_queue(ch, x)
    bodies = [b"m%05d" % i for i in range(25000)]
    raw_publish(broker.port, x, [("", body, {"x-delay": 3000}, 1) for body in bodies])
    got = amqp_helpers.consume_n(ch, q, len(bodies), timeout=60)
    assert [body for _, _, body in got] == bodies


# ---------------------------------------------------------------------------
# 4. Durability: confirms mean the disk, restarts and kill -9.


def open_channel(b, confirm=False):
    conn = pika.BlockingConnection(params(b.port))
    ch = conn.channel()
    if confirm:
        ch.confirm_delivery()
    return conn, ch


def logged(b, text):
    return wait_until(lambda: any(text in line for line in list(b.log)))


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "kill-9"])
def test_persistent_delayed_messages_survive_a_restart(restartable_broker, kill):
    b = restartable_broker.start()
    conn, ch = open_channel(b, confirm=True)
    declare_delayed(ch, "dx", "direct", durable=True)
    declare_delayed(ch, "transient-x", "direct", durable=False)
    ch.queue_declare("dq", durable=True)
    ch.queue_bind("dq", "dx", "k")
    ch.queue_bind("dq", "transient-x", "k")
    for body, ms in ((b"third", 4000), (b"first", 2000), (b"second", 3000)):
        ch.basic_publish("dx", "k", body, delayed(ms, delivery_mode=2, message_id=body.decode()))
    ch.basic_publish("dx", "k", b"waits", delayed(LONG, delivery_mode=2))
    # Gone after the restart: a transient message, and anything in a transient exchange. Both
    # were due with 'first': had they survived they would arrive before 'second'.
    ch.basic_publish("dx", "k", b"transient", delayed(2000, delivery_mode=1))
    ch.basic_publish("transient-x", "k", b"transient-exchange", delayed(2000, delivery_mode=2))
    if not kill:
        conn.close()
    b = restartable_broker.restart(kill=kill)
    assert logged(b, "delayed messages restored")
    conn, ch = open_channel(b)
    got = collect(ch, "dq", 3)
    assert got == [b"first", b"second", b"third"]
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.exchange_declare("transient-x", passive=True)
    assert info.value.reply_code == 404
    conn.close()
    # What was delivered is acked in the journal; the 10-minute one is still there.
    b = restartable_broker.restart()
    assert logged(b, "1 delayed messages restored")
    conn, ch = open_channel(b)
    assert queue_depth(ch, "dq") == 0
    conn.close()


def test_confirmed_delayed_messages_survive_kill_9(restartable_broker):
    """Every confirmed publish is delivered after a kill -9 that follows the last confirm (some
    may have been due before the crash: those are in the durable queue), in due order."""
    b = restartable_broker.start()
    conn, ch = open_channel(b)
    declare_delayed(ch, "dx", "fanout", durable=True)
    ch.queue_declare("dq", durable=True)
    ch.queue_bind("dq", "dx")
    conn.close()
    count = 2000
    items = [("", b"c%04d" % i, {"x-delay": 2000 + (i * 7919) % 3000}, 2) for i in range(count)]
    confirms = raw_publish(b.port, "dx", items, confirm=True)
    assert all(kind == "ack" for kind, _, _ in confirms) and confirms[-1][1] == count
    b = restartable_broker.restart(kill=True)
    conn, ch = open_channel(b)
    got = amqp_helpers.consume_n(ch, "dq", count, timeout=60)
    bodies = [body for _, _, body in got]
    assert sorted(set(bodies)) == sorted(body for _, body, _, _ in items)
    conn.close()


@pytest.fixture
def gated(warren_factory, tmp_path):
    """(broker, gate path): a private broker whose journal syncs wait while the gate exists
    (the WARREN_TEST_SYNC_GATE hook, see test_sync_promises.py)."""
    gate = tmp_path / "sync-gate"
    b = warren_factory(env={"WARREN_TEST_SYNC_GATE": str(gate)})
    yield b, gate
    if gate.exists():
        gate.unlink()


def test_confirm_of_a_persistent_delayed_message_waits_for_the_disk(gated):
    """While the journal's fdatasync is held, a persistent message delayed on a durable exchange
    is not confirmed; a transient one (not written) is, on the same connection; releasing the
    sync confirms the first."""
    b, gate = gated
    conn, ch = open_channel(b)
    declare_delayed(ch, "dx", "fanout", durable=True)
    ch.queue_declare("dq", durable=True)
    ch.queue_bind("dq", "dx")
    conn.close()
    client = rawamqp.RawClient("127.0.0.1", b.port, timeout=30).handshake()
    try:
        for channel in (1, 2):
            client.channel_open(channel)
            client.send_method(channel, CONFIRM_SELECT, rawamqp.bits(False))
            client.read_method(CONFIRM_SELECT_OK)

        def publish(channel, mode):
            client.send(rawamqp.method_frame(
                channel, rawamqp.BASIC_PUBLISH, struct.pack(">H", 0) + rawamqp.shortstr("dx")
                + rawamqp.shortstr("") + rawamqp.bits(False, False))
                + rawamqp.content_header_frame(channel, 1, flags=HEADERS_FLAG | DELIVERY_MODE_FLAG,
                                               props=rawamqp.table({"x-delay": LONG})
                                               + bytes([mode]))
                + rawamqp.body_frame(channel, b"m"))

        def holds():
            return sum("sync gate: holding fdatasync" in line for line in list(b.log))

        before = holds()
        gate.touch()
        publish(1, 2)
        assert wait_until(lambda: holds() > before), "the journal sync was not held"
        publish(2, 1)
        # Channel 2's confirm comes back while channel 1's still waits for the disk.
        frm = client.read_method()
        assert (frm.channel, frm.class_method) == (2, rawamqp.BASIC_ACK)
        gate.unlink()
        frm = client.read_method()
        assert (frm.channel, frm.class_method) == (1, rawamqp.BASIC_ACK)
    finally:
        client.close_socket()
