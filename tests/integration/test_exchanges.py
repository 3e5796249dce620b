"""Exchange types, built-in exchanges, exchange-to-exchange bindings,
alternate exchanges, internal and auto-delete exchanges. The topic and headers
matching tables are tests/data/{topic,headers}_cases.json, shared with the unit
tests (see matching_cases.py)."""

import struct
import time
import uuid

import pika
import pika.exceptions
import pytest

import amqp_helpers
import matching_cases
import rawamqp
from amqp_helpers import expect_channel_closed, settle, unique

DEADLINE = 30  # seconds to wait for something that must happen


def drain(channel, queue):
    """The bodies of every message in `queue` that is ahead of a marker, which
    this publishes to the queue through the default exchange on `channel`; the
    queue is left empty. A channel's messages reach a queue in the order they
    were published, so every message routed to `queue` by an earlier publish on
    `channel` is in the result, and a message missing from it was not routed
    (no sleeping, no guessing how long routing takes)."""
    marker = b"drain-marker." + uuid.uuid4().hex.encode()
    channel.basic_publish("", queue, marker)
    out = []
    deadline = time.monotonic() + DEADLINE
    while True:
        method, _, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            assert time.monotonic() < deadline, (
                "the marker published to %s did not arrive; got %r" % (queue, out))
            time.sleep(0.01)
            continue
        if body == marker:
            return out
        out.append(body)


def check_not_found(exc, kind, name):
    """A 404 closing a passive declare of a missing exchange or queue, with
    RabbitMQ's text."""
    assert exc.reply_code == 404, (exc.reply_code, exc.reply_text)
    assert exc.reply_text == "NOT_FOUND - no %s '%s' in vhost '/'" % (kind, name)


def exclusive_queue(channel):
    return channel.queue_declare("", exclusive=True).method.queue


# -- built-in exchanges ----------------------------------------------------

BUILTIN_TYPES = [
    ("amq.direct", "direct"),
    ("amq.fanout", "fanout"),
    ("amq.topic", "topic"),
    ("amq.headers", "headers"),
    ("amq.match", "headers"),
]


@pytest.mark.parametrize("name,kind", BUILTIN_TYPES)
def test_builtin_exchanges_exist_with_their_types(channel, name, kind):
    channel.exchange_declare(name, passive=True)
    # an equivalent (durable) redeclare is accepted
    channel.exchange_declare(name, kind, durable=True)
    assert channel.is_open


@pytest.mark.parametrize("name,kind", [
    ("amq.direct", "fanout"),
    ("amq.topic", "direct"),
    ("amq.match", "topic"),
])
def test_builtin_exchange_redeclared_with_other_type_is_406(connection,
                                                          name, kind):
    ch = connection.channel()
    exc = expect_channel_closed(
        ch, connection, lambda: ch.exchange_declare(name, kind,
                                                    durable=True))
    assert exc.reply_code == 406, (exc.reply_code, exc.reply_text)
    assert exc.reply_text.startswith("PRECONDITION_FAILED - "), exc.reply_text
    assert "inequivalent arg 'type'" in exc.reply_text, exc.reply_text
    assert "'%s'" % name in exc.reply_text, exc.reply_text
    # the built-in exchange keeps its type
    ch2 = connection.channel()
    ch2.exchange_declare(name, dict(BUILTIN_TYPES)[name], durable=True)


def test_default_exchange_routes_by_queue_name(channel, uname):
    q1 = uname("q1")
    q2 = uname("q2")
    channel.queue_declare(q1, exclusive=True)
    channel.queue_declare(q2, exclusive=True)
    channel.basic_publish("", q1, b"to q1")
    channel.basic_publish("", q2, b"to q2")
    channel.basic_publish("", uname("nobody"), b"dropped silently")
    assert drain(channel, q1) == [b"to q1"]
    assert drain(channel, q2) == [b"to q2"]
    assert channel.is_open


