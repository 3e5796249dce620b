"""Raw-client helpers for the flow-control tests (test_flow_control.py).

A paused connection is one whose socket the broker does not read, so these helpers never rely
on a client library that blocks when its writes do not drain: publishers write from a thread on a
dup() of their socket (so a blocked sendall does not hold up reading replies on the original),
and readers can look for bytes without blocking.
"""

import socket
import struct
import threading
import time

import rawamqp
from rawamqp import (FRAME_BODY, FRAME_HEADER, FRAME_METHOD, QUEUE_DECLARE, bits, method_frame,
                     shortstr, table)

BASIC_GET = (60, 70)
BASIC_GET_OK = (60, 71)


class FlowClient(rawamqp.RawClient):
    """rawamqp.RawClient whose socket can get a fixed receive buffer before it connects (set
    before connect, the kernel does not grow it, so the bytes the broker can push into it are
    bounded), and with a long default timeout. Handshake with heartbeat 0: the tests leave
    sockets unread on purpose."""

    def __init__(self, host, port, timeout=90.0, rcvbuf=None):  # noqa: super not called on purpose
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        sock.connect((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.timeout = timeout
        self.buffer = b""
        self.server_properties = None
        self.mechanisms = None
        self.locales = None
        self.version = None
        self.tune = None
        self.frame_max = None
        self.channel_max = None
        self.heartbeat = None

    def received_anything(self, wait):
        """True if any byte arrived (kept in the buffer for read_frame) within `wait` seconds."""
        if self.buffer:
            return True
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(self.timeout)
        if not chunk:
            raise rawamqp.ConnectionClosedByPeer("peer closed the connection")
        self.buffer += chunk
        return True


def connect(broker, rcvbuf=None, channels=(1,)):
    client = FlowClient(broker.host, broker.port, rcvbuf=rcvbuf)
    client.handshake(heartbeat=0)
    for ch in channels:
        client.channel_open(ch)
    return client


def consumer(broker, queue, prefetch=0, no_ack=False, rcvbuf=None, channels=(1,)):
    """A raw connection consuming `queue` on channel 1 (prefetch 0: no limit)."""
    client = connect(broker, rcvbuf=rcvbuf, channels=channels)
    if prefetch:
        client.basic_qos(1, prefetch)
    client.basic_consume(1, queue, no_ack=no_ack)
    return client


def publish_frames(channel, queue, indexes, body=None):
    """basic.publish frames to the default exchange; the body is the index in ASCII unless
    `body` is given."""
    head = method_frame(channel, rawamqp.BASIC_PUBLISH,
                        struct.pack(">H", 0) + shortstr("") + shortstr(queue) + bits(False, False))
    parts = []
    for i in indexes:
        b = body if body is not None else b"%d" % i
        parts.append(head + rawamqp.content_header_frame(channel, len(b))
                     + rawamqp.body_frame(channel, b))
    return b"".join(parts)


def passive_declare_frame(channel, queue):
    return method_frame(channel, QUEUE_DECLARE,
                        struct.pack(">H", 0) + shortstr(queue)
                        + bits(True, False, False, False, False) + table({}))


def read_until(client, class_method, channel, timeout):
    """Reads frames until method `class_method` arrives on `channel`; returns (frame, number of
    basic.deliver frames skipped on the way). Fails on anything else than deliveries (and their
    content) or that method."""
    deadline = time.monotonic() + timeout
    delivered = 0
    while True:
        try:
            frm = client.read_frame(timeout=max(0.01, deadline - time.monotonic()))
        except socket.timeout:
            raise AssertionError("no %s on channel %d within %.0f s (%d deliveries seen)"
                                 % (class_method, channel, timeout, delivered))
        if frm.type in (FRAME_HEADER, FRAME_BODY):
            continue
        assert frm.type == FRAME_METHOD, frm
        if frm.class_method == class_method and frm.channel == channel:
            return frm, delivered
        if frm.class_method == rawamqp.BASIC_DELIVER:
            delivered += 1
            continue
        if frm.class_method in (rawamqp.CONNECTION_CLOSE, rawamqp.CHANNEL_CLOSE):
            raise AssertionError("broker closed instead: %r" % rawamqp.Close(frm))
        raise AssertionError("unexpected frame %r" % frm)


def declare_ok_counts(frm):
    """(message_count, consumer_count) of a queue.declare-ok frame."""
    frm.args.shortstr()
    return frm.args.long(), frm.args.long()


class Writer(object):
    """Writes `data` then `tail` to the client's connection from a thread, through a dup() of its
    socket, so that a broker that stops reading blocks this thread only. done is set when every
    byte was handed to the kernel."""

    def __init__(self, client, data, tail=b"", timeout=300.0):
        self.sock = client.sock.dup()
        self.sock.settimeout(timeout)  # both fds non-blocking under the hood, as Python wants
        self.data = data
        self.tail = tail
        self.done = threading.Event()
        self.errors = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            view = memoryview(self.data)
            for i in range(0, len(view), 65536):
                self.sock.sendall(view[i:i + 65536])
            if self.tail:
                self.sock.sendall(self.tail)
            self.done.set()
        except OSError as exc:
            self.errors.append(exc)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.thread.join(5)


def get_many(client, channel, queue, n, batch=500, timeout=90.0):
    """basic.get (no-ack) n times, pipelined in batches; returns the bodies in order. Fails on
    get-empty."""
    get = method_frame(channel, BASIC_GET, struct.pack(">H", 0) + shortstr(queue) + bits(True))
    bodies = []
    while len(bodies) < n:
        k = min(batch, n - len(bodies))
        client.send(get * k)
        for _ in range(k):
            frm = client.read_method(timeout=timeout)
            assert frm.class_method == BASIC_GET_OK, frm
            header = client.read_frame(timeout=timeout)
            assert header.type == FRAME_HEADER, header
            size = struct.unpack(">Q", header.payload[4:12])[0]
            body = b""
            while len(body) < size:
                frm = client.read_frame(timeout=timeout)
                assert frm.type == FRAME_BODY, frm
                body += frm.payload
            bodies.append(body)
    return bodies
