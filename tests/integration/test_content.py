"""Message content: the 14 basic properties, field table types, and bodies
of every size arriving byte-exact."""

import datetime
import decimal
import hashlib
import struct

import pika
import pytest

import amqp_helpers
import rawamqp
from rawamqp import Typed, shortstr, table

# Everything pika 1.2 can both encode and decode faithfully (pika decodes
# negative 64-bit ints wrongly, and cannot encode floats or the short int
# types; those are covered byte-exact by the raw test below).
PIKA_HEADERS = {
    "str": "a string",
    "unicode": "\u65e5\u672c\u8a9e h\u00e9llo",
    "empty_str": "",
    "bytes": b"\x00raw\xffbytes",
    "true": True,
    "false": False,
    "zero": 0,
    "minus_one": -1,
    "int32_max": 2 ** 31 - 1,
    "int32_min": -(2 ** 31),
    "int64_big": 2 ** 40,
    "int64_max": 2 ** 63 - 1,
    "decimal": decimal.Decimal("3.14"),
    "decimal_int": decimal.Decimal("42"),
    "timestamp": datetime.datetime(2020, 1, 2, 3, 4, 5),
    "void": None,
    "nested": {"a": {"b": [1, "x", {"c": True}], "d": {}}},
    "array": [1, 2 ** 40, "s", b"b", None, [], {}, [1, [2, [3]]]],
    "empty_table": {},
    "empty_array": [],
}

DEADLINE = 30  # seconds to wait for something that must happen (bounds a hang only)

ALL_PROPERTIES = dict(
    content_type="application/json",
    content_encoding="gzip",
    headers=PIKA_HEADERS,
    delivery_mode=2,
    priority=7,
    correlation_id="corr-\u00e9-1",
    reply_to="reply.queue",
    expiration="86400000",  # one day: must not expire during the test
    message_id="msg-1",
    timestamp=1700000000,
    type="order.created",
    user_id="guest",  # must equal the authenticated user
    app_id="warren-tests",
    cluster_id="cluster-1",
)


def roundtrip(channel, body, properties=None):
    q = channel.queue_declare("", exclusive=True).method.queue
    channel.basic_publish("", q, body, properties)
    for method, props, got in channel.consume(q, auto_ack=True,
                                              inactivity_timeout=DEADLINE):
        break
    channel.cancel()
    assert method is not None, "message not delivered"
    return method, props, got


def test_all_basic_properties_round_trip(channel):
    props = pika.BasicProperties(**ALL_PROPERTIES)
    _, got, body = roundtrip(channel, b"payload", props)
    assert body == b"payload"
    for name, value in ALL_PROPERTIES.items():
        if name == "headers":
            continue
        assert getattr(got, name) == value, name
    assert set(got.headers) == set(PIKA_HEADERS)
    for key, value in PIKA_HEADERS.items():
        assert got.headers[key] == value, key
        if isinstance(value, bool) or value is None:
            assert got.headers[key] is value, key
        else:
            # (pika decodes 64-bit ints as its own int subclass)
            assert isinstance(got.headers[key], type(value)), key
            assert not isinstance(got.headers[key], bool), key


def test_properties_via_basic_get(channel):
    q = channel.queue_declare("", exclusive=True).method.queue
    props = pika.BasicProperties(**ALL_PROPERTIES)
    channel.basic_publish("", q, b"got", props)
    method, got, body = channel.basic_get(q, auto_ack=True)
    assert method is not None
    assert body == b"got"
    for name, value in ALL_PROPERTIES.items():
        assert getattr(got, name) == value, name


def test_absent_properties_stay_absent(channel):
    _, got, body = roundtrip(channel, b"bare")
    for name in ALL_PROPERTIES:
        assert getattr(got, name) is None, name


def test_some_properties_only(channel):
    props = pika.BasicProperties(delivery_mode=1, reply_to="r",
                                 headers={"only": "this"})
    _, got, _ = roundtrip(channel, b"some", props)
    assert got.delivery_mode == 1
    assert got.reply_to == "r"
    assert got.headers == {"only": "this"}
    assert got.content_type is None
    assert got.priority is None
    assert got.timestamp is None


