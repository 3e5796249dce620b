"""Dead-lettering as RabbitMQ 3.10 does it (x-dead-letter-exchange, x-dead-letter-routing-key):
a message rejected without requeue (basic.reject, basic.nack), expired, or pushed out by a length
limit is republished to the queue's dead-letter exchange, with its routing key or the
x-dead-letter-routing-key (which also removes the CC header), without its expiration, and with an
x-death header: one entry per (queue, reason) with count, reason, queue, time, exchange,
routing-keys (the publish's and its CC keys) and original-expiration when the message had one.
The first death also writes x-first-death-reason/queue/exchange. A repeated death counts up in
its entry, which moves to the front. A dead letter is not routed to a queue it already died in
unless a rejection happened on the way (the cycle is broken by dropping it for that queue); a
missing dead-letter exchange drops the message.

The exact layout on the wire was checked against RabbitMQ 3.10.8 with the raw client (tests
below read the content header byte by byte): RabbitMQ sorts the headers table by key when it
sets x-death, writes a first x-death entry in the order count, reason, queue, time, exchange,
routing-keys, original-expiration and later entries with sorted keys, and its grouping of
existing entries (rabbit_dead_letter:group_by_queue_and_reason) reverses their order. Every other
header keeps its AMQP field type.
"""

import datetime
import time

import pika
import pytest

import amqp_helpers
import rawamqp
from amqp_helpers import queue_depth, settle, wait_until
from amqp_helpers import dead_letter_pair, declare
from rawamqp import Typed

DEADLINE = 30  # seconds to wait for something that must happen (bounds a hang only)
LONG_TTL = 60000  # ms: never reached during a test

PROPERTY_NAMES = ["content_type", "content_encoding", "headers", "delivery_mode", "priority",
                  "correlation_id", "reply_to", "expiration", "message_id", "timestamp", "type",
                  "user_id", "app_id", "cluster_id"]
FLAG_HEADERS = 1 << 13


# -- typed decoding of a content header (pika hides the field types) ----------------------------

def typed_value(r):
    kind = r.take(1).decode()
    fixed = {"b": ">b", "B": ">B", "s": ">h", "u": ">H", "I": ">i", "i": ">I", "l": ">q",
             "f": ">f", "d": ">d", "T": ">Q"}
    if kind in fixed:
        return kind, r.unpack(fixed[kind])[0]
    if kind == "t":
        return kind, r.octet() != 0
    if kind == "D":
        return kind, (r.octet(), r.unpack(">i")[0])
    if kind in ("S", "x"):
        return kind, r.longstr()
    if kind == "F":
        return kind, typed_table(r)
    if kind == "A":
        end = r.long() + r.pos
        items = []
        while r.pos < end:
            items.append(typed_value(r))
        return kind, items
    if kind == "V":
        return kind, None
    raise AssertionError("unknown field type %r" % kind)


def typed_table(r):
    """[(key, (type, value))] in wire order."""
    end = r.long() + r.pos
    out = []
    while r.pos < end:
        key = r.shortstr()
        out.append((key, typed_value(r)))
    return out


def typed_properties(header_payload):
    r = rawamqp.Reader(header_payload)
    r.short(), r.short(), r.longlong()
    flags = r.short()
    out = {}
    for i, name in enumerate(PROPERTY_NAMES):
        if not flags & (1 << (15 - i)):
            continue
        if name == "headers":
            out[name] = typed_table(r)
        elif name in ("delivery_mode", "priority"):
            out[name] = r.octet()
        elif name == "timestamp":
            out[name] = r.longlong()
        else:
            out[name] = r.shortstr()
    return out


def raw_take(raw_client, queue):
    """Consumes one message from `queue` with a raw client: (deliver args, typed properties)."""
    c = raw_client()
    c.handshake()
    c.channel_open(1)
    c.basic_consume(1, queue, no_ack=True)
    deliver, _, body = c.read_delivery(timeout=DEADLINE)
    deliver["body"] = body
    return deliver, typed_properties(deliver["header_payload"])