def test_default_exchange_passive_declare_is_403(connection):
    """RabbitMQ refuses even a passive declare of the default exchange."""
    ch = connection.channel()
    exc = expect_channel_closed(ch, connection, ch.exchange_declare, "",
                                passive=True)
    assert exc.reply_code == 403
    assert exc.reply_text == ("ACCESS_REFUSED - operation not permitted on "
                              "the default exchange")


def test_builtin_direct_exchange_routes(channel, uname):
    q = exclusive_queue(channel)
    key = uname("key")
    channel.queue_bind(q, "amq.direct", key)
    channel.basic_publish("amq.direct", key, b"hit")
    channel.basic_publish("amq.direct", key + ".other", b"miss")
    assert drain(channel, q) == [b"hit"]


# -- direct / fanout ------------------------------------------------------

def test_direct_exchange_exact_match_and_multiple_bindings(channel, uname):
    x = uname("direct")
    channel.exchange_declare(x, "direct", auto_delete=True)
    qa = exclusive_queue(channel)
    qb = exclusive_queue(channel)
    channel.queue_bind(qa, x, "black")
    channel.queue_bind(qb, x, "black")
    channel.queue_bind(qb, x, "green")
    for key in ["black", "green", "orange", "Black", "black.x", ""]:
        channel.basic_publish(x, key, key.encode())
    assert drain(channel, qa) == [b"black"]
    assert drain(channel, qb) == [b"black", b"green"]


def test_fanout_ignores_routing_key(channel, uname):
    x = uname("fanout")
    channel.exchange_declare(x, "fanout", auto_delete=True)
    queues = [exclusive_queue(channel) for _ in range(3)]
    for i, q in enumerate(queues):
        channel.queue_bind(q, x, "binding-key-%d" % i)
    channel.basic_publish(x, "whatever", b"m1")
    channel.basic_publish(x, "", b"m2")
    for q in queues:
        assert drain(channel, q) == [b"m1", b"m2"]


def test_queue_bound_twice_gets_one_copy(channel, uname):
    x = uname("topic")
    channel.exchange_declare(x, "topic", auto_delete=True)
    q = exclusive_queue(channel)
    channel.queue_bind(q, x, "a.*")
    channel.queue_bind(q, x, "#")
    channel.queue_bind(q, x, "a.b")
    channel.basic_publish(x, "a.b", b"once")
    assert drain(channel, q) == [b"once"]  # a second copy would be before the marker


def test_binding_twice_is_idempotent(channel, make_exchange):
    x = make_exchange("direct")
    q = exclusive_queue(channel)
    channel.queue_bind(q, x, "k")
    channel.queue_bind(q, x, "k")
    channel.basic_publish(x, "k", b"1")
    assert drain(channel, q) == [b"1"]
    # a single unbind removes the (single) binding
    channel.queue_unbind(q, x, "k")
    channel.basic_publish(x, "k", b"2")
    assert drain(channel, q) == []


# -- topic ------------------------------------------------------------------

TOPIC_CASES = matching_cases.topic_cases()


def test_topic_pattern_table(channel, uname):
    """Every case of tests/data/topic_cases.json on a real topic exchange: one
    queue bound per pattern, every key of the table published once."""
    x = uname("topic")
    channel.exchange_declare(x, "topic", auto_delete=True)
    queues = {}
    keys = []
    for pattern, match, no_match in TOPIC_CASES:
        queues[pattern] = exclusive_queue(channel)
        channel.queue_bind(queues[pattern], x, pattern)
        keys += [k for k in match + no_match if k not in keys]
    for key in keys:
        channel.basic_publish(x, key, b"key:" + key.encode())
    mismatches = {}
    for pattern, match, no_match in TOPIC_CASES:
        got = [b[4:].decode() for b in drain(channel, queues[pattern])]
        assert len(got) == len(set(got)), (pattern, got)  # one copy each
        listed = set(match) | set(no_match)
        routed = [k for k in got if k in listed]
        if sorted(routed) != sorted(match):
            mismatches[pattern] = {"expected": match, "got": routed}
    assert mismatches == {}


