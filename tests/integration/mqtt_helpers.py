"""MQTT clients for the tests: a synchronous wrapper over paho-mqtt (Debian's python3-paho-mqtt
1.6) and a raw-socket client that writes exact packets (malformed ones too) and reads replies."""

import queue
import socket
import struct
import threading
import time

import paho.mqtt.client as paho

# Packet types (MQTT 3.1.1 section 2.2.1).
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14


def mqtt_port(broker):
    return broker.listener_port("MQTT")


def web_mqtt_port(broker):
    return broker.listener_port("web MQTT")


class Client(object):
    """A paho client driven by its own network thread, with blocking helpers. It never
    reconnects by itself: after a disconnect its loop stops."""

    def __init__(self, port, client_id="", clean_session=True, username="guest", password="guest",
                 will=None, keepalive=60, protocol=paho.MQTTv311, websocket_path=None):
        self.port = port
        self.keepalive = keepalive
        self.c = paho.Client(client_id=client_id, clean_session=clean_session, protocol=protocol,
                             transport="websockets" if websocket_path else "tcp")
        if websocket_path:
            self.c.ws_set_options(path=websocket_path)
        if username is not None or password is not None:
            self.c.username_pw_set(username, password)
        if will is not None:
            topic, payload, qos, retain = will
            self.c.will_set(topic, payload, qos, retain)
        self.messages = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.rc = None
        self.session_present = None
        self.subacks = {}
        self.suback_event = threading.Condition()
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda client, userdata, msg: self.messages.put(msg)
        self.c.on_disconnect = self._on_disconnect
        self.c.on_subscribe = self._on_subscribe

    def _on_connect(self, client, userdata, flags, rc):
        self.rc = rc
        self.session_present = bool(flags.get("session present"))
        self.connected.set()

    def _on_disconnect(self, client, userdata, rc):
        self.disconnected.set()
        self.connected.set()  # wake a connect() that waits
        client.loop_stop()  # from the network thread: stops without joining, no reconnect

    def _on_subscribe(self, client, userdata, mid, granted_qos):
        with self.suback_event:
            self.subacks[mid] = list(granted_qos)
            self.suback_event.notify_all()

    def connect(self, timeout=10.0):
        """Connects; returns the CONNACK return code (None: closed without a CONNACK)."""
        self.c.connect("127.0.0.1", self.port, self.keepalive)
        self.c.loop_start()
        if not self.connected.wait(timeout):
            raise AssertionError("no CONNACK within %.0f s" % timeout)
        return self.rc

    def subscribe(self, topic, qos=0, timeout=10.0):
        """Subscribes to one filter or a list of (filter, qos); returns the granted QoS list."""
        rc, mid = self.c.subscribe(topic, qos)
        assert rc == paho.MQTT_ERR_SUCCESS, rc
        return self.await_suback(mid, timeout)

    def await_suback(self, mid, timeout):
        """The SUBACK of SUBSCRIBE `mid` (what the on_subscribe callback recorded)."""
        deadline = time.monotonic() + timeout
        with self.suback_event:
            while mid not in self.subacks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no SUBACK within %.0f s" % timeout)
                self.suback_event.wait(left)
            return self.subacks[mid]

    def unsubscribe(self, topic, timeout=10.0):
        done = threading.Event()
        self.c.on_unsubscribe = lambda client, userdata, mid: done.set()
        self.c.unsubscribe(topic)
        assert done.wait(timeout), "no UNSUBACK"

    def publish(self, topic, payload, qos=0, retain=False, timeout=10.0):
        """Publishes; for QoS 1 waits for the PUBACK."""
        info = self.c.publish(topic, payload, qos, retain)
        info.wait_for_publish(timeout)
        assert info.is_published(), "publish of %r not acknowledged" % (topic,)

    def expect(self, n=1, timeout=10.0):
        """The next n messages (paho MQTTMessage: topic, payload, qos, retain, dup)."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("got %d of %d messages: %r"
                                     % (len(out), n, [(m.topic, m.payload) for m in out]))
            try:
                out.append(self.messages.get(timeout=left))
            except queue.Empty:
                pass
        return out

    def expect_none(self, wait=0.5):
        try:
            m = self.messages.get(timeout=wait)
        except queue.Empty:
            return
        raise AssertionError("unexpected message %r %r" % (m.topic, m.payload))

    def disconnect(self):
        if not self.disconnected.is_set():
            self.c.disconnect()
            self.disconnected.wait(10)
        self.c.loop_stop()

    def drop(self):
        """Closes the socket without DISCONNECT (the broker then sends the will)."""
        sock = self.c.socket()
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.disconnected.wait(10)
        self.c.loop_stop()


# ---- raw packets


def _utf8(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def remaining_length(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def packet(ptype, flags, body):
    return bytes([(ptype << 4) | flags]) + remaining_length(len(body)) + body


def connect_packet(client_id="", clean=True, keepalive=60, username="guest", password="guest",
                   will=None, level=4, name="MQTT", flags_extra=0):
    flags = (0x02 if clean else 0) | flags_extra
    payload = _utf8(client_id)
    if will is not None:
        topic, message, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        payload += _utf8(topic) + _utf8(message)
    if username is not None:
        flags |= 0x80
        payload += _utf8(username)
    if password is not None:
        flags |= 0x40
        payload += _utf8(password)
    body = _utf8(name) + bytes([level, flags]) + struct.pack("!H", keepalive) + payload
    return packet(CONNECT, 0, body)


def publish_packet(topic, payload, qos=0, packet_id=0, retain=False, dup=False):
    flags = (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    body = _utf8(topic) + (struct.pack("!H", packet_id) if qos else b"") + payload
    return packet(PUBLISH, flags, body)


def subscribe_packet(packet_id, topics):
    body = struct.pack("!H", packet_id)
    for f, q in topics:
        body += _utf8(f) + bytes([q])
    return packet(SUBSCRIBE, 0x02, body)


def puback_packet(packet_id):
    return packet(PUBACK, 0, struct.pack("!H", packet_id))


class RawClient(object):
    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed by the broker")
            self.buf += chunk

    def read_packet(self):
        """(type, flags, body) of the next packet; EOFError when the broker closed."""
        self._fill(2)
        i, mult, length = 1, 1, 0
        while True:
            self._fill(i + 1)
            b = self.buf[i]
            length += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        self._fill(i + length)
        first, body = self.buf[0], self.buf[i:i + length]
        self.buf = self.buf[i + length:]
        return first >> 4, first & 0x0F, body

    def connect(self, **kwargs):
        """Sends CONNECT; returns (session_present, return_code) of the CONNACK."""
        self.send(connect_packet(**kwargs))
        ptype, _, body = self.read_packet()
        assert ptype == CONNACK, ptype
        return bool(body[0] & 1), body[1]

    def closed_by_broker(self, timeout=10.0):
        """True once the broker has closed the connection (reading what it still sent)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def parse_publish(flags, body):
    """(topic, payload, qos, packet_id, dup, retain) of a PUBLISH body."""
    n = struct.unpack("!H", body[:2])[0]
    topic = body[2:2 + n].decode()
    qos = (flags >> 1) & 3
    rest = body[2 + n:]
    packet_id = 0
    if qos:
        packet_id = struct.unpack("!H", rest[:2])[0]
        rest = rest[2:]
    return topic, rest, qos, packet_id, bool(flags & 0x08), bool(flags & 0x01)


