"""A small hand-written AMQP 0-9-1 client over a plain socket.

It exists so that the integration tests can misbehave on purpose (send frames
that a well-behaved library such as pika refuses to produce) and look at
exactly what the broker writes back.  It is deliberately minimal: it encodes
and decodes only what the tests need.
"""

import socket
import struct
import time
from decimal import Decimal

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_END = 0xCE

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8

# (class_id, method_id) pairs used below
CONNECTION_START = (10, 10)
CONNECTION_START_OK = (10, 11)
CONNECTION_TUNE = (10, 30)
CONNECTION_TUNE_OK = (10, 31)
CONNECTION_OPEN = (10, 40)
CONNECTION_OPEN_OK = (10, 41)
CONNECTION_CLOSE = (10, 50)
CONNECTION_CLOSE_OK = (10, 51)
CHANNEL_OPEN = (20, 10)
CHANNEL_OPEN_OK = (20, 11)
CHANNEL_CLOSE = (20, 40)
CHANNEL_CLOSE_OK = (20, 41)
QUEUE_DECLARE = (50, 10)
QUEUE_DECLARE_OK = (50, 11)
BASIC_QOS = (60, 10)
BASIC_QOS_OK = (60, 11)
BASIC_CONSUME = (60, 20)
BASIC_CONSUME_OK = (60, 21)
BASIC_PUBLISH = (60, 40)
BASIC_DELIVER = (60, 60)
BASIC_GET = (60, 70)
BASIC_GET_OK = (60, 71)
BASIC_GET_EMPTY = (60, 72)
BASIC_ACK = (60, 80)


class ProtocolError(Exception):
    pass


class ConnectionClosedByPeer(Exception):
    """The socket reached EOF (or was reset) while we were reading."""


# ---------------------------------------------------------------------------
# Encoding


def shortstr(value):
    if isinstance(value, str):
        value = value.encode("utf-8")
    assert len(value) < 256
    return struct.pack(">B", len(value)) + value


def longstr(value):
    if isinstance(value, str):
        value = value.encode("utf-8")
    return struct.pack(">I", len(value)) + value


class Typed(object):
    """A field value with an explicit AMQP type code (RabbitMQ's set)."""

    FORMATS = {"b": ">b", "B": ">B", "s": ">h", "u": ">H", "I": ">i",
               "i": ">I", "l": ">q", "f": ">f", "d": ">d", "T": ">Q"}

    def __init__(self, code, value):
        self.code = code
        self.value = value

    def encode(self):
        code = self.code.encode()
        if self.code in self.FORMATS:
            return code + struct.pack(self.FORMATS[self.code], self.value)
        if self.code in ("S", "x"):
            return code + longstr(self.value)
        if self.code == "t":
            return code + struct.pack(">B", 1 if self.value else 0)
        if self.code == "V":
            return code
        if self.code == "D":
            scale, unscaled = self.value
            return code + struct.pack(">Bi", scale, unscaled)
        if self.code == "F":
            return code + table(self.value)
        if self.code == "A":
            payload = b"".join(_field_value(v) for v in self.value)
            return code + struct.pack(">I", len(payload)) + payload
        raise TypeError("unknown type code %r" % self.code)


def _field_value(value):
    if isinstance(value, Typed):
        return value.encode()
    if isinstance(value, bool):
        return b"t" + struct.pack(">B", 1 if value else 0)
    if isinstance(value, int):
        if -(2 ** 31) <= value < 2 ** 31:
            return b"I" + struct.pack(">i", value)
        return b"l" + struct.pack(">q", value)
    if isinstance(value, float):
        return b"d" + struct.pack(">d", value)
    if isinstance(value, Decimal):
        sign, digits, exponent = value.as_tuple()
        scale = -exponent if exponent < 0 else 0
        unscaled = int(value.scaleb(scale))
        return b"D" + struct.pack(">Bi", scale, unscaled)
    if isinstance(value, (str, bytes)):
        return b"S" + longstr(value)
    if isinstance(value, dict):
        return b"F" + table(value)
    if isinstance(value, (list, tuple)):
        payload = b"".join(_field_value(v) for v in value)
        return b"A" + struct.pack(">I", len(payload)) + payload
    if value is None:
        return b"V"
    raise TypeError("cannot encode %r" % (value,))


def table(values):
    """Encode a field table from a dict or a list of (key, value) pairs."""
    payload = b""
    items = values.items() if isinstance(values, dict) else (values or [])
    for key, value in items:
        payload += shortstr(key) + _field_value(value)
    return struct.pack(">I", len(payload)) + payload


def bits(*flags):
    value = 0
    for i, flag in enumerate(flags):
        if flag:
            value |= 1 << i
    return struct.pack(">B", value)