def test_topic_words_are_case_sensitive_and_exact(channel, uname):
    x = uname("topic")
    channel.exchange_declare(x, "topic", auto_delete=True)
    q = exclusive_queue(channel)
    channel.queue_bind(q, x, "stock.usd.*")
    for key in ["stock.usd.nyse", "stock.USD.nyse", "stock.usd",
                "stock.usd.nyse.x", "stock.usdx.nyse", "xstock.usd.nyse"]:
        channel.basic_publish(x, key, key.encode())
    assert drain(channel, q) == [b"stock.usd.nyse"]


# -- headers ----------------------------------------------------------------

HEADERS_CASES = matching_cases.headers_cases()
HEADERS_FLAG = 1 << 13  # the headers bit of basic's property flags


def raw_exchange_declare(c, channel, name, kind, auto_delete=False):
    c.send_method(channel, (40, 10), struct.pack(">H", 0)
                  + rawamqp.shortstr(name) + rawamqp.shortstr(kind)
                  + rawamqp.bits(False, False, auto_delete, False, False)
                  + rawamqp.table({}))
    c.read_method((40, 11))


def raw_queue_bind(c, channel, queue, exchange, routing_key, arguments):
    c.send_method(channel, (50, 20), struct.pack(">H", 0)
                  + rawamqp.shortstr(queue) + rawamqp.shortstr(exchange)
                  + rawamqp.shortstr(routing_key) + rawamqp.bits(False)
                  + rawamqp.table(arguments))
    c.read_method((50, 21))


@pytest.mark.parametrize("case", HEADERS_CASES,
                         ids=[c["name"] for c in HEADERS_CASES])
def test_headers_exchange_matching(raw_client, uname, case):
    """A case of tests/data/headers_cases.json on a real headers exchange. The
    raw client sends every field type exactly as the table says (pika has no
    floats, nor integers of other widths)."""
    c = raw_client(timeout=DEADLINE)
    c.handshake()
    c.channel_open(1)
    x = uname("headers")
    raw_exchange_declare(c, 1, x, "headers", auto_delete=True)
    q, _, _ = c.queue_declare(1, "", exclusive=True)
    raw_queue_bind(c, 1, q, x, "ignored-routing-key", case["binding"])
    messages = ([(h, True) for h in case["match"]]
                + [(h, False) for h in case["no_match"]])
    for i, (headers, _) in enumerate(messages):
        if headers is None:  # no headers property at all
            c.basic_publish(1, x, "rk", b"%d" % i)
        else:
            c.basic_publish(1, x, "rk", b"%d" % i, flags=HEADERS_FLAG,
                            props=rawamqp.table(headers))
    # A marker through the default exchange: every routed message is ahead of it.
    c.basic_publish(1, "", q, b"end")
    c.basic_consume(1, q, no_ack=True)
    got = []
    while True:
        _, _, body = c.read_delivery()
        if body == b"end":
            break
        got.append(body)
    expected = [b"%d" % i for i, (_, routed) in enumerate(messages) if routed]
    assert got == expected, [messages[int(b)] for b in got]
    c.close()


def test_amq_match_is_a_headers_exchange(channel):
    q = exclusive_queue(channel)
    tag = unique("tag")
    channel.queue_bind(q, "amq.match", "", arguments={"x-match": "all",
                                                      "tag": tag})
    channel.basic_publish("amq.match", "", b"yes",
                          pika.BasicProperties(headers={"tag": tag}))
    channel.basic_publish("amq.match", "", b"no",
                          pika.BasicProperties(headers={"tag": "other"}))
    assert drain(channel, q) == [b"yes"]


