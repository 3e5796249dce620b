"""Exchange types, built-in exchanges, exchange-to-exchange bindings,
alternate exchanges, internal and auto-delete exchanges."""

import time

import pika
import pytest

import amqp_helpers
from amqp_helpers import bodies, expect_channel_closed, get_all, unique


def settle(channel):
    """A synchronous round trip so earlier publishes have been routed."""
    channel.basic_qos(prefetch_count=0)


def drain(channel, queue, expect=None, timeout=2.0):
    """All messages currently in queue; when `expect` is given, wait up to
    `timeout` for that many to arrive first."""
    settle(channel)
    if expect:
        amqp_helpers.wait_until(
            lambda: amqp_helpers.queue_depth(channel, queue) >= expect,
            timeout=timeout)
    return bodies(get_all(channel, queue))


def exclusive_queue(channel):
    return channel.queue_declare("", exclusive=True).method.queue


# -- built-in exchanges ----------------------------------------------------

@pytest.mark.parametrize("name,kind", [
    ("amq.direct", "direct"),
    ("amq.fanout", "fanout"),
    ("amq.topic", "topic"),
    ("amq.headers", "headers"),
    ("amq.match", "headers"),
])
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
    assert exc.reply_code == 406


def test_default_exchange_routes_by_queue_name(channel, uname):
    q1 = uname("q1")
    q2 = uname("q2")
    channel.queue_declare(q1, exclusive=True)
    channel.queue_declare(q2, exclusive=True)
    channel.basic_publish("", q1, b"to q1")
    channel.basic_publish("", q2, b"to q2")
    channel.basic_publish("", uname("nobody"), b"dropped silently")
    assert drain(channel, q1, 1) == [b"to q1"]
    assert drain(channel, q2, 1) == [b"to q2"]
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
    assert drain(channel, q, 1) == [b"hit"]


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
    assert drain(channel, qa, 1) == [b"black"]
    assert drain(channel, qb, 2) == [b"black", b"green"]


def test_fanout_ignores_routing_key(channel, uname):
    x = uname("fanout")
    channel.exchange_declare(x, "fanout", auto_delete=True)
    queues = [exclusive_queue(channel) for _ in range(3)]
    for i, q in enumerate(queues):
        channel.queue_bind(q, x, "binding-key-%d" % i)
    channel.basic_publish(x, "whatever", b"m1")
    channel.basic_publish(x, "", b"m2")
    for q in queues:
        assert drain(channel, q, 2) == [b"m1", b"m2"]


def test_queue_bound_twice_gets_one_copy(channel, uname):
    x = uname("topic")
    channel.exchange_declare(x, "topic", auto_delete=True)
    q = exclusive_queue(channel)
    channel.queue_bind(q, x, "a.*")
    channel.queue_bind(q, x, "#")
    channel.queue_bind(q, x, "a.b")
    channel.basic_publish(x, "a.b", b"once")
    assert drain(channel, q, 1) == [b"once"]
    time.sleep(0.05)
    assert drain(channel, q) == []


def test_binding_twice_is_idempotent(channel, make_exchange):
    x = make_exchange("direct")
    q = exclusive_queue(channel)
    channel.queue_bind(q, x, "k")
    channel.queue_bind(q, x, "k")
    channel.basic_publish(x, "k", b"1")
    assert drain(channel, q, 1) == [b"1"]
    # a single unbind removes the (single) binding
    channel.queue_unbind(q, x, "k")
    channel.basic_publish(x, "k", b"2")
    assert drain(channel, q) == []


# -- topic ------------------------------------------------------------------

TOPIC_KEYS = ["", "a", "b", "a.b", "a.x.b", "a.x.y.b", "a.b.c", ".", "..",
              "a.", ".a", "a..b", "x.a.y", "a.a", "b.a.b"]

