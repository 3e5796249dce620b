"""Reading the firehose (amq.rabbitmq.trace) with every header's AMQP type.

pika decodes a signedint and a long-long alike, so the trace messages are read
with the raw client (rawamqp.py) and their content header decoded here into
TypedValue trees that keep the type code of each field.
"""

import socket
import struct
import time

import rawamqp

QUEUE_BIND = (50, 20)
QUEUE_BIND_OK = (50, 21)
HEADERS_FLAG = 1 << 13  # basic properties: the headers table is present


class TypedReader(rawamqp.Reader):
    """A Reader whose field values are (type code, value) pairs and whose
    tables are lists of (key, (code, value)) in wire order."""

    def field_value(self):
        kind = self.data[self.pos:self.pos + 1].decode()
        if kind == "F":
            self.pos += 1
            return ("F", self.table())
        if kind == "A":
            self.pos += 1
            end = self.pos + 4 + self.long()
            items = []
            while self.pos < end:
                items.append(self.field_value())
            return ("A", items)
        return (kind, rawamqp.Reader.field_value(self))

    def table(self):
        end = self.pos + 4 + self.long()
        out = []
        while self.pos < end:
            key = self.shortstr()
            out.append((key, self.field_value()))
        return out


def typed_headers(header_payload):
    """The property flags and the typed headers table of a content header
    (only the headers property is decoded: a trace message has no other)."""
    r = TypedReader(header_payload)
    r.short()  # class
    r.short()  # weight
    r.longlong()  # body size
    flags = r.short()
    headers = r.table() if flags & HEADERS_FLAG else None
    return flags, headers


def plain(typed):
    """Drops the type codes: a dict (tables) / list (arrays) / value tree."""
    code, value = typed
    if code == "F":
        return {k: plain(v) for k, v in value}
    if code == "A":
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


class TraceMessage(object):
    def __init__(self, routing_key, exchange, flags, headers, body):
        self.routing_key = routing_key
        self.exchange = exchange
        self.flags = flags
        self.typed = headers or []  # [(name, (code, value))] in wire order
        self.body = body

    def names(self):
        return [k for k, _ in self.typed]

    def code(self, name):
        return dict(self.typed)[name][0]

    def __getitem__(self, name):
        return plain(dict(self.typed)[name])

    def __repr__(self):
        return "<TraceMessage %s %r %r>" % (self.routing_key, self.typed,
                                            self.body)


class FirehoseReader(object):
    """An exclusive queue bound to amq.rabbitmq.trace in a vhost, consumed
    with no-ack over a raw connection."""

    def __init__(self, port, vhost="/", binding="#", user="guest",
                 password="guest"):
        self.client = rawamqp.RawClient("127.0.0.1", port)
        self.client.handshake(user=user, password=password, vhost=vhost)
        self.client.channel_open(1)
        self.queue, _, _ = self.client.queue_declare(1, "", exclusive=True)
        self.client.send_method(
            1, QUEUE_BIND,
            struct.pack(">H", 0) + rawamqp.shortstr(self.queue)
            + rawamqp.shortstr("amq.rabbitmq.trace")
            + rawamqp.shortstr(binding) + rawamqp.bits(False)
            + rawamqp.table({}))
        self.client.read_method(QUEUE_BIND_OK)
        self.client.basic_consume(1, self.queue, no_ack=True)

    def next(self, timeout=5.0):
        deliver, _, body = self.client.read_delivery(timeout=timeout)
        flags, headers = typed_headers(deliver["header_payload"])
        return TraceMessage(deliver["routing_key"], deliver["exchange"],
                            flags, headers, body)

    def take(self, n, timeout=5.0):
        """The next n trace messages, waiting at most timeout in all."""
        deadline = time.monotonic() + timeout
        return [self.next(timeout=max(0.05, deadline - time.monotonic()))
                for _ in range(n)]

    def nothing_within(self, seconds):
        """True when no trace message arrives within the given time."""
        try:
            self.next(timeout=seconds)
        except socket.timeout:
            return True
        return False

    def close(self):
        self.client.close()