def entry_dict(typed_entry):
    kind, fields = typed_entry
    assert kind == "F"
    return dict(fields)


# -- helpers -------------------------------------------------------------------------------------

def get_one(ch, queue):
    assert wait_until(lambda: queue_depth(ch, queue) >= 1, timeout=DEADLINE)
    method, props, body = ch.basic_get(queue, auto_ack=True)
    assert method is not None
    return method, props, body


def reject_from(ch, queue):
    method, _, _ = get_one_unacked(ch, queue)
    ch.basic_reject(method.delivery_tag, requeue=False)
    settle(ch)


def get_one_unacked(ch, queue):
    assert wait_until(lambda: queue_depth(ch, queue) >= 1, timeout=DEADLINE)
    got = ch.basic_get(queue)
    assert got[0] is not None
    return got


def now_seconds():
    return int(time.time())


# -- reasons -------------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["reject", "nack", "nack-multiple"])
def test_rejected_without_requeue_is_dead_lettered(channel, uname, make_exchange, how):
    x = make_exchange("direct")
    src, dlq = dead_letter_pair(channel, uname, "dl-rej")
    channel.queue_bind(src, x, "rk.src")
    for body in (b"one", b"two"):
        channel.basic_publish(x, "rk.src", body, pika.BasicProperties(
            headers={"keep": "me"}, correlation_id="c-1"))
    settle(channel)
    assert wait_until(lambda: queue_depth(channel, src) == 2, timeout=DEADLINE)
    first = channel.basic_get(src)[0]
    second = channel.basic_get(src)[0]
    before = now_seconds()
    if how == "reject":
        channel.basic_reject(first.delivery_tag, requeue=False)
        channel.basic_reject(second.delivery_tag, requeue=True)  # control: back in src
    elif how == "nack":
        channel.basic_nack(first.delivery_tag, requeue=False)
        channel.basic_nack(second.delivery_tag, requeue=True)
    else:
        channel.basic_nack(second.delivery_tag, multiple=True, requeue=False)
    settle(channel)
    expected = [b"one", b"two"] if how == "nack-multiple" else [b"one"]
    assert wait_until(lambda: queue_depth(channel, dlq) == len(expected), timeout=DEADLINE)
    after = now_seconds()
    got = amqp_helpers.get_all(channel, dlq)
    assert amqp_helpers.bodies(got) == expected
    for method, props, _ in got:
        # Republished through the default exchange (the DLX "") with the dead-letter routing key.
        assert method.exchange == "" and method.routing_key == dlq
        assert props.correlation_id == "c-1"
        assert props.headers["keep"] == "me"
        assert props.headers["x-first-death-reason"] == "rejected"
        assert props.headers["x-first-death-queue"] == src
        assert props.headers["x-first-death-exchange"] == x
        (death,) = props.headers["x-death"]
        assert death["count"] == 1
        assert death["reason"] == "rejected"
        assert death["queue"] == src
        assert death["exchange"] == x
        assert death["routing-keys"] == ["rk.src"]
        assert "original-expiration" not in death
        stamp = death["time"].replace(tzinfo=datetime.timezone.utc).timestamp()
        assert before <= stamp <= after
    if how != "nack-multiple":
        method, _, body = channel.basic_get(src, auto_ack=True)
        assert body == b"two" and method.redelivered
    assert queue_depth(channel, src) == 0
    channel.queue_delete(src)
    channel.queue_delete(dlq)


