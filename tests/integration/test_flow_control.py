"""Flow control (README "Flow control"), end to end with real clients:

* per-queue flow control: while a queue that has consumers holds 20,000 ready messages, the
  connections publishing into it are not read until it drains to 10,000;
* its two deadlock exceptions: a connection that consumes from the queue itself keeps being
  read, and a paused publisher is read again when the queue makes no progress for 100 ms;
* the output cap: a consumer whose socket has 1 MiB unsent gets no new deliveries until it
  drains, while the other consumers of the queue keep receiving;
* the memory alarm: publishers get connection.blocked and are not read, consumers keep draining.

Nothing here depends on how fast the machine is. Pauses are observed as requests that get no
reply while the queue stays at the mark (and the same request is answered once the pause ends),
resumes as replies that arrive within a generous deadline, and counts are set by the protocol
(20,000, the watermark), not by throughput. Publishers and stuck consumers are raw clients
(flow_helpers.py), which can leave a socket unread or write into one the broker does not read.
"""
import socket
import threading
import time

import pika
import pytest

import flow_helpers as fh
import rawamqp
from amqp_helpers import params, queue_depth, settle, unique, wait_until

HIGH_WATER = 20000  # ready messages that pause publishers (queue with consumers)
LOW_WATER = 10000  # ... until the queue drains to this
DEADLINE = 90.0  # generous bound for every condition we wait for
# Stall resumes (exception 2) let a paused publisher add one message per 100 ms without
# progress; the bounds below allow for minutes of that.
SLACK = 1000


def observer(broker):
    conn = pika.BlockingConnection(params(broker.port))
    return conn, conn.channel()


def depth_reaches(ch, q, n):
    return wait_until(lambda: queue_depth(ch, q) >= n, timeout=DEADLINE, interval=0.1)


# ---------------------------------------------------------------------------
# Per-queue flow control


@pytest.mark.timeout(400)
def test_publisher_is_not_read_above_the_mark_until_the_queue_drains(warren_factory):
    broker = warren_factory()
    q = unique("flow-paused")
    oconn, och = observer(broker)
    och.queue_declare(q)
    # The only consumer holds one unacked message and never acks: ready messages pile up.
    stuck = fh.consumer(broker, q, prefetch=1)
    total = HIGH_WATER + 5000
    pub = fh.connect(broker)
    writer = fh.Writer(pub, fh.publish_frames(1, q, range(total)),
                       tail=fh.passive_declare_frame(1, q))
    getter = fh.connect(broker)
    try:
        deliver, _, body = stuck.read_delivery(timeout=DEADLINE)
        assert body == b"0"
        # Paused at the mark: 5,000 messages and a passive declare wait unread, the queue stays at
        # 20,000 (plus what stall resumes let in, one message each) and the declare gets no reply.
        assert depth_reaches(och, q, HIGH_WATER - 1), queue_depth(och, q)
        end = time.monotonic() + 3
        while time.monotonic() < end:
            depth = queue_depth(och, q)
            assert depth <= HIGH_WATER + SLACK, "publisher read past the mark: %d" % depth
            assert not pub.received_anything(0.1), \
                "the paused publisher's request was answered (depth %d)" % queue_depth(och, q)
        # Drain below the low-water mark (from another connection): the publisher is read again,
        # its remaining messages arrive, then the reply (nothing is lost, order is kept).
        drain = queue_depth(och, q) - (LOW_WATER - 1000)
        bodies = fh.get_many(getter, 1, q, drain)
        assert bodies == [b"%d" % i for i in range(1, drain + 1)]
        frm, _ = fh.read_until(pub, rawamqp.QUEUE_DECLARE_OK, 1, DEADLINE)
        count_at_reply, consumers = fh.declare_ok_counts(frm)
        assert consumers == 1
        assert total - 1 - drain <= count_at_reply < HIGH_WATER, count_at_reply
        assert writer.done.is_set() and not writer.errors, writer.errors
        assert queue_depth(och, q) == total - 1 - drain
        rest = fh.get_many(getter, 1, q, total - 1 - drain)
        assert rest == [b"%d" % i for i in range(drain + 1, total)]
    finally:
        writer.close()
        for c in (pub, stuck, getter):
            c.close()
        och.queue_delete(q)
        oconn.close()