# ---- MQTT 5.0: a paho wrapper, and properties and reason codes in raw packets
#
# MQTT 5.0 (OASIS, 2019) adds a property list after the variable header of most packets
# (section 2.2.2) and reason codes to the acknowledgements and to DISCONNECT (section 2.4).

from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from paho.mqtt.reasoncodes import ReasonCodes  # noqa: E402
from paho.mqtt.subscribeoptions import SubscribeOptions  # noqa: E402,F401 (re-exported)

AUTH = 15  # MQTT 5.0 only

# Property identifiers (MQTT 5.0 section 2.2.2.2).
PAYLOAD_FORMAT_INDICATOR = 0x01
MESSAGE_EXPIRY_INTERVAL = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SUBSCRIPTION_IDENTIFIER = 0x0B
SESSION_EXPIRY_INTERVAL = 0x11
ASSIGNED_CLIENT_IDENTIFIER = 0x12
SERVER_KEEP_ALIVE = 0x13
AUTHENTICATION_METHOD = 0x15
AUTHENTICATION_DATA = 0x16
REQUEST_PROBLEM_INFORMATION = 0x17
WILL_DELAY_INTERVAL = 0x18
REQUEST_RESPONSE_INFORMATION = 0x19
RESPONSE_INFORMATION = 0x1A
SERVER_REFERENCE = 0x1C
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29
SHARED_SUBSCRIPTION_AVAILABLE = 0x2A