def frame(frame_type, channel, payload, frame_end=FRAME_END):
    return (struct.pack(">BHI", frame_type, channel, len(payload)) + payload
            + struct.pack(">B", frame_end))


def method_payload(class_method, args=b""):
    return struct.pack(">HH", *class_method) + args


def method_frame(channel, class_method, args=b""):
    return frame(FRAME_METHOD, channel, method_payload(class_method, args))


def content_header_frame(channel, body_size, class_id=60, flags=0, props=b""):
    payload = struct.pack(">HHQH", class_id, 0, body_size, flags) + props
    return frame(FRAME_HEADER, channel, payload)


def body_frame(channel, body):
    return frame(FRAME_BODY, channel, body)


def heartbeat_frame():
    return frame(FRAME_HEARTBEAT, 0, b"")


# ---------------------------------------------------------------------------
# Decoding


class Reader(object):
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ProtocolError("short read decoding %r" % (self.data,))
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size))

    def octet(self):
        return self.unpack(">B")[0]

    def short(self):
        return self.unpack(">H")[0]

    def long(self):
        return self.unpack(">I")[0]

    def longlong(self):
        return self.unpack(">Q")[0]

    def shortstr(self):
        return self.take(self.octet()).decode("utf-8")

    def longstr(self):
        return self.take(self.long())

    def field_value(self):
        kind = self.take(1)
        if kind == b"t":
            return self.octet() != 0
        if kind == b"b":
            return self.unpack(">b")[0]
        if kind == b"B":
            return self.unpack(">B")[0]
        if kind == b"s":
            return self.unpack(">h")[0]
        if kind == b"u":
            return self.unpack(">H")[0]
        if kind == b"I":
            return self.unpack(">i")[0]
        if kind == b"i":
            return self.unpack(">I")[0]
        if kind == b"l":
            return self.unpack(">q")[0]
        if kind == b"f":
            return self.unpack(">f")[0]
        if kind == b"d":
            return self.unpack(">d")[0]
        if kind == b"D":
            scale = self.octet()
            unscaled = self.unpack(">i")[0]
            return Decimal(unscaled).scaleb(-scale)
        if kind == b"S":
            return self.longstr()
        if kind == b"x":
            return self.longstr()
        if kind == b"T":
            return self.longlong()
        if kind == b"F":
            return self.table()
        if kind == b"A":
            length = self.long()
            end = self.pos + length
            items = []
            while self.pos < end:
                items.append(self.field_value())
            return items
        if kind == b"V":
            return None
        raise ProtocolError("unknown field type %r" % (kind,))

    def table(self):
        length = self.long()
        end = self.pos + length
        result = {}
        while self.pos < end:
            key = self.shortstr()
            result[key] = self.field_value()
        return result

    def rest(self):
        chunk = self.data[self.pos:]
        self.pos = len(self.data)
        return chunk


class Frame(object):
    def __init__(self, frame_type, channel, payload):
        self.type = frame_type
        self.channel = channel
        self.payload = payload
        self.class_method = None
        self.args = None
        if frame_type == FRAME_METHOD:
            self.class_method = struct.unpack(">HH", payload[:4])
            self.args = Reader(payload[4:])

    def __repr__(self):
        if self.type == FRAME_METHOD:
            return "<Frame method %s ch=%d %r>" % (
                self.class_method, self.channel, self.payload[4:80])
        return "<Frame type=%d ch=%d len=%d>" % (
            self.type, self.channel, len(self.payload))


class Close(object):
    """A decoded connection.close or channel.close."""

    def __init__(self, frm):
        args = frm.args
        self.channel = frm.channel
        self.reply_code = args.short()
        self.reply_text = args.shortstr()
        self.class_id = args.short()
        self.method_id = args.short()

    def __repr__(self):
        return "<Close ch=%d %d %r (%d,%d)>" % (
            self.channel, self.reply_code, self.reply_text, self.class_id,
            self.method_id)


# ---------------------------------------------------------------------------
# The client