@pytest.mark.parametrize("with_dlrk", [True, False])
def test_dead_letter_routing_key_and_cc(channel, uname, make_exchange, with_dlrk):
    src_x = make_exchange("direct")
    dlx = make_exchange("direct")
    dlq = declare(channel, uname, "dl-cc-dlq")
    arguments = {"x-dead-letter-exchange": dlx}
    if with_dlrk:
        arguments["x-dead-letter-routing-key"] = "dead"
        channel.queue_bind(dlq, dlx, "dead")
    else:
        channel.queue_bind(dlq, dlx, "orig")
    src = declare(channel, uname, "dl-cc", **arguments)
    channel.queue_bind(src, src_x, "orig")
    channel.basic_publish(src_x, "orig", b"m", pika.BasicProperties(
        headers={"CC": ["cc.one", "cc.two"]}))
    reject_from(channel, src)
    method, props, _ = get_one(channel, dlq)
    assert method.exchange == dlx
    (death,) = props.headers["x-death"]
    # The routing keys of the death are the publish's and its CC keys either way.
    assert death["routing-keys"] == ["orig", "cc.one", "cc.two"]
    assert death["exchange"] == src_x
    if with_dlrk:
        assert method.routing_key == "dead"
        assert "CC" not in props.headers
    else:
        assert method.routing_key == "orig"
        assert props.headers["CC"] == ["cc.one", "cc.two"]
    channel.queue_delete(src)
    channel.queue_delete(dlq)


def test_expired_dead_letter_keeps_properties_but_not_the_expiration(channel, uname):
    src, dlq = dead_letter_pair(channel, uname, "dl-props")
    props = pika.BasicProperties(
        content_type="text/plain", content_encoding="utf-8", headers={"h": 1},
        delivery_mode=2, priority=3, correlation_id="corr", reply_to="reply.to",
        expiration="50", message_id="mid", timestamp=1700000000, type="t", app_id="app")
    channel.basic_publish("", src, b"body", props)
    _, got, body = get_one(channel, dlq)
    assert body == b"body"
    assert got.expiration is None
    for name in ("content_type", "content_encoding", "delivery_mode", "priority",
                 "correlation_id", "reply_to", "message_id", "timestamp", "type", "app_id"):
        assert getattr(got, name) == getattr(props, name), name
    assert got.headers["h"] == 1
    (death,) = got.headers["x-death"]
    assert death["reason"] == "expired"
    assert death["original-expiration"] == "50"
    assert got.headers["x-first-death-reason"] == "expired"
    channel.queue_delete(src)
    channel.queue_delete(dlq)


# -- the header on the wire -----------------------------------------------------------------------

def test_x_death_wire_layout_and_other_header_types(channel, raw_client, uname):
    src, dlq = dead_letter_pair(channel, uname, "dl-wire")
    headers = [("zeta", Typed("b", -3)), ("alpha", Typed("s", 7)), ("CC", ["c1", "c2"]),
               ("mid", Typed("l", 5)), ("ts", Typed("T", 1700000000)),
               ("dec", Typed("D", (2, 314))), ("f", Typed("f", 1.5)),
               ("bin", Typed("x", b"\x00\x01")), ("v", Typed("V", None)),
               ("B", Typed("B", 200)), ("u", Typed("u", 65000)), ("i", Typed("i", 4000000000)),
               ("tbl", Typed("F", {"k": 1})), ("t", True), ("arr", Typed("A", [Typed("s", 2)]))]
    c = raw_client()
    c.handshake()
    c.channel_open(1)
    flags = FLAG_HEADERS | (1 << 12) | (1 << 8)  # headers, delivery-mode, expiration
    c.basic_publish(1, "", src, b"body", flags=flags,
                    props=rawamqp.table(headers) + bytes([2]) + rawamqp.shortstr("60000"))
    c.queue_declare(1, src, passive=True)  # a round trip: the publish is in
    reject_from(channel, src)
    deliver, props = raw_take(raw_client, dlq)
    assert deliver["body"] == b"body"
    assert "expiration" not in props
    assert props["delivery_mode"] == 2
    got = props["headers"]
    # Sorted by key (bytewise); CC gone with the dead-letter routing key; types kept.
    assert [k for k, _ in got] == [
        "B", "alpha", "arr", "bin", "dec", "f", "i", "mid", "t", "tbl", "ts", "u", "v",
        "x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
        "zeta"]
    h = dict(got)
    assert h["zeta"] == ("b", -3)
    assert h["alpha"] == ("s", 7)
    assert h["mid"] == ("l", 5)
    assert h["ts"] == ("T", 1700000000)
    assert h["dec"] == ("D", (2, 314))
    assert h["f"] == ("f", 1.5)
    assert h["bin"] == ("x", b"\x00\x01")
    assert h["v"] == ("V", None)
    assert h["B"] == ("B", 200)
    assert h["u"] == ("u", 65000)
    assert h["i"] == ("i", 4000000000)
    assert h["tbl"] == ("F", [("k", ("I", 1))])
    assert h["t"] == ("t", True)
    assert h["arr"] == ("A", [("s", 2)])
    assert h["x-first-death-reason"] == ("S", b"rejected")
    assert h["x-first-death-queue"] == ("S", src.encode())
    assert h["x-first-death-exchange"] == ("S", b"")
    kind, deaths = h["x-death"]
    assert kind == "A" and len(deaths) == 1
    entry = deaths[0][1]
    assert [k for k, _ in entry] == ["count", "reason", "queue", "time", "exchange",
                                     "routing-keys", "original-expiration"]
    e = dict(entry)
    assert e["count"] == ("l", 1)
    assert e["reason"] == ("S", b"rejected")
    assert e["queue"] == ("S", src.encode())
    assert e["time"][0] == "T"
    assert e["exchange"] == ("S", b"")
    assert e["routing-keys"] == ("A", [("S", src.encode()), ("S", b"c1"), ("S", b"c2")])
    assert e["original-expiration"] == ("S", b"60000")
    channel.queue_delete(src)
    channel.queue_delete(dlq)