# pattern -> routing keys (from TOPIC_KEYS) it matches, as observed on
# RabbitMQ 3.10: an empty routing key has zero words, "." has two empty
# words, "*" needs exactly one (possibly empty) word, "#" zero or more.
TOPIC_TABLE = {
    "#": TOPIC_KEYS,
    "*": ["a", "b"],
    "a.#.b": ["a.b", "a.x.b", "a.x.y.b", "a..b"],
    "a.*.b": ["a.x.b", "a..b"],
    "#.b": ["b", "a.b", "a.x.b", "a.x.y.b", "a..b", "b.a.b"],
    "a.#": ["a", "a.b", "a.x.b", "a.x.y.b", "a.b.c", "a.", "a..b", "a.a"],
    "*.*": ["a.b", ".", "a.", ".a", "a.a"],
    "a.*": ["a.b", "a.", "a.a"],
    "": [""],
    "a": ["a"],
    "#.#": TOPIC_KEYS,
    "*.#": [k for k in TOPIC_KEYS if k != ""],
    "#.*": [k for k in TOPIC_KEYS if k != ""],
    "a.#.#.b": ["a.b", "a.x.b", "a.x.y.b", "a..b"],
    "a..b": ["a..b"],
    ".": ["."],
    "*.": [".", "a."],
    "#.a.#": ["a", "a.b", "a.x.b", "a.x.y.b", "a.b.c", "a.", ".a", "a..b",
              "x.a.y", "a.a", "b.a.b"],
}


def test_topic_pattern_table(channel, uname):
    x = uname("topic")
    channel.exchange_declare(x, "topic", auto_delete=True)
    queues = {}
    for pattern in TOPIC_TABLE:
        queues[pattern] = exclusive_queue(channel)
        channel.queue_bind(queues[pattern], x, pattern)
    for key in TOPIC_KEYS:
        channel.basic_publish(x, key, b"key:" + key.encode())
    settle(channel)
    mismatches = {}
    for pattern, expected in TOPIC_TABLE.items():
        got = [b[4:].decode() for b in drain(channel, queues[pattern],
                                             len(expected))]
        if got != list(expected):
            mismatches[pattern] = {"expected": expected, "got": got}
    assert mismatches == {}


def test_topic_words_are_case_sensitive_and_exact(channel, uname):
    x = uname("topic")
    channel.exchange_declare(x, "topic", auto_delete=True)
    q = exclusive_queue(channel)
    channel.queue_bind(q, x, "stock.usd.*")
    for key in ["stock.usd.nyse", "stock.USD.nyse", "stock.usd",
                "stock.usd.nyse.x", "stock.usdx.nyse", "xstock.usd.nyse"]:
        channel.basic_publish(x, key, key.encode())
    assert drain(channel, q, 1) == [b"stock.usd.nyse"]


# -- headers ----------------------------------------------------------------