class RawClient(object):
    """A blocking, single-threaded AMQP 0-9-1 client over a raw socket."""

    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buffer = b""
        self.server_properties = None
        self.mechanisms = None
        self.locales = None
        self.version = None
        self.tune = None  # (channel_max, frame_max, heartbeat) proposed
        self.frame_max = None
        self.channel_max = None
        self.heartbeat = None

    # -- low level -----------------------------------------------------
    def send(self, data):
        self.sock.sendall(data)

    def close_socket(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def recv_raw(self, n=65536, timeout=None):
        """Read whatever bytes arrive (b'' on EOF)."""
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            return self.sock.recv(n)
        except ConnectionResetError:
            return b""

    def _fill(self, n, deadline):
        while len(self.buffer) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("timed out waiting for data")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise ConnectionClosedByPeer(
                    "peer closed the connection (buffered: %r)" % (
                        self.buffer,))
            self.buffer += chunk

    def read_frame(self, timeout=None, skip_heartbeats=True):
        deadline = time.monotonic() + (
            self.timeout if timeout is None else timeout)
        while True:
            self._fill(7, deadline)
            frame_type, channel, size = struct.unpack(">BHI", self.buffer[:7])
            self._fill(7 + size + 1, deadline)
            payload = self.buffer[7:7 + size]
            end = self.buffer[7 + size]
            self.buffer = self.buffer[7 + size + 1:]
            if end != FRAME_END:
                raise ProtocolError("bad frame end %r" % (end,))
            if frame_type == FRAME_HEARTBEAT and skip_heartbeats:
                continue
            return Frame(frame_type, channel, payload)

    def read_method(self, expected=None, timeout=None):
        frm = self.read_frame(timeout=timeout)
        if frm.type != FRAME_METHOD:
            raise ProtocolError("expected a method frame, got %r" % (frm,))
        if expected is not None and frm.class_method != expected:
            if frm.class_method in (CONNECTION_CLOSE, CHANNEL_CLOSE):
                raise ProtocolError("expected %s, got %r" % (
                    expected, Close(frm)))
            raise ProtocolError("expected %s, got %r" % (expected, frm))
        return frm

    def send_method(self, channel, class_method, args=b""):
        self.send(method_frame(channel, class_method, args))

    # -- handshake -----------------------------------------------------
    def send_protocol_header(self, header=PROTOCOL_HEADER):
        self.send(header)

    def read_start(self):
        frm = self.read_method(CONNECTION_START)
        args = frm.args
        self.version = (args.octet(), args.octet())
        self.server_properties = args.table()
        self.mechanisms = args.longstr()
        self.locales = args.longstr()
        return frm

    def send_start_ok(self, user="guest", password="guest",
                      mechanism="PLAIN", client_properties=None):
        if client_properties is None:
            client_properties = {
                "product": "warren-integration-tests",
                "capabilities": {"authentication_failure_close": True,
                                 "consumer_cancel_notify": True},
            }
        response = b"\x00" + user.encode() + b"\x00" + password.encode()
        self.send_method(0, CONNECTION_START_OK,
                         table(client_properties) + shortstr(mechanism)
                         + longstr(response) + shortstr("en_US"))

    def read_tune(self):
        frm = self.read_method(CONNECTION_TUNE)
        args = frm.args
        self.tune = (args.short(), args.long(), args.short())
        return self.tune

    def send_tune_ok(self, channel_max, frame_max, heartbeat):
        self.channel_max = channel_max
        self.frame_max = frame_max
        self.heartbeat = heartbeat
        self.send_method(0, CONNECTION_TUNE_OK,
                         struct.pack(">HIH", channel_max, frame_max,
                                     heartbeat))

    def send_open(self, vhost="/"):
        self.send_method(0, CONNECTION_OPEN,
                         shortstr(vhost) + shortstr("") + bits(False))

    def handshake(self, user="guest", password="guest", vhost="/",
                  frame_max=None, channel_max=None, heartbeat=0):
        """Run the whole opening handshake, up to connection.open-ok."""
        self.send_protocol_header()
        self.read_start()
        self.send_start_ok(user, password)
        server_channel_max, server_frame_max, _ = self.read_tune()
        self.send_tune_ok(
            server_channel_max if channel_max is None else channel_max,
            server_frame_max if frame_max is None else frame_max,
            heartbeat)
        self.send_open(vhost)
        self.read_method(CONNECTION_OPEN_OK)
        return self

    # -- channel level helpers ------------------------------------------
    def channel_open(self, channel):
        self.send_method(channel, CHANNEL_OPEN, shortstr(""))
        return self.read_method(CHANNEL_OPEN_OK)

    def queue_declare(self, channel, queue, passive=False, durable=False,
                      exclusive=False, auto_delete=False, arguments=None):
        self.send_method(channel, QUEUE_DECLARE,
                         struct.pack(">H", 0) + shortstr(queue)
                         + bits(passive, durable, exclusive, auto_delete,
                                False)
                         + table(arguments))
        frm = self.read_method(QUEUE_DECLARE_OK)
        return (frm.args.shortstr(), frm.args.long(), frm.args.long())

    def basic_qos(self, channel, prefetch_count, global_=False):
        self.send_method(channel, BASIC_QOS,
                         struct.pack(">IH", 0, prefetch_count)
                         + bits(global_))
        self.read_method(BASIC_QOS_OK)

    def basic_consume(self, channel, queue, consumer_tag="", no_ack=False,
                      exclusive=False):
        self.send_method(channel, BASIC_CONSUME,
                         struct.pack(">H", 0) + shortstr(queue)
                         + shortstr(consumer_tag)
                         + bits(False, no_ack, exclusive, False) + table({}))
        frm = self.read_method(BASIC_CONSUME_OK)
        return frm.args.shortstr()

    def basic_publish(self, channel, exchange, routing_key, body,
                      mandatory=False, frame_max=None, flags=0, props=b""):
        """Publish; the content header carries the given property flags and
        the already encoded property list (none by default)."""
        self.send_method(channel, BASIC_PUBLISH,
                         struct.pack(">H", 0) + shortstr(exchange)
                         + shortstr(routing_key) + bits(mandatory, False))
        self.send(content_header_frame(channel, len(body), flags=flags,
                                       props=props))
        limit = (frame_max or self.frame_max or 131072) - 8
        for i in range(0, len(body), limit):
            self.send(body_frame(channel, body[i:i + limit]))

    def basic_ack(self, channel, delivery_tag, multiple=False):
        self.send_method(channel, BASIC_ACK,
                         struct.pack(">Q", delivery_tag) + bits(multiple))

    def read_delivery(self, timeout=None):
        """Read basic.deliver + header + body frames.

        Returns (deliver-args dict, list of body frames, body bytes); the
        raw content header payload is in deliver["header_payload"]."""
        frm = self.read_method(BASIC_DELIVER, timeout=timeout)
        args = frm.args
        deliver = {
            "consumer_tag": args.shortstr(),
            "delivery_tag": args.longlong(),
            "redelivered": bool(args.octet() & 1),
            "exchange": args.shortstr(),
            "routing_key": args.shortstr(),
        }
        header = self.read_frame(timeout=timeout)
        if header.type != FRAME_HEADER:
            raise ProtocolError("expected a content header, got %r" % header)
        deliver["header_payload"] = header.payload
        hdr = Reader(header.payload)
        hdr.short()
        hdr.short()
        body_size = hdr.longlong()
        frames = []
        body = b""
        while len(body) < body_size:
            frm = self.read_frame(timeout=timeout)
            if frm.type != FRAME_BODY:
                raise ProtocolError("expected a body frame, got %r" % frm)
            frames.append(frm)
            body += frm.payload
        return deliver, frames, body

    # -- waiting for the broker to hang up -------------------------------
    def expect_connection_close(self, timeout=None, reply_close_ok=True):
        """Read frames until connection.close arrives; returns a Close.

        Frames on other channels (and channel.close) are skipped.  Replies
        with connection.close-ok unless told not to."""
        deadline = time.monotonic() + (
            self.timeout if timeout is None else timeout)
        while True:
            frm = self.read_frame(timeout=max(0.01,
                                              deadline - time.monotonic()))
            if frm.type == FRAME_METHOD and frm.class_method == \
                    CONNECTION_CLOSE and frm.channel == 0:
                close = Close(frm)
                if reply_close_ok:
                    try:
                        self.send_method(0, CONNECTION_CLOSE_OK)
                    except OSError:
                        pass
                return close

    def expect_channel_close(self, channel, timeout=None):
        deadline = time.monotonic() + (
            self.timeout if timeout is None else timeout)
        while True:
            frm = self.read_frame(timeout=max(0.01,
                                              deadline - time.monotonic()))
            if frm.type != FRAME_METHOD:
                continue
            if frm.class_method == CONNECTION_CLOSE:
                raise ProtocolError("connection closed instead: %r" % (
                    Close(frm),))
            if frm.class_method == CHANNEL_CLOSE and frm.channel == channel:
                close = Close(frm)
                self.send_method(channel, CHANNEL_CLOSE_OK)
                return close

    def wait_for_eof(self, timeout):
        """Read and discard until EOF; returns seconds waited, or None."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except (ConnectionResetError, BrokenPipeError):
                return time.monotonic() - start
            if not chunk:
                return time.monotonic() - start

    def close(self):
        """Politely close the connection (best effort)."""
        try:
            self.send_method(0, CONNECTION_CLOSE,
                             struct.pack(">H", 200) + shortstr("bye")
                             + struct.pack(">HH", 0, 0))
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                frm = self.read_frame(timeout=max(
                    0.01, deadline - time.monotonic()))
                if frm.type == FRAME_METHOD and frm.class_method == \
                        CONNECTION_CLOSE_OK:
                    break
        except (OSError, ConnectionClosedByPeer, ProtocolError):
            pass
        finally:
            self.close_socket()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