@pytest.mark.timeout(400)
def test_connection_consuming_from_the_queue_keeps_being_read(warren_factory):
    """Exception 1. The connection holds the queue's only consumer (one delivery, never acked) and
    publishes 5,000 messages past the mark, then a passive declare. Were it paused like any
    publisher, only stall resumes would read it, one message per 100 ms: the reply would need
    minutes. A plain publisher to the same queue meanwhile is paused."""
    broker = warren_factory()
    q = unique("flow-self")
    oconn, och = observer(broker)
    och.queue_declare(q)
    both = fh.consumer(broker, q, prefetch=1, channels=(1, 2))
    total = HIGH_WATER + 5000
    writer = fh.Writer(both, fh.publish_frames(2, q, range(total)),
                       tail=fh.passive_declare_frame(2, q))
    other = fh.connect(broker)
    other_writer = None
    try:
        frm, delivered = fh.read_until(both, rawamqp.QUEUE_DECLARE_OK, 2, DEADLINE)
        assert delivered == 1
        # When the broker answered, the queue held everything but the one delivery, with its
        # consumer: far past the mark, and this connection was still read to the end.
        assert fh.declare_ok_counts(frm) == (total - 1, 1)
        assert writer.done.is_set() and not writer.errors, writer.errors
        writer.close()

        # Control: another connection publishing into the same queue is paused (its request
        # gets no reply) while this one keeps being read.
        other_writer = fh.Writer(other, fh.publish_frames(1, q, range(5000)),
                                 tail=fh.passive_declare_frame(1, q))
        assert depth_reaches(och, q, total)  # the other publisher got in (and paused)
        writer = fh.Writer(both, fh.publish_frames(2, q, range(3000)),
                           tail=fh.passive_declare_frame(2, q))
        frm, _ = fh.read_until(both, rawamqp.QUEUE_DECLARE_OK, 2, DEADLINE)
        count, _ = fh.declare_ok_counts(frm)
        assert count >= total - 1 + 3000, count
        assert not other.received_anything(0.5), "the other publisher was not paused"
        # ... until the queue drains (a purge): then it is read again.
        och.queue_purge(q)
        frm, _ = fh.read_until(other, rawamqp.QUEUE_DECLARE_OK, 1, DEADLINE)
        assert fh.declare_ok_counts(frm)[0] < 5000
        assert other_writer.done.is_set()
    finally:
        writer.close()
        if other_writer is not None:
            other_writer.close()
        both.close()
        other.close()
        och.queue_delete(q)
        oconn.close()


@pytest.mark.timeout(400)
def test_paused_publisher_resumes_when_the_queue_makes_no_progress(warren_factory):
    """Exception 2. The only consumer holds one message and never acks, so the queue can never
    drain to the low-water mark: a publisher past the mark is read again only because the queue
    made no progress (the broker logs each such resume at debug level)."""
    broker = warren_factory("--log-level", "debug")
    q = unique("flow-stall")
    oconn, och = observer(broker)
    och.queue_declare(q)
    stuck = fh.consumer(broker, q, prefetch=1)
    total = HIGH_WATER + 20
    pub = fh.connect(broker)
    writer = fh.Writer(pub, fh.publish_frames(1, q, range(total)),
                       tail=fh.passive_declare_frame(1, q))
    try:
        deliver, _, body = stuck.read_delivery(timeout=DEADLINE)
        assert body == b"0"
        frm, _ = fh.read_until(pub, rawamqp.QUEUE_DECLARE_OK, 1, DEADLINE)
        # Everything was read, past the mark, with the queue still full and its consumer stuck.
        assert fh.declare_ok_counts(frm) == (total - 1, 1)
        assert writer.done.is_set() and not writer.errors, writer.errors
        # It had been paused, and the stall breaker resumed it.
        assert wait_until(lambda: any("made no progress; resuming" in line
                                      for line in list(broker.log)), timeout=DEADLINE)
        assert queue_depth(och, q) == total - 1
    finally:
        writer.close()
        pub.close()
        stuck.close()
        och.queue_delete(q)
        oconn.close()