HEADERS_CASES = [
    # (binding arguments, [(message headers, routed?)])
    ({"x-match": "all", "a": 1, "b": 2}, [
        ({"a": 1, "b": 2}, True), ({"a": 1}, False),
        ({"a": 1, "b": 2, "c": 3}, True), ({"a": 1, "b": 3}, False),
        (None, False), ({}, False)]),
    ({"x-match": "any", "a": 1, "b": 2}, [
        ({"a": 1}, True), ({"b": 2, "c": 9}, True), ({"c": 1}, False),
        ({"a": 2}, False), (None, False)]),
    # no x-match means all
    ({"a": 1, "b": 2}, [({"a": 1, "b": 2}, True), ({"a": 1}, False)]),
    # all/any ignore binding keys starting with "x-"
    ({"x-match": "all", "x-foo": "bar", "a": 1}, [
        ({"a": 1}, True), ({"a": 1, "x-foo": "bar"}, True),
        ({"a": 1, "x-foo": "baz"}, True)]),
    ({"x-match": "any", "x-foo": "bar", "a": 1}, [
        ({"x-foo": "bar"}, False), ({"a": 1}, True),
        ({"a": 2, "x-foo": "bar"}, False)]),
    ({"x-match": "any", "x-foo": "bar"}, [
        ({"x-foo": "bar"}, False), ({"a": 1}, False), ({}, False)]),
    ({"x-match": "all", "x-foo": "bar"}, [
        ({"x-foo": "baz"}, True), ({"a": 1}, True), (None, True)]),
    # all-with-x / any-with-x also compare the x- keys (but not x-match)
    ({"x-match": "all-with-x", "x-foo": "bar", "a": 1}, [
        ({"a": 1}, False), ({"a": 1, "x-foo": "bar"}, True),
        ({"a": 1, "x-foo": "baz"}, False)]),
    ({"x-match": "any-with-x", "x-foo": "bar", "a": 1}, [
        ({"x-foo": "bar"}, True), ({"a": 1}, True),
        ({"a": 2, "x-foo": "bar"}, True), ({"a": 2}, False)]),
    ({"x-match": "any-with-x", "x-foo": "bar"}, [
        ({"x-foo": "bar"}, True), ({"a": 1}, False)]),
    # no keys at all: all matches everything, any matches nothing
    ({"x-match": "all"}, [({"x-foo": "bar"}, True), ({"a": 1}, True),
                          (None, True)]),
    ({"x-match": "any"}, [({"x-foo": "bar"}, False), ({"a": 1}, False),
                          (None, False)]),
    # a void binding value matches any value of that header
    ({"x-match": "all", "a": None}, [
        ({"a": "anything"}, True), ({"a": None}, True), ({"b": 1}, False),
        ({"a": 5}, True)]),
    # values compare with their types: 1 is not "1" nor true
    ({"x-match": "all", "a": 1}, [({"a": "1"}, False), ({"a": 1}, True),
                                  ({"a": True}, False)]),
]


@pytest.mark.parametrize("binding,messages", HEADERS_CASES,
                         ids=[str(i) for i in range(len(HEADERS_CASES))])
def test_headers_exchange_matching(channel, uname, binding, messages):
    x = uname("headers")
    channel.exchange_declare(x, "headers", auto_delete=True)
    q = exclusive_queue(channel)
    channel.queue_bind(q, x, "ignored-routing-key", arguments=binding)
    for i, (headers, _) in enumerate(messages):
        channel.basic_publish(x, "rk", str(i).encode(),
                              pika.BasicProperties(headers=headers))
    expected = [str(i).encode() for i, (_, routed) in enumerate(messages)
                if routed]
    got = drain(channel, q, len(expected))
    assert got == expected, [(messages[int(b)][0]) for b in got]


def test_amq_match_is_a_headers_exchange(channel):
    q = exclusive_queue(channel)
    tag = unique("tag")
    channel.queue_bind(q, "amq.match", "", arguments={"x-match": "all",
                                                      "tag": tag})
    channel.basic_publish("amq.match", "", b"yes",
                          pika.BasicProperties(headers={"tag": tag}))
    channel.basic_publish("amq.match", "", b"no",
                          pika.BasicProperties(headers={"tag": "other"}))
    assert drain(channel, q, 1) == [b"yes"]


def test_headers_unbind_needs_matching_arguments(channel, make_exchange):
    x = make_exchange("headers")
    q = exclusive_queue(channel)
    args = {"x-match": "any", "a": 1}
    channel.queue_bind(q, x, "", arguments=args)
    channel.queue_unbind(q, x, "", arguments={"x-match": "any", "a": 2})
    channel.basic_publish(x, "", b"1", pika.BasicProperties(headers={"a": 1}))
    assert drain(channel, q, 1) == [b"1"]
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
    assert drain(channel, q, 2) == [b"via src", b"direct to dst"]
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
    assert drain(channel, q_end, 1) == [b"log.error"]
    assert drain(channel, q_mid, 2) == [b"log.error", b"log.info"]
    channel.basic_publish(x1, "log.error", b"again")
    settle(channel)
    amqp_helpers.wait_until(
        lambda: amqp_helpers.queue_depth(channel, q_end) == 1)
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
    assert drain(channel, q, 1) == [b"loop"]
    time.sleep(0.05)
    assert drain(channel, q) == []


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
    assert drain(channel, q_main, 1) == [b"routed"]
    assert drain(channel, q_ae, 1) == [b"unroutable"]
    channel.basic_publish(x, "unknown2", b"again")
    settle(channel)
    amqp_helpers.wait_until(
        lambda: amqp_helpers.queue_depth(channel, q_ae) == 1)
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
    channel.add_on_return_callback(lambda *a: returned.append(a))
    channel.basic_publish(x, "nowhere", b"caught", mandatory=True)
    assert drain(channel, q_ae, 1) == [b"caught"]
    channel.connection.process_data_events(time_limit=0.1)
    assert returned == []


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
    amqp_helpers.wait_until(lambda: returned, connection=channel.connection)
    assert [b for _, b in returned] == [b"ret"]
    assert returned[0][0].reply_code == 312
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
    assert drain(ch, q, 1) == [b"through internal"]
    exc = expect_channel_closed(ch, connection, ch.basic_publish, internal,
                                "", b"direct")
    assert exc.reply_code == 403
    assert exc.reply_text.startswith("ACCESS_REFUSED - ")