def test_headers_unbind_needs_matching_arguments(channel, make_exchange):
    x = make_exchange("headers")
    q = exclusive_queue(channel)
    args = {"x-match": "any", "a": 1}
    channel.queue_bind(q, x, "", arguments=args)
    channel.queue_unbind(q, x, "", arguments={"x-match": "any", "a": 2})
    channel.basic_publish(x, "", b"1", pika.BasicProperties(headers={"a": 1}))
    assert drain(channel, q) == [b"1"]
    channel.queue_unbind(q, x, "", arguments=args)
    channel.basic_publish(x, "", b"2", pika.BasicProperties(headers={"a": 1}))
    assert drain(channel, q) == []


# -- exchange to exchange --------------------------------------------------

def test_exchange_to_exchange_binding_and_unbind(channel, make_exchange):
    src = make_exchange("direct", "src")
    dst = make_exchange("fanout", "dst")
    q = exclusive_queue(channel)
    channel.queue_bind(q, dst)
    channel.exchange_bind(destination=dst, source=src, routing_key="k")
    channel.basic_publish(src, "k", b"via src")
    channel.basic_publish(src, "other", b"not routed")
    channel.basic_publish(dst, "any", b"direct to dst")
    assert drain(channel, q) == [b"via src", b"direct to dst"]
    channel.exchange_unbind(destination=dst, source=src, routing_key="k")
    channel.basic_publish(src, "k", b"after unbind")
    assert drain(channel, q) == []


def test_exchange_binding_chain(channel, uname):
    x1 = uname("x1")
    x2 = uname("x2")
    x3 = uname("x3")
    channel.exchange_declare(x1, "topic", auto_delete=True)
    channel.exchange_declare(x2, "fanout", auto_delete=True)
    channel.exchange_declare(x3, "direct", auto_delete=True)
    q_end = exclusive_queue(channel)
    q_mid = exclusive_queue(channel)
    channel.exchange_bind(destination=x2, source=x1, routing_key="log.#")
    channel.exchange_bind(destination=x3, source=x2)
    channel.queue_bind(q_end, x3, "log.error")
    channel.queue_bind(q_mid, x2)
    # routing key is preserved along the chain
    for key in ["log.error", "log.info", "metrics.error"]:
        channel.basic_publish(x1, key, key.encode())
    assert drain(channel, q_end) == [b"log.error"]
    assert drain(channel, q_mid) == [b"log.error", b"log.info"]
    channel.basic_publish(x1, "log.error", b"again")
    settle(channel)
    assert amqp_helpers.wait_until(
        lambda: amqp_helpers.queue_depth(channel, q_end) == 1, timeout=DEADLINE)
    method, props, body = channel.basic_get(q_end, auto_ack=True)
    assert body == b"again"
    assert method.exchange == x1  # deliveries name the published-to exchange
    assert method.routing_key == "log.error"


def test_exchange_binding_cycle_delivers_once(channel, uname):
    x1 = uname("x1")
    x2 = uname("x2")
    channel.exchange_declare(x1, "fanout", auto_delete=True)
    channel.exchange_declare(x2, "fanout", auto_delete=True)
    channel.exchange_bind(destination=x2, source=x1)
    channel.exchange_bind(destination=x1, source=x2)
    q = exclusive_queue(channel)
    channel.queue_bind(q, x1)
    channel.queue_bind(q, x2)
    channel.basic_publish(x1, "", b"loop")
    assert drain(channel, q) == [b"loop"]  # a second copy would be before the marker


# -- alternate exchange ----------------------------------------------------

def test_alternate_exchange_catches_unroutable(channel, uname):
    ae = uname("ae")
    x = uname("main")
    channel.exchange_declare(ae, "fanout", auto_delete=True)
    channel.exchange_declare(x, "direct", auto_delete=True,
                             arguments={"alternate-exchange": ae})
    q_ae = exclusive_queue(channel)
    q_main = exclusive_queue(channel)
    channel.queue_bind(q_ae, ae)
    channel.queue_bind(q_main, x, "known")
    channel.basic_publish(x, "known", b"routed")
    channel.basic_publish(x, "unknown", b"unroutable")
    assert drain(channel, q_main) == [b"routed"]
    assert drain(channel, q_ae) == [b"unroutable"]
    channel.basic_publish(x, "unknown2", b"again")
    settle(channel)
    assert amqp_helpers.wait_until(
        lambda: amqp_helpers.queue_depth(channel, q_ae) == 1, timeout=DEADLINE)
    method, _, _ = channel.basic_get(q_ae, auto_ack=True)
    assert method.exchange == x
    assert method.routing_key == "unknown2"