def test_repeated_deaths_count_per_queue_and_reason(channel, raw_client, uname):
    """A message bounced between two queues by rejections: each (queue, reason) has one entry
    whose count grows; the entry of the latest death is first, with its keys sorted."""
    a, b = uname("dl-ping"), uname("dl-pong")
    channel.queue_declare(a, arguments={"x-dead-letter-exchange": "",
                                        "x-dead-letter-routing-key": b})
    channel.queue_declare(b, arguments={"x-dead-letter-exchange": "",
                                        "x-dead-letter-routing-key": a})
    channel.basic_publish("", a, b"ball", pika.BasicProperties(headers={"h": 1}))
    for q in (a, b, a):
        reject_from(channel, q)
    method, props, _ = get_one_unacked(channel, b)
    deaths = props.headers["x-death"]
    assert [(d["queue"], d["count"]) for d in deaths] == [(a, 2), (b, 1)]
    assert props.headers["x-first-death-queue"] == a
    channel.basic_reject(method.delivery_tag, requeue=False)
    settle(channel)
    deliver, typed = raw_take(raw_client, a)
    assert deliver["body"] == b"ball"
    h = dict(typed["headers"])
    entries = [entry_dict(e) for e in h["x-death"][1]]
    assert [(e["queue"][1], e["count"]) for e in entries] == [
        (b.encode(), ("l", 2)), (a.encode(), ("l", 2))]
    for e in entries:
        assert e["reason"] == ("S", b"rejected")
    keys = [k for k, _ in h["x-death"][1][0][1]]
    assert keys == ["count", "exchange", "queue", "reason", "routing-keys", "time"]
    assert h["x-first-death-queue"] == ("S", a.encode())
    assert h["h"] == ("I", 1)
    channel.queue_delete(a)
    channel.queue_delete(b)