def test_publish_after_exchange_delete_is_404(connection, uname):
    ch = connection.channel()
    x = uname("x")
    ch.exchange_declare(x, "fanout")
    q = exclusive_queue(ch)
    ch.queue_bind(q, x)
    ch.basic_publish(x, "", b"before")
    assert drain(ch, q, 1) == [b"before"]
    ch.exchange_delete(x)
    exc = expect_channel_closed(ch, connection, ch.basic_publish, x, "",
                                b"after")
    assert exc.reply_code == 404
    assert exc.reply_text.startswith("NOT_FOUND - ")
    # bindings went away with the exchange: a new one of the same name
    # routes nothing to the queue
    ch2 = connection.channel()
    ch2.exchange_declare(x, "fanout")
    try:
        ch2.basic_publish(x, "", b"new exchange")
        assert drain(ch2, q) == []
    finally:
        ch2.exchange_delete(x)


def test_auto_delete_exchange_deleted_when_last_binding_goes(connection,
                                                             uname):
    ch = connection.channel()
    x = uname("autodel")
    ch.exchange_declare(x, "direct", auto_delete=True)
    q1 = exclusive_queue(ch)
    q2 = exclusive_queue(ch)
    ch.queue_bind(q1, x, "a")
    ch.queue_bind(q2, x, "b")
    ch.queue_unbind(q1, x, "a")
    ch.exchange_declare(x, passive=True)  # one binding left: still there
    ch.queue_unbind(q2, x, "b")
    exc = expect_channel_closed(ch, connection, ch.exchange_declare, x,
                                passive=True)
    assert exc.reply_code == 404


def test_auto_delete_exchange_deleted_when_bound_queue_deleted(connection,
                                                               uname):
    ch = connection.channel()
    x = uname("autodel")
    ch.exchange_declare(x, "fanout", auto_delete=True)
    q = exclusive_queue(ch)
    ch.queue_bind(q, x)
    ch.queue_delete(q)
    exc = expect_channel_closed(ch, connection, ch.exchange_declare, x,
                                passive=True)
    assert exc.reply_code == 404


def test_auto_delete_exchange_without_bindings_survives(channel, uname):
    x = uname("autodel")
    channel.exchange_declare(x, "fanout", auto_delete=True)
    time.sleep(0.1)
    channel.exchange_declare(x, passive=True)
    channel.exchange_delete(x)


def test_auto_delete_source_exchange_deleted_when_e2e_binding_goes(
        connection, uname):
    ch = connection.channel()
    src = uname("src")
    dst = uname("dst")
    ch.exchange_declare(src, "fanout", auto_delete=True)
    ch.exchange_declare(dst, "fanout", auto_delete=False)
    try:
        ch.exchange_bind(destination=dst, source=src)
        ch.exchange_unbind(destination=dst, source=src)
        exc = expect_channel_closed(ch, connection, ch.exchange_declare, src,
                                    passive=True)
        assert exc.reply_code == 404
    finally:
        connection.channel().exchange_delete(dst)