def test_alternate_exchange_suppresses_mandatory_return(channel, uname):
    ae = uname("ae")
    x = uname("main")
    channel.exchange_declare(ae, "fanout", auto_delete=True)
    channel.exchange_declare(x, "direct", auto_delete=True,
                             arguments={"alternate-exchange": ae})
    q_ae = exclusive_queue(channel)
    channel.queue_bind(q_ae, ae)
    returned = []
    channel.add_on_return_callback(
        lambda ch, method, props, body: returned.append(body))
    channel.basic_publish(x, "nowhere", b"caught", mandatory=True)
    # Positive control: an unroutable mandatory message without an alternate
    # exchange, published after it, is returned. Returns come back in publish
    # order, so a return of b"caught" would arrive before this one.
    channel.basic_publish("", uname("no-such-queue"), b"control",
                          mandatory=True)
    assert drain(channel, q_ae) == [b"caught"]
    assert amqp_helpers.wait_until(lambda: returned, timeout=DEADLINE,
                                   connection=channel.connection)
    assert returned == [b"control"]


def test_missing_alternate_exchange_drops_or_returns(channel, uname):
    x = uname("main")
    channel.exchange_declare(x, "direct", auto_delete=True,
                             arguments={"alternate-exchange":
                                        uname("missing-ae")})
    q = exclusive_queue(channel)
    channel.queue_bind(q, x, "k")
    returned = []
    channel.add_on_return_callback(
        lambda ch, method, props, body: returned.append((method, body)))
    channel.basic_publish(x, "nowhere", b"ret", mandatory=True)
    channel.basic_publish(x, "nowhere", b"dropped")  # not mandatory: dropped
    channel.basic_publish(x, "k", b"routed")
    assert drain(channel, q) == [b"routed"]
    assert amqp_helpers.wait_until(lambda: returned, timeout=DEADLINE,
                                   connection=channel.connection)
    settle(channel)  # a return of b"dropped" would have arrived by now
    channel.connection.process_data_events(time_limit=0)
    assert [b for _, b in returned] == [b"ret"]
    assert returned[0][0].reply_code == 312
    assert returned[0][0].reply_text == "NO_ROUTE"
    assert channel.is_open


# -- internal / deleted / auto-delete ------------------------------------

def test_internal_exchange_routes_from_bound_exchange(connection, uname):
    ch = connection.channel()
    internal = uname("internal")
    front = uname("front")
    ch.exchange_declare(internal, "fanout", internal=True, auto_delete=True)
    ch.exchange_declare(front, "fanout", auto_delete=True)
    ch.exchange_bind(destination=internal, source=front)
    q = exclusive_queue(ch)
    ch.queue_bind(q, internal)
    ch.basic_publish(front, "", b"through internal")
    assert drain(ch, q) == [b"through internal"]
    exc = expect_channel_closed(ch, connection, ch.basic_publish, internal,
                                "", b"direct")
    assert exc.reply_code == 403
    assert exc.reply_text.startswith("ACCESS_REFUSED - ")
    assert "internal exchange" in exc.reply_text, exc.reply_text


