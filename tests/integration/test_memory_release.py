"""Memory goes back to the operating system once a big queue is gone (README "Memory"):

* a queue of 3.5 million 16-byte messages that is deleted;
* the same queue drained by a consumer that acks.

Each test starts its own broker, reads its idle RSS (VmRSS in /proc/<pid>/status), fills one queue
until the broker's RSS has grown by well over 100 MB, deletes or drains it, and then waits (30 s at
most: the bound only keeps a regression from hanging the suite) for RSS to come back within
30 MB of idle. Before the broker gave freed heap back (memory_trimmer.h) RSS stayed at 400-500 MB
after a delete, until restart.

Publishing and draining millions of messages through pika would take minutes, so both sides are
raw clients (rawamqp.py): the publisher writes pre-encoded basic.publish frames, and the consumer
reads its socket without decoding the deliveries, acking them all now and then with
basic.ack(delivery_tag=0, multiple=true). Counts come from the broker (queue.declare-ok,
queue.delete-ok), never from timing.
"""
import socket
import struct
import time

import pika
import pytest

import rawamqp
from amqp_helpers import params, queue_depth, unique, wait_until
from rawamqp import BASIC_ACK, BASIC_PUBLISH, bits, method_frame, shortstr

MESSAGES = 3_500_000  # 16-byte bodies: about 50 bytes of broker memory each
BODY = b"0123456789abcdef"
MIN_GROWTH = 100 << 20  # what the full queue must add to RSS for the test to mean anything
SLACK = 30 << 20  # RSS after the release must be within this of idle
DEADLINE = 30.0  # for RSS to come back
FILL_DEADLINE = 240.0  # for the broker to take in (or hand out) every message, on a busy machine


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


def mb(n):
    return "%.0f MB" % (n / 1048576.0)


def raw_client(broker):
    c = rawamqp.RawClient(broker.host, broker.port, timeout=FILL_DEADLINE)
    c.handshake(heartbeat=0)
    c.channel_open(1)
    return c


def publish_many(broker, queue, n):
    """n basic.publish of BODY to `queue` on one raw connection, pipelined; returns once written
    (the broker may still be reading them)."""
    one = (method_frame(1, BASIC_PUBLISH, struct.pack(">H", 0) + shortstr("") + shortstr(queue)
                        + bits(False, False))
           + rawamqp.content_header_frame(1, len(BODY)) + rawamqp.body_frame(1, BODY))
    per_write = 10000
    chunk = one * per_write
    c = raw_client(broker)
    try:
        for _ in range(n // per_write):
            c.send(chunk)
        c.send(one * (n % per_write))
    except BaseException:
        c.close_socket()
        raise
    return c


def drain_acking(broker, queue, observer):
    """Consumes `queue` until the broker reports it empty, acking everything delivered so far
    after every MB read and whenever the socket goes quiet; then closes the connection (after a
    last ack-all, which the broker handles first: frames are handled in order)."""
    c = raw_client(broker)
    c.basic_qos(1, 20000)
    c.basic_consume(1, queue)
    ack_all = method_frame(1, BASIC_ACK, struct.pack(">Q", 0) + bits(True))
    sock = c.sock
    sock.settimeout(0.05)
    unacked_bytes = len(c.buffer)
    deadline = time.monotonic() + FILL_DEADLINE
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 20)
            assert chunk, "the broker closed the consumer's connection"
            unacked_bytes += len(chunk)
            if unacked_bytes < 1 << 20:
                continue
        except socket.timeout:
            if queue_depth(observer, queue) == 0:
                break
        sock.sendall(ack_all)
        unacked_bytes = 0
    else:
        raise AssertionError("queue %s not drained within %.0f s" % (queue, FILL_DEADLINE))
    # Everything was handed out: ack it all, close, and read (discarding) up to the broker's
    # close of the socket.
    sock.sendall(ack_all)
    sock.sendall(method_frame(0, rawamqp.CONNECTION_CLOSE,
                              struct.pack(">H", 200) + shortstr("done") + struct.pack(">HH", 0, 0)))
    sock.settimeout(FILL_DEADLINE)
    while sock.recv(1 << 20):
        pass
    c.close_socket()


def fill(broker, observer, queue, pid):
    """Declares `queue`, publishes MESSAGES into it and waits until the broker holds them all;
    returns (idle RSS, RSS with the queue full)."""
    observer.queue_declare(queue)
    idle = rss(pid)
    publisher = publish_many(broker, queue, MESSAGES)
    try:
        depth = wait_until(lambda: queue_depth(observer, queue) == MESSAGES, timeout=FILL_DEADLINE,
                           interval=0.5)
        assert depth, "the broker holds %d of %d messages after %.0f s" % (
            queue_depth(observer, queue), MESSAGES, FILL_DEADLINE)
    finally:
        publisher.close_socket()
    full = rss(pid)
    # The control: the queue really held that much (else coming back proves nothing).
    assert full - idle >= MIN_GROWTH, "RSS %s idle, %s with %d messages queued" % (
        mb(idle), mb(full), MESSAGES)
    return idle, full


def assert_rss_returns(broker, pid, idle, full, what):
    samples = []

    def back():
        samples.append(rss(pid))
        return samples[-1] <= idle + SLACK

    if not wait_until(back, timeout=DEADLINE, interval=0.5):
        memory_log = [line.rstrip() for line in broker.log if "memory" in line]
        raise AssertionError(
            "RSS after %s stays at %s (idle %s, %s with the queue full; limit idle + %s); "
            "samples every 0.5 s: %s; broker log: %s" % (
                what, mb(samples[-1]), mb(idle), mb(full), mb(SLACK),
                " ".join(mb(s) for s in samples[::4]), memory_log[-5:]))


@pytest.mark.timeout(300)
def test_rss_returns_to_idle_after_a_big_queue_is_deleted(warren_factory):
    broker = warren_factory()
    pid = broker.process.pid
    conn = pika.BlockingConnection(params(broker.port))
    try:
        ch = conn.channel()
        queue = unique("mem-delete")
        idle, full = fill(broker, ch, queue, pid)
        deleted = ch.queue_delete(queue)
        assert deleted.method.message_count == MESSAGES
        assert_rss_returns(broker, pid, idle, full, "queue.delete")
        # The broker is still serving: a queue declared after the release is usable.
        again = ch.queue_declare(unique("mem-after"), exclusive=True).method.queue
        ch.basic_publish("", again, b"x")
        assert wait_until(lambda: queue_depth(ch, again) == 1, timeout=30)
    finally:
        conn.close()


@pytest.mark.timeout(300)
def test_rss_returns_to_idle_after_a_big_queue_is_drained_by_a_consumer(warren_factory):
    broker = warren_factory()
    pid = broker.process.pid
    conn = pika.BlockingConnection(params(broker.port))
    try:
        ch = conn.channel()
        queue = unique("mem-drain")
        idle, full = fill(broker, ch, queue, pid)
        drain_acking(broker, queue, ch)
        # The consumer's connection is gone: anything it had not acked would be back by now.
        assert queue_depth(ch, queue) == 0
        assert_rss_returns(broker, pid, idle, full, "the drain")
    finally:
        conn.close()