def test_all_field_types_and_properties_are_forwarded_byte_exact(
        raw_client):
    """Publish a content header with every field type of RabbitMQ's table
    grammar and all 14 properties; the delivered header must carry exactly
    the same octets."""
    headers = [
        ("bool_t", Typed("t", True)), ("bool_f", Typed("t", False)),
        ("i8", Typed("b", -128)), ("u8", Typed("B", 255)),
        ("i16", Typed("s", -32768)), ("u16", Typed("u", 65535)),
        ("i32", Typed("I", -2 ** 31)), ("u32", Typed("i", 2 ** 32 - 1)),
        ("i64", Typed("l", -2 ** 63)), ("f32", Typed("f", 1.5)),
        ("f64", Typed("d", -2.25)), ("dec", Typed("D", (2, 12345))),
        ("str", Typed("S", "h\u00e9llo")), ("bytes", Typed("x", b"\0\xff")),
        ("ts", Typed("T", 1700000000)), ("void", Typed("V", None)),
        ("tbl", Typed("F", [("inner", Typed("I", 1)),
                            ("deeper", Typed("F", [("x", Typed("S", "y"))]))
                            ])),
        ("arr", Typed("A", [Typed("I", 1), Typed("S", "two"),
                            Typed("A", [Typed("t", True)]),
                            Typed("F", [("k", Typed("V", None))]),
                            Typed("d", 0.5), Typed("b", 1)])),
    ]
    props = (shortstr("application/octet-stream") + shortstr("identity")
             + table(headers) + struct.pack(">BB", 2, 9)
             + shortstr("corr-1") + shortstr("reply.q")
             + shortstr("3600000") + shortstr("msg-1")
             + struct.pack(">Q", 1700000001) + shortstr("type-x")
             + shortstr("guest") + shortstr("app-1") + shortstr("cluster-1"))
    flags = 0
    for bit in range(15, 1, -1):  # all 14 property flags
        flags |= 1 << bit
    c = raw_client()
    c.handshake()
    c.channel_open(1)
    q, _, _ = c.queue_declare(1, "", exclusive=True)
    c.basic_publish(1, "", q, b"body", flags=flags, props=props)
    c.basic_consume(1, q, no_ack=True)
    deliver, frames, body = c.read_delivery(timeout=DEADLINE)
    assert body == b"body"
    sent = struct.pack(">HHQH", 60, 0, 4, flags) + props
    assert deliver["header_payload"] == sent
    # and the decoded table is what we meant
    reader = rawamqp.Reader(deliver["header_payload"][14:])
    reader.shortstr()
    reader.shortstr()
    decoded = reader.table()
    assert decoded["i8"] == -128 and decoded["u8"] == 255
    assert decoded["i64"] == -2 ** 63
    assert decoded["f32"] == 1.5 and decoded["f64"] == -2.25
    assert decoded["dec"] == decimal.Decimal("123.45")
    assert decoded["tbl"] == {"inner": 1, "deeper": {"x": b"y"}}
    c.close()


@pytest.mark.parametrize("size", [0, 1, 2, 4095, 4096, 131064, 131065,
                                  131072, 500000])
def test_body_sizes_byte_exact(channel, size):
    body = bytes((i * 7 + size) % 256 for i in range(size))
    _, _, got = roundtrip(channel, body)
    assert len(got) == size
    assert got == body


def test_empty_body_via_basic_get(channel):
    q = channel.queue_declare("", exclusive=True).method.queue
    channel.basic_publish("", q, b"")
    method, props, body = channel.basic_get(q, auto_ack=True)
    assert method is not None
    assert body == b""


def test_1mb_body_with_small_frame_max(connect, raw_client):
    """frame_max 4096: the broker reassembles a body sent in 4 KiB frames,
    and splits the body it delivers into frames that fit the limit."""
    body = hashlib.sha256(b"seed").digest() * (1024 * 1024 // 32)
    conn = connect(frame_max=4096)  # pika sends 4 KiB frames
    ch = conn.channel()
    _, _, got = roundtrip(ch, body)
    assert len(got) == len(body)
    assert got == body
    # what the broker sends, frame by frame (a raw client with frame_max 4096)
    c = raw_client()
    c.handshake(frame_max=4096)
    c.channel_open(1)
    q, _, _ = c.queue_declare(1, "", exclusive=True)
    c.basic_publish(1, "", q, body)
    c.basic_consume(1, q, no_ack=True)
    _, frames, got = c.read_delivery(timeout=DEADLINE)
    assert got == body
    assert max(len(f.payload) for f in frames) <= 4096 - 8
    assert len(frames) > 1
    c.close()


def test_10mb_body(channel):
    chunk = bytes(range(256)) * 4096  # 1 MiB
    body = b"".join(bytes([i]) + chunk[1:] for i in range(10))
    _, _, got = roundtrip(channel, body)
    assert len(got) == 10 * 1024 * 1024
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(body).hexdigest()


def test_binary_body_all_byte_values(channel):
    body = bytes(range(256)) * 3 + b"\xce\x00\xce"  # includes frame-end octet
    _, _, got = roundtrip(channel, body)
    assert got == body


def test_many_messages_preserve_order(channel):
    q = channel.queue_declare("", exclusive=True).method.queue
    n = 2000
    for i in range(n):
        channel.basic_publish("", q, b"%06d" % i)
    got = amqp_helpers.consume_n(channel, q, n, timeout=4 * DEADLINE)
    assert [b for _, _, b in got] == [b"%06d" % i for i in range(n)]


def test_order_preserved_with_mixed_sizes(channel):
    q = channel.queue_declare("", exclusive=True).method.queue
    bodies = [bytes([i % 256]) * ((i * 7919) % 300000) for i in range(30)]
    for body in bodies:
        channel.basic_publish("", q, body)
    got = amqp_helpers.consume_n(channel, q, len(bodies), timeout=4 * DEADLINE)
    assert [b for _, _, b in got] == bodies