_BYTE, _U16, _U32, _VARINT, _UTF8, _BINARY, _PAIR = range(7)
PROPERTY_TYPES = {
    PAYLOAD_FORMAT_INDICATOR: _BYTE, MESSAGE_EXPIRY_INTERVAL: _U32, CONTENT_TYPE: _UTF8,
    RESPONSE_TOPIC: _UTF8, CORRELATION_DATA: _BINARY, SUBSCRIPTION_IDENTIFIER: _VARINT,
    SESSION_EXPIRY_INTERVAL: _U32, ASSIGNED_CLIENT_IDENTIFIER: _UTF8, SERVER_KEEP_ALIVE: _U16,
    AUTHENTICATION_METHOD: _UTF8, AUTHENTICATION_DATA: _BINARY,
    REQUEST_PROBLEM_INFORMATION: _BYTE, WILL_DELAY_INTERVAL: _U32,
    REQUEST_RESPONSE_INFORMATION: _BYTE, RESPONSE_INFORMATION: _UTF8, SERVER_REFERENCE: _UTF8,
    REASON_STRING: _UTF8, RECEIVE_MAXIMUM: _U16, TOPIC_ALIAS_MAXIMUM: _U16, TOPIC_ALIAS: _U16,
    MAXIMUM_QOS: _BYTE, RETAIN_AVAILABLE: _BYTE, USER_PROPERTY: _PAIR,
    MAXIMUM_PACKET_SIZE: _U32, WILDCARD_SUBSCRIPTION_AVAILABLE: _BYTE,
    SUBSCRIPTION_IDENTIFIER_AVAILABLE: _BYTE, SHARED_SUBSCRIPTION_AVAILABLE: _BYTE,
}

# Reason codes (MQTT 5.0 section 2.4) the tests look for.
RC_SUCCESS = 0x00
RC_GRANTED_QOS_1 = 0x01
RC_DISCONNECT_WITH_WILL = 0x04
RC_NO_MATCHING_SUBSCRIBERS = 0x10
RC_NO_SUBSCRIPTION_EXISTED = 0x11
RC_MALFORMED_PACKET = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84
RC_BAD_USER_NAME_OR_PASSWORD = 0x86
RC_NOT_AUTHORIZED = 0x87
RC_BAD_AUTHENTICATION_METHOD = 0x8C
RC_KEEP_ALIVE_TIMEOUT = 0x8D
RC_SESSION_TAKEN_OVER = 0x8E
RC_TOPIC_FILTER_INVALID = 0x8F
RC_TOPIC_ALIAS_INVALID = 0x94
RC_QOS_NOT_SUPPORTED = 0x9B
RC_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E


def varint(n):
    """A Variable Byte Integer (section 1.5.5); the same encoding as the remaining length."""
    return remaining_length(n)


def take_varint(data, i=0):
    """(value, index after it) of the Variable Byte Integer at data[i]."""
    value, mult = 0, 1
    for k in range(4):
        b = data[i + k]
        value += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            return value, i + k + 1
    raise ValueError("a Variable Byte Integer longer than 4 bytes")


def _binary(b):
    b = b.encode() if isinstance(b, str) else bytes(b)
    return struct.pack("!H", len(b)) + b