def test_publish_after_exchange_delete_is_404(connection, uname):
    ch = connection.channel()
    x = uname("x")
    ch.exchange_declare(x, "fanout")
    q = exclusive_queue(ch)
    ch.queue_bind(q, x)
    ch.basic_publish(x, "", b"before")
    assert drain(ch, q) == [b"before"]
    ch.exchange_delete(x)
    exc = expect_channel_closed(ch, connection, ch.basic_publish, x, "",
                                b"after")
    check_not_found(exc, "exchange", x)
    # bindings went away with the exchange: a new one of the same name
    # routes nothing to the queue
    ch2 = connection.channel()
    ch2.exchange_declare(x, "fanout")
    try:
        q_new = exclusive_queue(ch2)
        ch2.queue_bind(q_new, x)
        ch2.basic_publish(x, "", b"new exchange")
        assert drain(ch2, q_new) == [b"new exchange"]  # positive control
        assert drain(ch2, q) == []
    finally:
        ch2.exchange_delete(x)


def exchange_exists(connection, name):
    """Passive declare on a fresh channel: True, or False on 404 (checked
    with RabbitMQ's text)."""
    ch = connection.channel()
    try:
        ch.exchange_declare(name, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        check_not_found(exc, "exchange", name)
        return False
    ch.close()
    return True


def test_auto_delete_exchange_deleted_when_last_binding_goes(connection,
                                                             uname,
                                                             make_exchange):
    ch = connection.channel()
    x = uname("autodel")
    ch.exchange_declare(x, "direct", auto_delete=True)
    # control: the same bindings on an exchange that is not auto-delete
    keep = make_exchange("direct")
    q1 = exclusive_queue(ch)
    q2 = exclusive_queue(ch)
    for name in (x, keep):
        ch.queue_bind(q1, name, "a")
        ch.queue_bind(q2, name, "b")
        ch.queue_unbind(q1, name, "a")
    assert exchange_exists(connection, x)  # one binding left: still there
    ch.basic_publish(x, "b", b"still routes")
    assert drain(ch, q2) == [b"still routes"]
    ch.queue_unbind(q2, keep, "b")
    ch.queue_unbind(q2, x, "b")
    assert not exchange_exists(connection, x)
    assert exchange_exists(connection, keep)


def test_auto_delete_exchange_deleted_when_bound_queue_deleted(connection,
                                                               uname):
    ch = connection.channel()
    x = uname("autodel")
    ch.exchange_declare(x, "fanout", auto_delete=True)
    q = exclusive_queue(ch)
    other = exclusive_queue(ch)
    ch.queue_bind(q, x)
    ch.queue_bind(other, x)
    ch.queue_delete(other)
    assert exchange_exists(connection, x)  # q's binding is left
    ch.queue_delete(q)
    assert not exchange_exists(connection, x)


def test_auto_delete_exchange_without_bindings_survives(connection, uname):
    """An auto-delete exchange that never had a binding stays, even when
    another auto-delete exchange loses its last binding (and goes)."""
    ch = connection.channel()
    x = uname("autodel")
    ch.exchange_declare(x, "fanout", auto_delete=True)
    other = uname("autodel-other")
    ch.exchange_declare(other, "fanout", auto_delete=True)
    q = exclusive_queue(ch)
    ch.queue_bind(q, other)
    ch.queue_unbind(q, other)
    assert not exchange_exists(connection, other)  # positive control
    assert exchange_exists(connection, x)
    ch.exchange_delete(x)


def test_auto_delete_source_exchange_deleted_when_e2e_binding_goes(
        connection, uname):
    ch = connection.channel()
    src = uname("src")
    dst = uname("dst")
    ch.exchange_declare(src, "fanout", auto_delete=True)
    ch.exchange_declare(dst, "fanout", auto_delete=False)
    try:
        q = exclusive_queue(ch)
        ch.queue_bind(q, src)
        ch.exchange_bind(destination=dst, source=src)
        ch.queue_unbind(q, src)
        # the exchange-to-exchange binding counts: still there
        assert exchange_exists(connection, src)
        ch.exchange_unbind(destination=dst, source=src)
        assert not exchange_exists(connection, src)
        # the destination (not auto-delete) stays
        assert exchange_exists(connection, dst)
    finally:
        connection.channel().exchange_delete(dst)