@pytest.mark.timeout(400)
def test_publisher_faster_than_consumer_is_paced(warren_factory):
    """pika end to end: a publisher with 30,000 messages and a consumer that starts acking only
    once the queue reached the mark. The backlog never goes far past the mark while the consumer
    works through it, and every message arrives, in order."""
    broker = warren_factory()
    q = unique("paced")
    oconn, och = observer(broker)
    och.queue_declare(q)
    total = HIGH_WATER + 10000
    go = threading.Event()
    stop = threading.Event()
    received = []
    errors = []
    published = threading.Event()

    def consume():
        try:
            conn = pika.BlockingConnection(params(broker.port, heartbeat=0))
            ch = conn.channel()
            ch.basic_qos(prefetch_count=10)
            for method, props, body in ch.consume(q, inactivity_timeout=0.1):
                if stop.is_set() or len(received) == total:
                    break
                if method is None:
                    continue
                go.wait(DEADLINE)
                received.append(body)
                ch.basic_ack(method.delivery_tag)
            ch.cancel()
            conn.close()
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    def publish():
        try:
            conn = pika.BlockingConnection(params(broker.port, heartbeat=0))
            ch = conn.channel()
            for i in range(total):
                if stop.is_set():
                    break
                ch.basic_publish("", q, b"%d" % i)
            settle(ch)
            published.set()
            conn.close()
        except Exception as exc:
            errors.append(exc)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    assert wait_until(lambda: och.queue_declare(q, passive=True).method.consumer_count == 1,
                      timeout=DEADLINE)
    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    try:
        # The consumer holds 10 unacked messages: the publisher is paused once 20,000 are ready.
        assert depth_reaches(och, q, HIGH_WATER - 1), queue_depth(och, q)
        # Held there while nothing is acked (only stall resumes add a message now and then).
        assert not wait_until(lambda: published.is_set()
                              or queue_depth(och, q) > HIGH_WATER + SLACK, timeout=2, interval=0.1)
        go.set()
        max_depth = 0
        deadline = time.monotonic() + 3 * DEADLINE
        while len(received) < total and not errors and time.monotonic() < deadline:
            max_depth = max(max_depth, queue_depth(och, q))
            time.sleep(0.05)
        assert not errors, errors
        assert len(received) == total, len(received)
        assert received == [b"%d" % i for i in range(total)]
        assert max_depth <= HIGH_WATER + SLACK, max_depth
        assert published.wait(DEADLINE)
    finally:
        go.set()
        stop.set()
        consumer.join(DEADLINE)
        publisher.join(DEADLINE)
        och.queue_delete(q)
        oconn.close()


# ---------------------------------------------------------------------------
# Output cap


class _Reader(object):
    """Reads a raw consumer's socket from a thread: indexes of the messages delivered to it, and
    how many queue.declare-ok replies arrived (sync())."""

    def __init__(self, client, queue):
        self.client = client
        self.queue = queue
        self.indexes = []
        self.syncs = 0
        self.errors = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while True:
                frm = self.client.read_frame(timeout=3600)
                if frm.type == rawamqp.FRAME_BODY:
                    with self.cond:
                        self.indexes.append(int(frm.payload[:8]))
                        self.cond.notify_all()
                elif frm.type == rawamqp.FRAME_METHOD and \
                        frm.class_method == rawamqp.QUEUE_DECLARE_OK:
                    with self.cond:
                        self.syncs += 1
                        self.cond.notify_all()
        except Exception as exc:  # closed at the end of the test
            self.errors.append(exc)
            with self.cond:
                self.cond.notify_all()

    def sync(self):
        """Returns once every delivery the broker wrote before now has been read: a declare-ok is
        written after them on the same socket."""
        with self.cond:
            target = self.syncs + 1
        self.client.send(fh.passive_declare_frame(2, self.queue))
        with self.cond:
            assert self.cond.wait_for(lambda: self.syncs >= target or self.errors, DEADLINE)
            assert not self.errors, self.errors
            return list(self.indexes)