def property_bytes(pid, value):
    """One property: its identifier, then the value encoded as its type requires. An identifier
    not in PROPERTY_TYPES takes its value as the raw bytes to write (malformed packets)."""
    kind = PROPERTY_TYPES.get(pid)
    head = varint(pid)
    if kind is None:
        return head + bytes(value)
    if kind == _BYTE:
        return head + bytes([value])
    if kind == _U16:
        return head + struct.pack("!H", value)
    if kind == _U32:
        return head + struct.pack("!I", value)
    if kind == _VARINT:
        return head + varint(value)
    if kind in (_UTF8, _BINARY):
        return head + _binary(value)
    name, val = value
    return head + _binary(name) + _binary(val)


def properties_block(props=()):
    """A property list with its length in front: props is a list of (identifier, value) pairs
    (repeats kept, in order), a dict, or ready-made bytes (written as they are)."""
    if isinstance(props, (bytes, bytearray)):
        body = bytes(props)
    else:
        items = props.items() if isinstance(props, dict) else props
        body = b"".join(property_bytes(pid, value) for pid, value in items)
    return varint(len(body)) + body


class Props(object):
    """A decoded property list: items is [(identifier, value)] in packet order."""

    def __init__(self, items=None):
        self.items = list(items or [])

    def get(self, pid, default=None):
        for k, v in self.items:
            if k == pid:
                return v
        return default

    def all(self, pid):
        return [v for k, v in self.items if k == pid]

    def __contains__(self, pid):
        return any(k == pid for k, _ in self.items)

    def ids(self):
        return [k for k, _ in self.items]

    def __repr__(self):
        return "Props(%r)" % (self.items,)


def decode_properties(data, i=0):
    """(Props, index after the list) of the property list (length first) at data[i]."""
    length, i = take_varint(data, i)
    end = i + length
    if end > len(data):
        raise ValueError("property list runs past the packet")
    items = []
    while i < end:
        pid, i = take_varint(data, i)
        kind = PROPERTY_TYPES.get(pid)
        if kind is None:
            raise ValueError("unknown property 0x%02x" % pid)
        if kind == _BYTE:
            value, i = data[i], i + 1
        elif kind == _U16:
            value, i = struct.unpack("!H", data[i:i + 2])[0], i + 2
        elif kind == _U32:
            value, i = struct.unpack("!I", data[i:i + 4])[0], i + 4
        elif kind == _VARINT:
            value, i = take_varint(data, i)
        else:
            n = struct.unpack("!H", data[i:i + 2])[0]
            value, i = bytes(data[i + 2:i + 2 + n]), i + 2 + n
            if kind == _UTF8:
                value = value.decode()
            elif kind == _PAIR:
                m = struct.unpack("!H", data[i:i + 2])[0]
                value, i = (value.decode(), bytes(data[i + 2:i + 2 + m]).decode()), i + 2 + m
        items.append((pid, value))
    if i != end:
        raise ValueError("property list length does not match its properties")
    return Props(items), end


def connect5_packet(client_id="", clean=True, keepalive=60, username="guest", password="guest",
                    will=None, will_properties=(), properties=(), level=5, name="MQTT",
                    flags_extra=0):
    """A v5 CONNECT: will is (topic, payload, qos, retain); properties and will_properties as
    properties_block() takes them."""
    flags = (0x02 if clean else 0) | flags_extra
    payload = _utf8(client_id)
    if will is not None:
        topic, message, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        payload += properties_block(will_properties) + _utf8(topic) + _binary(message)
    if username is not None:
        flags |= 0x80
        payload += _utf8(username)
    if password is not None:
        flags |= 0x40
        payload += _binary(password)
    body = (_utf8(name) + bytes([level, flags]) + struct.pack("!H", keepalive)
            + properties_block(properties) + payload)
    return packet(CONNECT, 0, body)