def test_x_death_order_along_a_chain_is_rabbitmqs(channel, raw_client, uname):
    """c0 -> c1 -> c2 -> c3 -> c4 by rejections. RabbitMQ 3.10 regroups the existing entries at
    each death, which reverses them, so the header reads c3, c1, c0, c2 (and only the very first
    entry, c0's, keeps its unsorted key order)."""
    qs = [uname("dl-chain%d" % i) for i in range(5)]
    for i in range(4):
        channel.queue_declare(qs[i], arguments={"x-dead-letter-exchange": "",
                                                "x-dead-letter-routing-key": qs[i + 1]})
    channel.queue_declare(qs[4])
    channel.basic_publish("", qs[0], b"chain")
    for q in qs[:4]:
        reject_from(channel, q)
    _, typed = raw_take(raw_client, qs[4])
    h = dict(typed["headers"])
    deaths = h["x-death"][1]
    assert [entry_dict(e)["queue"][1].decode() for e in deaths] == [qs[3], qs[1], qs[0], qs[2]]
    sorted_keys = ["count", "exchange", "queue", "reason", "routing-keys", "time"]
    first_keys = ["count", "reason", "queue", "time", "exchange", "routing-keys"]
    assert [[k for k, _ in e[1]] for e in deaths] == [sorted_keys, sorted_keys, first_keys,
                                                      sorted_keys]
    assert h["x-first-death-queue"] == ("S", qs[0].encode())
    for q in qs:
        channel.queue_delete(q)


@pytest.mark.parametrize("case", ["wrong-type", "empty-array", "client-duplicates"])
def test_x_death_written_by_a_client(channel, raw_client, uname, case):
    src, dlq = dead_letter_pair(channel, uname, "dl-client")
    if case == "wrong-type":
        headers = [("x-death", "garbage")]
    elif case == "empty-array":
        headers = [("x-death", Typed("A", []))]
    else:
        headers = [("x-first-death-queue", "client"), ("x-death", Typed("A", [
            Typed("F", [("queue", "qa"), ("reason", "expired")]),
            Typed("F", [("queue", "qb"), ("reason", "expired"), ("count", Typed("I", 5))]),
            Typed("F", [("queue", "qa"), ("reason", "expired"), ("time", Typed("T", 5))])]))]
    c = raw_client()
    c.handshake()
    c.channel_open(1)
    c.basic_publish(1, "", src, b"m", flags=FLAG_HEADERS, props=rawamqp.table(headers))
    c.queue_declare(1, src, passive=True)
    reject_from(channel, src)
    _, typed = raw_take(raw_client, dlq)
    h = typed["headers"]
    mine = [("count", ("l", 1)), ("reason", ("S", b"rejected")), ("queue", ("S", src.encode())),
            ("exchange", ("S", b"")), ("routing-keys", ("A", [("S", src.encode())]))]
    if case == "wrong-type":
        # Reset to a fresh x-death, in first-entry order, without x-first-death-* headers.
        assert [k for k, _ in h] == ["x-death"]
        (entry,) = dict(h)["x-death"][1]
        assert [k for k, _ in entry[1]] == ["count", "reason", "queue", "time", "exchange",
                                            "routing-keys"]
        assert [f for f in entry[1] if f[0] != "time"] == mine
    elif case == "empty-array":
        # An existing (empty) x-death: a new sorted entry, no x-first-death-* headers.
        assert [k for k, _ in h] == ["x-death"]
        (entry,) = dict(h)["x-death"][1]
        assert [f for f in entry[1] if f[0] != "time"] == sorted(mine)
    else:
        # Duplicates grouped (the first of each, counted when it had no count), order reversed,
        # the client's x-first-death-queue left alone.
        assert [k for k, _ in h] == ["x-death", "x-first-death-queue"]
        assert dict(h)["x-first-death-queue"] == ("S", b"client")
        entries = dict(h)["x-death"][1]
        assert len(entries) == 3
        assert [f for f in entries[0][1] if f[0] != "time"] == sorted(mine)
        assert entries[1] == ("F", [("queue", ("S", b"qb")), ("reason", ("S", b"expired")),
                                    ("count", ("I", 5))])
        assert entries[2] == ("F", [("count", ("l", 2)), ("queue", ("S", b"qa")),
                                    ("reason", ("S", b"expired"))])
    channel.queue_delete(src)
    channel.queue_delete(dlq)


# -- cycles and a missing exchange ---------------------------------------------------------------

