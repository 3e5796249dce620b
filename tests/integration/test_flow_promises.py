"""Per-queue flow control and the consumer output cap, end to end (README "Flow control").

* A queue with consumers that holds 20,000 ready messages pauses the connections publishing into
  it (they are not read: bytes wait in the broker's socket) until it drains to 10,000.
* Exception 1: a connection that consumes from that queue itself is never paused.
* Exception 2: a paused publisher is read again when the queue makes no progress (no delivery,
  no get) for the stall interval, so a consumer that waits for that very publisher cannot
  deadlock it.
* A consumer whose socket has 1 MiB unsent gets no new deliveries until it drains, while the
  other consumers of the queue keep receiving.

Publishers are raw clients writing from a thread (a paused publisher's sendall blocks), through
their own socket object so that the reader's short timeouts do not bound the writer's sendall.
Nothing here depends on how fast the machine is: pauses are observed as unread bytes in the
broker's socket and replies that do not come, resumes as replies that do, and counts are bounded
by the protocol (20,000 / 10,000), not by throughput.
"""
import copy
import socket
import struct
import threading
import time

import pika

import rawamqp
from amqp_helpers import params, queue_depth, unique, wait_until
from test_sync_promises import is_method, passive_declare, read_for, read_until, unread_bytes

HIGH_WATER = 20000
LOW_WATER = 10000
DEADLINE = 120.0
BASIC_CANCEL = (60, 30)


