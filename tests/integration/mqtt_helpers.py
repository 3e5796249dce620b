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

    def __init__(self, port, client_id="", clean_session=True, username=None, password=None,
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


def connect_packet(client_id="", clean=True, keepalive=60, username=None, password=None,
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