def test_expiry_cycle_through_the_same_queue_is_broken(channel, uname, make_exchange):
    """q dead-letters through a fanout exchange bound to q itself and to a tap queue. The message
    expires (per-message TTL 50 ms; the dead letter loses it, and q's own TTL is 60 s): the tap
    gets it, q must not (it would sit there 60 s). A rejection is no automatic cycle: the same
    route then puts it back into q (the control)."""
    x = make_exchange("fanout")
    q = declare(channel, uname, "dl-cycle", **{"x-dead-letter-exchange": x,
                                              "x-message-ttl": LONG_TTL})
    tap = declare(channel, uname, "dl-cycle-tap")
    channel.queue_bind(q, x, "")
    channel.queue_bind(tap, x, "")
    channel.basic_publish("", q, b"expiring", pika.BasicProperties(expiration="50"))
    # One publish routes to both queues: once the tap has it, q would have it too.
    assert wait_until(lambda: queue_depth(channel, tap) == 1, timeout=DEADLINE)
    assert queue_depth(channel, q) == 0
    _, props, _ = channel.basic_get(tap, auto_ack=True)
    assert [d["reason"] for d in props.headers["x-death"]] == ["expired"]
    # Control: rejected, the same dead letter goes back into q.
    channel.basic_publish("", q, b"rejected")
    reject_from(channel, q)
    assert wait_until(lambda: queue_depth(channel, tap) == 1, timeout=DEADLINE)
    assert queue_depth(channel, q) == 1
    channel.queue_delete(q)
    channel.queue_delete(tap)


def test_expiry_cycle_through_two_queues_is_broken(channel, uname, make_exchange):
    """a -> b -> a, both by expiry: the second dead letter is not routed back into a (a's TTL is
    60 s, so it would stay there), only to the tap."""
    xa, xb = make_exchange("fanout"), make_exchange("fanout")
    a = declare(channel, uname, "dl-cyc-a", **{"x-dead-letter-exchange": xa,
                                              "x-message-ttl": LONG_TTL})
    b = declare(channel, uname, "dl-cyc-b", **{"x-dead-letter-exchange": xb,
                                              "x-message-ttl": 50})
    tap_a = declare(channel, uname, "dl-cyc-tap-a")
    tap_b = declare(channel, uname, "dl-cyc-tap-b")
    channel.queue_bind(b, xa, "")
    channel.queue_bind(tap_a, xa, "")
    channel.queue_bind(a, xb, "")
    channel.queue_bind(tap_b, xb, "")
    channel.basic_publish("", a, b"m", pika.BasicProperties(expiration="50"))
    assert wait_until(lambda: queue_depth(channel, tap_b) == 1, timeout=DEADLINE)
    assert queue_depth(channel, a) == 0
    assert queue_depth(channel, b) == 0
    _, props, _ = channel.basic_get(tap_b, auto_ack=True)
    assert [(d["queue"], d["reason"]) for d in props.headers["x-death"]] == [
        (b, "expired"), (a, "expired")]
    assert queue_depth(channel, tap_a) == 1  # the first hop was routed normally
    for name in (a, b, tap_a, tap_b):
        channel.queue_delete(name)


def test_missing_dead_letter_exchange_drops_the_message(channel, uname):
    x = uname("dl-missing-x")
    q = declare(channel, uname, "dl-missing", **{"x-dead-letter-exchange": x})
    channel.basic_publish("", q, b"dropped")
    reject_from(channel, q)
    assert queue_depth(channel, q) == 0
    # Control: once the exchange exists, the same rejection is dead-lettered.
    channel.exchange_declare(x, "fanout")
    tap = declare(channel, uname, "dl-missing-tap")
    channel.queue_bind(tap, x, "")
    channel.basic_publish("", q, b"kept")
    reject_from(channel, q)
    _, _, body = get_one(channel, tap)
    assert body == b"kept"
    assert queue_depth(channel, tap) == 0
    channel.queue_delete(q)
    channel.queue_delete(tap)
    channel.exchange_delete(x)