@pytest.mark.timeout(400)
def test_consumer_with_output_cap_unsent_gets_nothing_new_while_others_receive(warren_factory):
    broker = warren_factory()
    q = unique("flow-outcap")
    oconn, och = observer(broker)
    och.queue_declare(q)
    size = 64 << 10
    rcvbuf = 32 << 10

    def message(i):
        return b"%08d" % i + b"o" * (size - 8)

    # `stuck` is registered first (round robin starts with it), auto-ack (no prefetch limit),
    # and does not read its socket; its receive buffer is fixed small.
    stuck = fh.consumer(broker, q, no_ack=True, rcvbuf=rcvbuf)
    other = fh.consumer(broker, q, no_ack=True, channels=(1, 2))
    reader = _Reader(other, q)
    # What can be on its way to `stuck` once the broker stops: its receive buffer, the broker's
    # send buffer, the write in flight and the pending output (each under 1 MiB + one message).
    with open("/proc/sys/net/ipv4/tcp_wmem") as f:
        wmem_max = int(f.read().split()[2])
    real_rcvbuf = stuck.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    in_flight_max = real_rcvbuf + wmem_max + 2 * ((1 << 20) + size)
    limit = 2 * (in_flight_max // size) + 200  # without the cap, stuck would get half of them
    published = 0
    run = 0  # messages in a row that all went to `other`
    to_stuck = set()
    try:
        # Publish in small batches until 64 in a row went to `other`, each batch fully dispatched
        # (the queue is empty) and read by `other` before the next.
        while run < 64:
            assert published < limit, \
                "after %d messages `stuck` still gets deliveries: %d so far" % (
                    published, len(to_stuck))
            batch = range(published, published + 8)
            for i in batch:
                och.basic_publish("", q, message(i))
            published += len(batch)
            assert wait_until(lambda: queue_depth(och, q) == 0, timeout=DEADLINE, interval=0.01)
            got = set(reader.sync())
            for i in batch:
                if i in got:
                    run += 1
                else:
                    to_stuck.add(i)
                    run = 0
        # It stopped with about the cap (1 MiB) unsent, not before, and not much later.
        assert len(to_stuck) * size >= 1 << 20, len(to_stuck)
        assert len(to_stuck) * size <= in_flight_max, (len(to_stuck), in_flight_max)
        # Another 64 published now: all go to `other`.
        for i in range(published, published + 64):
            och.basic_publish("", q, message(i))
        published += 64
        assert wait_until(lambda: queue_depth(och, q) == 0, timeout=DEADLINE, interval=0.01)
        got = reader.sync()
        assert set(range(published - 64, published)) <= set(got)
        # `stuck` drains its socket: exactly the messages that were not given to `other`.
        drained = []
        while len(drained) < len(to_stuck):
            _, _, body = stuck.read_delivery(timeout=DEADLINE)
            drained.append(int(body[:8]))
        assert drained == sorted(to_stuck)
        # ... and it receives again (round robin, once its output is written).
        before = published
        while True:
            assert published < before + 200, "`stuck` gets nothing after draining its socket"
            och.basic_publish("", q, message(published))
            published += 1
            settle(och)
            if stuck.received_anything(0.2):
                break
        _, _, body = stuck.read_delivery(timeout=DEADLINE)
        assert before <= int(body[:8]) < published
    finally:
        stuck.close()
        other.close()
        och.queue_delete(q)
        oconn.close()


# ---------------------------------------------------------------------------
# Memory alarm


def test_memory_alarm_blocks_publisher_and_consumers_still_drain(warren_factory):
    watermark = 4 << 20
    broker = warren_factory("--vm-memory-high-watermark-absolute", str(watermark))
    events = []
    pub = pika.BlockingConnection(params(broker.port, blocked_connection_timeout=None))
    pub.add_on_connection_blocked_callback(lambda conn, m: events.append(("blocked", m.method.reason)))
    pub.add_on_connection_unblocked_callback(lambda conn, m: events.append(("unblocked",)))
    ch = pub.channel()
    q = unique("alarm")
    ch.queue_declare(q)
    body = b"x" * 16384
    # Past the 4 MiB watermark the broker blocks this connection; stop once told so (a blocked
    # connection is not read, so further publishes would only fill the socket buffers). The
    # bound is four times the watermark: never reached unless nothing blocks.
    published = 0
    while published < 4 * watermark // len(body) and ("blocked", "low on memory") not in events:
        ch.basic_publish("", q, body)
        published += 1
        pub.process_data_events(0)
    assert wait_until(lambda: ("blocked", "low on memory") in events, timeout=DEADLINE,
                      connection=pub), (published, events)
    # The log is read by a pump thread: give it a moment to see the line.
    assert wait_until(lambda: any("memory alarm set" in line for line in broker.log),
                      timeout=DEADLINE)

    consumer = pika.BlockingConnection(params(broker.port))
    cch = consumer.channel()
    depth_while_blocked = queue_depth(cch, q)
    # The broker stopped reading right after the publish that took message memory past the
    # watermark, so what the queue holds is set by the watermark, not by how fast the client
    # wrote (each message costs its 16 KiB body plus well under 1 KiB of bookkeeping).
    assert (depth_while_blocked - 1) * len(body) <= watermark \
        < depth_while_blocked * (len(body) + 1024), depth_while_blocked
    assert depth_while_blocked <= published
    # Not read while blocked: three more messages stay unread (they arrive after the drain).
    for _ in range(3):
        ch.basic_publish("", q, b"late")
    pub.process_data_events(0)
    assert not wait_until(lambda: queue_depth(cch, q) != depth_while_blocked, timeout=1.0)

    # Another connection drains the queue; the alarm clears and the publisher is unblocked.
    drained = []
    for _ in range(depth_while_blocked):
        method, props, b = cch.basic_get(q, auto_ack=True)
        assert method is not None, len(drained)
        drained.append(b)
    assert drained == [body] * depth_while_blocked
    assert wait_until(lambda: ("unblocked",) in events, timeout=DEADLINE, connection=pub)
    assert wait_until(lambda: any("memory alarm cleared" in line for line in broker.log),
                      timeout=DEADLINE)
    # Read again: what waited in the socket arrives, then what is published now.
    ch.basic_publish("", q, b"after")
    settle(ch)
    rest = []
    while True:
        method, props, b = cch.basic_get(q, auto_ack=True)
        if method is None:
            break
        rest.append(b)
    assert rest == [body] * (published - depth_while_blocked) + [b"late"] * 3 + [b"after"]
    ch.queue_delete(q)
    pub.close()
    consumer.close()