class Publisher(object):
    """A raw connection that publishes `count` messages to `queue` from a thread, then sends a
    passive queue.declare on channel 2 (its reply shows the connection was read to the end)."""

    def __init__(self, broker, queue, count, body=b"m", client=None):
        if client is None:
            client = rawamqp.RawClient(broker.host, broker.port, timeout=DEADLINE).handshake()
            client.channel_open(1)
            client.channel_open(2)
        self.client = client
        self.port = client.sock.getsockname()[1]
        self.writer = copy.copy(client)
        self.writer.sock = client.sock.dup()
        self.writer.sock.settimeout(DEADLINE)
        self.queue, self.count, self.body = queue, count, body
        self.errors = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        try:
            frames = b"".join(
                rawamqp.method_frame(1, rawamqp.BASIC_PUBLISH,
                                     struct.pack(">H", 0) + rawamqp.shortstr("")
                                     + rawamqp.shortstr(self.queue) + rawamqp.bits(False, False))
                + rawamqp.content_header_frame(1, len(self.body))
                + rawamqp.body_frame(1, self.body)
                for _ in range(100))
            for _ in range(self.count // 100):
                self.writer.send(frames)
            for _ in range(self.count % 100):
                self.writer.basic_publish(1, "", self.queue, self.body)
            passive_declare(self.writer, 2, self.queue)
            self.done.set()
        except OSError as exc:
            self.errors.append(exc)

    def unread(self, broker):
        return unread_bytes(broker.port, self.port) or 0

    def close(self):
        self.thread.join(DEADLINE)
        self.writer.sock.close()
        self.client.close()


def observer(broker):
    conn = pika.BlockingConnection(params(broker.port))
    return conn, conn.channel()


def raw_consumer(broker, queue, prefetch, no_ack=False, rcvbuf=None):
    """A raw connection consuming `queue` on channel 1 (prefetch 0 = unlimited)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:  # fixed before connect: the kernel does not grow it behind our back
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(DEADLINE)
    sock.connect((broker.host, broker.port))
    c = rawamqp.RawClient.__new__(rawamqp.RawClient)
    c.__dict__.update(sock=sock, timeout=DEADLINE, buffer=b"", server_properties=None,
                      mechanisms=None, locales=None, version=None, tune=None, frame_max=None,
                      channel_max=None, heartbeat=None)
    c.handshake()
    c.channel_open(1)
    if prefetch:
        c.basic_qos(1, prefetch)
    c.basic_consume(1, queue, no_ack=no_ack)
    return c


def test_publisher_is_paused_above_the_high_water_mark_until_the_queue_drains(warren_factory):
    broker = warren_factory()
    q = unique("flow-paused")
    oconn, och = observer(broker)
    och.queue_declare(q)
    # The queue's consumer holds its first delivery until told to go on, so the queue fills to
    # the mark whatever the speeds; then it acks steadily.
    go = threading.Event()
    stop = threading.Event()
    consumed = []

    def consume():
        conn = pika.BlockingConnection(params(broker.port))
        ch = conn.channel()
        ch.basic_qos(prefetch_count=1)
        for method, _, _ in ch.consume(q, inactivity_timeout=0.05):
            if stop.is_set():
                break
            if method is not None:
                go.wait(DEADLINE)
                ch.basic_ack(method.delivery_tag)
                consumed.append(1)
        conn.close()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    assert wait_until(lambda: och.queue_declare(q, passive=True).method.consumer_count == 1,
                      timeout=DEADLINE)
    total = HIGH_WATER + 3000
    pub = Publisher(broker, q, total, body=b"p" * 1024).start()
    try:
        # Paused at the mark: megabytes wait unread in the broker's socket while the queue holds
        # 20,000 (the stall breaker lets one more in per 100 ms without progress, no more).
        assert wait_until(lambda: pub.unread(broker) > 0 and queue_depth(och, q) >= HIGH_WATER - 1,
                          timeout=DEADLINE), (pub.unread(broker), queue_depth(och, q))
        depth = queue_depth(och, q)
        assert depth < HIGH_WATER + 500, depth
        go.set()
        # Read again only once drained to the low-water mark: the reply to the request sent
        # after the last publish reports what the queue held when it was processed, at most
        # 10,000 plus the 3,000 published after the resume (plus stall-breaker strays).
        ok, _ = read_until(pub.client, rawamqp.QUEUE_DECLARE_OK, 2, timeout=DEADLINE)
        ok.args.shortstr()
        count_at_reply = ok.args.long()
        assert count_at_reply <= LOW_WATER + (total - HIGH_WATER) + 500, count_at_reply
        assert pub.done.is_set() and not pub.errors
        assert wait_until(lambda: len(consumed) == total, timeout=DEADLINE), len(consumed)
    finally:
        go.set()
        stop.set()
        consumer.join(DEADLINE)
        pub.close()
        och.queue_delete(q)
        oconn.close()


def test_a_publisher_that_consumes_from_the_queue_is_not_paused(warren_factory):
    """Exception 1: the connection holds the queue's only consumer (one unacked delivery, never
    acked) and publishes 2,000 messages past the mark. Without the exception the stall breaker
    alone would read it one message per 100 ms past the mark: minutes, past the deadline."""
    broker = warren_factory()
    q = unique("flow-self")
    oconn, och = observer(broker)
    och.queue_declare(q)
    client = raw_consumer(broker, q, prefetch=1)
    client.channel_open(2)
    total = HIGH_WATER + 2000
    pub = Publisher(broker, q, total, client=client).start()
    try:
        ok, _ = read_until(client, rawamqp.QUEUE_DECLARE_OK, 2, timeout=DEADLINE)
        ok.args.shortstr()
        assert ok.args.long() == total - 1  # all but the one delivered (unacked) message
        assert pub.done.is_set() and not pub.errors
    finally:
        pub.close()
        och.queue_delete(q)
        oconn.close()


def test_paused_publisher_resumes_when_the_queue_makes_no_progress(warren_factory):
    """Exception 2: the only consumer holds its one prefetched message and never acks, so the
    queue cannot drain; the publisher is read again after each stall interval."""
    broker = warren_factory("--log-level", "debug")
    q = unique("flow-stall")
    oconn, och = observer(broker)
    och.queue_declare(q)
    stuck = raw_consumer(broker, q, prefetch=1)
    total = HIGH_WATER + 20
    pub = Publisher(broker, q, total).start()
    try:
        stuck.read_delivery(timeout=DEADLINE)
        ok, _ = read_until(pub.client, rawamqp.QUEUE_DECLARE_OK, 2, timeout=DEADLINE)
        ok.args.shortstr()
        assert ok.args.long() == total - 1  # everything but the one delivered message
        assert any("made no progress; resuming" in line for line in list(broker.log))
        assert pub.done.is_set() and not pub.errors
    finally:
        pub.close()
        stuck.close()
        och.queue_delete(q)
        oconn.close()


def test_consumer_with_full_output_gets_nothing_new_while_others_receive(warren_factory):
    broker = warren_factory()
    q = unique("flow-outcap")
    oconn, och = observer(broker)
    och.queue_declare(q)
    body = b"o" * (64 << 10)
    count = 600  # 37.5 MiB: round robin without the cap would hand the stuck consumer half
    # The stuck consumer: no-ack (no prefetch limit) and never reads its socket, whose receive
    # buffer is fixed at 64 KiB.
    stuck = raw_consumer(broker, q, prefetch=0, no_ack=True, rcvbuf=64 << 10)
    for _ in range(count):
        och.basic_publish("", q, body)
    # A second consumer takes everything the stuck one is not given; the queue empties.
    conn = pika.BlockingConnection(params(broker.port))
    ch = conn.channel()
    received = []
    ch.basic_consume(q, lambda c, m, p, b: received.append(len(b)), auto_ack=True)
    assert wait_until(lambda: queue_depth(och, q) == 0, timeout=DEADLINE, connection=conn)
    wait_until(lambda: False, timeout=0.5, connection=conn)  # the last deliveries in flight
    conn.close()
    # Everything not stuck in the first consumer's socket path went to the second one.
    stuck_share = count - len(received)
    with open("/proc/sys/net/ipv4/tcp_wmem") as f:
        wmem_max = int(f.read().split()[2])
    cap = (1 << 20) + wmem_max + (64 << 10) + 2 * len(body)
    assert stuck_share * len(body) <= cap, (stuck_share, cap)
    assert len(received) > count // 2
    # Once it drains its socket it receives again.
    got = 0
    try:
        while got < stuck_share:
            stuck.read_delivery(timeout=DEADLINE)
            got += 1
        for _ in range(4):
            och.basic_publish("", q, b"after")
        deliver, _, b = stuck.read_delivery(timeout=DEADLINE)
        assert b == b"after"
    finally:
        stuck.close()
        och.queue_delete(q)
        oconn.close()