def publish5_packet(topic, payload, qos=0, packet_id=0, retain=False, dup=False,
                    properties=()):
    flags = (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    payload = payload.encode() if isinstance(payload, str) else payload
    body = (_utf8(topic) + (struct.pack("!H", packet_id) if qos else b"")
            + properties_block(properties) + payload)
    return packet(PUBLISH, flags, body)


def subscription_options(qos=0, no_local=False, retain_as_published=False, retain_handling=0):
    """The options byte of a v5 SUBSCRIBE entry (section 3.8.3.1)."""
    return (qos | (0x04 if no_local else 0) | (0x08 if retain_as_published else 0)
            | (retain_handling << 4))


def subscribe5_packet(packet_id, topics, properties=()):
    """topics: [(filter, options byte)] (subscription_options())."""
    body = struct.pack("!H", packet_id) + properties_block(properties)
    for f, options in topics:
        body += _utf8(f) + bytes([options])
    return packet(SUBSCRIBE, 0x02, body)


def unsubscribe5_packet(packet_id, filters, properties=()):
    body = struct.pack("!H", packet_id) + properties_block(properties)
    for f in filters:
        body += _utf8(f)
    return packet(UNSUBSCRIBE, 0x02, body)


def puback5_packet(packet_id, reason=0, properties=()):
    """The short form (packet id only) for success without properties."""
    body = struct.pack("!H", packet_id)
    if reason or properties:
        body += bytes([reason]) + properties_block(properties)
    return packet(PUBACK, 0, body)


def disconnect5_packet(reason=0, properties=()):
    body = b""
    if reason or properties:
        body = bytes([reason]) + properties_block(properties)
    return packet(DISCONNECT, 0, body)


def parse_connack5(body):
    """(session_present, reason code, Props) of a v5 CONNACK body (no properties: empty)."""
    props = decode_properties(body, 2)[0] if len(body) > 2 else Props()
    return bool(body[0] & 1), body[1], props


class Publish5(object):
    def __init__(self, topic, payload, qos, packet_id, dup, retain, properties):
        self.topic, self.payload, self.qos = topic, payload, qos
        self.packet_id, self.dup, self.retain = packet_id, dup, retain
        self.properties = properties

    def __repr__(self):
        return ("Publish5(topic=%r, payload=%r, qos=%d, packet_id=%d, dup=%r, retain=%r, %r)"
                % (self.topic, self.payload[:40], self.qos, self.packet_id, self.dup,
                   self.retain, self.properties))


def parse_publish5(flags, body):
    n = struct.unpack("!H", body[:2])[0]
    topic = bytes(body[2:2 + n]).decode()
    qos = (flags >> 1) & 3
    i = 2 + n
    packet_id = 0
    if qos:
        packet_id = struct.unpack("!H", body[i:i + 2])[0]
        i += 2
    props, i = decode_properties(body, i)
    return Publish5(topic, bytes(body[i:]), qos, packet_id, bool(flags & 0x08),
                    bool(flags & 0x01), props)


def parse_ack5(body):
    """(packet id, reason code, Props) of a PUBACK/PUBREC/PUBREL/PUBCOMP body (section 3.4.2:
    no reason code means success)."""
    packet_id = struct.unpack("!H", body[:2])[0]
    reason = body[2] if len(body) > 2 else 0
    props = decode_properties(body, 3)[0] if len(body) > 3 else Props()
    return packet_id, reason, props


def parse_suback5(body):
    """(packet id, Props, [reason codes]) of a v5 SUBACK or UNSUBACK body."""
    packet_id = struct.unpack("!H", body[:2])[0]
    props, i = decode_properties(body, 2)
    return packet_id, props, list(body[i:])


def parse_disconnect5(body):
    """(reason code, Props) of a v5 DISCONNECT body (empty: normal disconnection)."""
    reason = body[0] if body else 0
    props = decode_properties(body, 1)[0] if len(body) > 1 else Props()
    return reason, props


PACKET_NAMES = {CONNECT: "CONNECT", CONNACK: "CONNACK", PUBLISH: "PUBLISH", PUBACK: "PUBACK",
                PUBREC: "PUBREC", PUBREL: "PUBREL", PUBCOMP: "PUBCOMP",
                SUBSCRIBE: "SUBSCRIBE", SUBACK: "SUBACK", UNSUBSCRIBE: "UNSUBSCRIBE",
                UNSUBACK: "UNSUBACK", PINGREQ: "PINGREQ", PINGRESP: "PINGRESP",
                DISCONNECT: "DISCONNECT", AUTH: "AUTH"}


def describe_packet(p):
    ptype, flags, body = p
    return "%s(flags=0x%x, body=%s)" % (PACKET_NAMES.get(ptype, ptype), flags,
                                        bytes(body[:64]).hex())


class RawClient5(RawClient):
    """A RawClient with MQTT 5.0 helpers; every method returns what the broker sent."""

    def connect5(self, **kwargs):
        """Sends a v5 CONNECT (connect5_packet arguments); returns (session_present, reason,
        Props) of the CONNACK."""
        self.send(connect5_packet(**kwargs))
        ptype, _, body = self.read_packet()
        assert ptype == CONNACK, describe_packet((ptype, _, body))
        return parse_connack5(body)

    def read_packet_within(self, timeout):
        """The next packet, or None when none arrives within timeout seconds."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            return self.read_packet()
        except socket.timeout:
            return None
        finally:
            self.sock.settimeout(old)

    def expect(self, ptype, timeout=5.0):
        """The next packet, which must be of type ptype; returns (flags, body)."""
        p = self.read_packet_within(timeout)
        assert p is not None, "no %s within %.1f s" % (PACKET_NAMES[ptype], timeout)
        assert p[0] == ptype, "expected %s, got %s" % (PACKET_NAMES[ptype], describe_packet(p))
        return p[1], p[2]

    def subscribe5(self, packet_id, topics, properties=(), timeout=5.0):
        """topics: [(filter, options byte)]; returns the SUBACK's reason codes."""
        self.send(subscribe5_packet(packet_id, topics, properties))
        _, body = self.expect(SUBACK, timeout)
        pid, _, codes = parse_suback5(body)
        assert pid == packet_id, (pid, packet_id)
        return codes

    def unsubscribe5(self, packet_id, filters, timeout=5.0):
        self.send(unsubscribe5_packet(packet_id, filters))
        _, body = self.expect(UNSUBACK, timeout)
        pid, _, codes = parse_suback5(body)
        assert pid == packet_id, (pid, packet_id)
        return codes

    def next_publish(self, timeout=5.0):
        """The next PUBLISH (Publish5), or None when none arrives within timeout seconds."""
        p = self.read_packet_within(timeout)
        if p is None:
            return None
        assert p[0] == PUBLISH, "expected PUBLISH, got %s" % describe_packet(p)
        return parse_publish5(p[1], p[2])

    def packets_until_closed(self, timeout=5.0):
        """Every packet the broker sends until it closes the connection; AssertionError when it
        is still open after timeout seconds."""
        deadline = time.monotonic() + timeout
        out = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("connection still open after %.1f s; got %s"
                                     % (timeout, [describe_packet(p) for p in out]))
            try:
                p = self.read_packet_within(left)
            except (EOFError, ConnectionResetError, BrokenPipeError):
                return out
            if p is not None:
                out.append(p)

    def drop(self):
        """Closes the socket without DISCONNECT."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close()


class Client5(Client):
    """Client for MQTT 5.0: paho's v5 callbacks, clean start instead of clean session, the
    CONNACK's reason code and properties, SUBACK/UNSUBACK reason codes."""

    def __init__(self, port, client_id="", clean_start=True, session_expiry=None, username="guest",
                 password="guest", will=None, will_properties=None, keepalive=60,
                 connect_properties=None, websocket_path=None):
        self.port = port
        self.keepalive = keepalive
        self.clean_start = clean_start
        self.c = paho.Client(client_id=client_id, protocol=paho.MQTTv5,
                             transport="websockets" if websocket_path else "tcp")
        if websocket_path:
            self.c.ws_set_options(path=websocket_path)
        if username is not None or password is not None:
            self.c.username_pw_set(username, password)
        if will is not None:
            topic, payload, qos, retain = will
            self.c.will_set(topic, payload, qos, retain, properties=will_properties)
        props = connect_properties
        if session_expiry is not None:
            props = props or Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = session_expiry
        self.connect_properties = props
        self.messages = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.rc = None
        self.session_present = None
        self.connack_properties = None
        self.disconnect_reason = None
        self.subacks = {}
        self.suback_event = threading.Condition()
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda client, userdata, msg: self.messages.put(msg)
        self.c.on_disconnect = self._on_disconnect
        self.c.on_subscribe = self._on_subscribe

    def _on_connect(self, client, userdata, flags, reason, properties):
        self.rc = reason if isinstance(reason, int) else reason.value
        self.connack_properties = properties
        self.session_present = bool(flags.get("session present"))
        self.connected.set()

    def _on_disconnect(self, client, userdata, reason, properties=None):
        self.disconnect_reason = reason
        self.disconnected.set()
        self.connected.set()
        client.loop_stop()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        with self.suback_event:
            self.subacks[mid] = [rc.value for rc in reason_codes]
            self.suback_event.notify_all()

    def connect(self, timeout=10.0):
        """Connects; returns the CONNACK reason code (None: closed without a CONNACK)."""
        self.c.connect("127.0.0.1", self.port, self.keepalive, clean_start=self.clean_start,
                       properties=self.connect_properties)
        self.c.loop_start()
        if not self.connected.wait(timeout):
            raise AssertionError("no CONNACK within %.0f s" % timeout)
        return self.rc

    def subscribe(self, topic, qos=0, options=None, subscription_id=None, timeout=10.0):
        """One filter (qos, or options: a SubscribeOptions) or a list of (filter,
        SubscribeOptions); returns the SUBACK reason codes."""
        props = None
        if subscription_id is not None:
            props = Properties(PacketTypes.SUBSCRIBE)
            props.SubscriptionIdentifier = subscription_id
        if isinstance(topic, list):
            rc, mid = self.c.subscribe(topic, properties=props)
        else:
            rc, mid = self.c.subscribe(topic, qos=qos, options=options, properties=props)
        assert rc == paho.MQTT_ERR_SUCCESS, rc
        return self.await_suback(mid, timeout)

    def unsubscribe(self, topic, timeout=10.0):
        """Returns the UNSUBACK reason codes (a list)."""
        done = threading.Event()
        got = []

        def on_unsubscribe(client, userdata, mid, properties, reason_codes):
            codes = reason_codes if isinstance(reason_codes, list) else [reason_codes]
            got.extend(rc.value for rc in codes)
            done.set()

        self.c.on_unsubscribe = on_unsubscribe
        self.c.unsubscribe(topic)
        assert done.wait(timeout), "no UNSUBACK"
        return got

    def publish(self, topic, payload, qos=0, retain=False, properties=None, timeout=10.0,
                **props):
        """Publishes (for QoS 1 waits for the PUBACK). properties: a paho Properties, or
        keyword arguments named as paho's attributes (ContentType=..., UserProperty=[...])."""
        if props:
            properties = properties or Properties(PacketTypes.PUBLISH)
            for k, v in props.items():
                setattr(properties, k, v)
        info = self.c.publish(topic, payload, qos, retain, properties=properties)
        info.wait_for_publish(timeout)
        assert info.is_published(), "publish of %r not acknowledged" % (topic,)

    def disconnect(self, reason=None, properties=None):
        """DISCONNECT with a reason code (int) and properties (paho Properties)."""
        if not self.disconnected.is_set():
            rc = None if reason is None else ReasonCodes(PacketTypes.DISCONNECT,
                                                         identifier=reason)
            self.c.disconnect(reasoncode=rc, properties=properties)
            self.disconnected.wait(10)
        self.c.loop_stop()


def message_properties(msg):
    """{paho attribute name: value} of a received v5 message's properties (empty if none):
    ContentType, CorrelationData (bytes), ResponseTopic, UserProperty ([(k, v)]),
    SubscriptionIdentifier ([ids]), MessageExpiryInterval, PayloadFormatIndicator, ..."""
    props = getattr(msg, "properties", None)
    if props is None:
        return {}
    out = {}
    for name in props.names:
        attr = name.replace(" ", "")
        if hasattr(props, attr):
            out[attr] = getattr(props, attr)
    return out
