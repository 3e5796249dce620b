"""Bugs fixed when deliveries moved into broker::DeliveryTracker (commit 7e2d274), each with a
test that fails on the code before it:

* a channel with a global prefetch (basic.qos global=true) whose consumer was cancelled with
  unacked deliveries never got that credit back when they were acked, so later consumers on the
  channel received nothing;
* one long-unacked delivery kept every later, acked delivery of its channel in memory (the
  settled entries were only dropped from the front), so a channel that holds one message while
  it acks many others grew without bound.

The third fix (a publisher paused by a queue and resumed by the 100 ms stall breaker was
registered with the queue again at each new pause) has no observable effect on the wire; it is
covered by the unit test PublisherPausedAgainAfterTheStallBreakerIsRegisteredOnce.
"""

import struct

import pytest

import rawamqp
from amqp_helpers import Collector, queue_depth, settle, wait_until

DEADLINE = 30


def fill(ch, q, n):
    for i in range(n):
        ch.basic_publish("", q, b"m%d" % i)
    settle(ch)


def test_global_prefetch_held_by_a_cancelled_consumer_is_released_by_its_acks(connection):
    """As RabbitMQ 3.10.8: a cancelled consumer's unacked deliveries keep counting against the
    channel-wide prefetch (a new consumer on the channel gets nothing), and acking them frees
    it (the new consumer receives)."""
    setup = connection.channel()
    q = setup.queue_declare("", exclusive=True).method.queue
    fill(setup, q, 6)
    ch = connection.channel()
    ch.basic_qos(prefetch_count=2, global_qos=True)
    first = Collector()
    tag = ch.basic_consume(q, first)
    assert wait_until(lambda: len(first) == 2, timeout=DEADLINE, connection=connection)
    assert queue_depth(setup, q) == 4
    ch.basic_cancel(tag)
    second = Collector()
    ch.basic_consume(q, second)
    settle(ch)
    assert queue_depth(setup, q) == 4  # still held by the cancelled consumer's deliveries
    connection.process_data_events(time_limit=0)
    assert len(second) == 0
    ch.basic_ack(0, multiple=True)  # the cancelled consumer's two deliveries
    assert wait_until(lambda: len(second) == 2, timeout=DEADLINE, connection=connection)
    assert queue_depth(setup, q) == 2
    assert [m[2] for m in first.messages + second.messages] == [b"m0", b"m1", b"m2", b"m3"]
    # and the credit keeps cycling
    ch.basic_ack(second.messages[-1][0].delivery_tag, multiple=True)
    assert wait_until(lambda: len(second) == 4, timeout=DEADLINE, connection=connection)
    assert queue_depth(setup, q) == 0


def test_global_prefetch_after_cancel_then_basic_get_acks(connection):
    """The same credit, released through acks of basic.get deliveries mixed in (which never
    count against the prefetch)."""
    setup = connection.channel()
    q = setup.queue_declare("", exclusive=True).method.queue
    fill(setup, q, 5)
    ch = connection.channel()
    ch.basic_qos(prefetch_count=1, global_qos=True)
    first = Collector()
    tag = ch.basic_consume(q, first)
    assert wait_until(lambda: len(first) == 1, timeout=DEADLINE, connection=connection)
    ch.basic_cancel(tag)
    method, _, body = ch.basic_get(q)  # not limited by the prefetch
    assert body == b"m1"
    second = Collector()
    ch.basic_consume(q, second)
    ch.basic_ack(method.delivery_tag)  # the get: frees nothing
    settle(ch)
    assert queue_depth(setup, q) == 3
    ch.basic_ack(first.messages[0][0].delivery_tag)  # the cancelled consumer's: frees one
    assert wait_until(lambda: len(second) == 1, timeout=DEADLINE, connection=connection)
    assert queue_depth(setup, q) == 2


# ---------------------------------------------------------------------------
# One long-unacked delivery among many acked ones.

BASIC_GET = (60, 70)
BASIC_GET_OK = (60, 71)
BASIC_NACK = (60, 120)
WARM_UP = 50000
MEASURED = 500000
BATCH = 1000
# The old code kept an entry of some 65 bytes per settled delivery: MEASURED of them, over
# 30 MiB. Now the broker does not grow at all (allocator noise aside).
GROWTH_LIMIT = 10 << 20


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


class Cycler(object):
    """A raw client on one channel: publishes to a queue and takes the messages back with
    basic.get (acks required), BATCH at a time, pipelined."""

    def __init__(self, port, queue):
        self.c = rawamqp.RawClient("127.0.0.1", port, timeout=DEADLINE)
        self.c.handshake()
        self.c.channel_open(1)
        self.c.queue_declare(1, queue)
        self.queue = queue
        self.publish_head = rawamqp.method_frame(
            1, rawamqp.BASIC_PUBLISH, struct.pack(">H", 0) + rawamqp.shortstr("")
            + rawamqp.shortstr(queue) + rawamqp.bits(False, False))
        self.get = rawamqp.method_frame(1, BASIC_GET, struct.pack(">H", 0)
                                        + rawamqp.shortstr(queue) + rawamqp.bits(False))

    def publish(self, bodies):
        self.c.send(b"".join(self.publish_head + rawamqp.content_header_frame(1, len(b))
                             + rawamqp.body_frame(1, b) for b in bodies))

    def get_many(self, n):
        """n basic.get (ack required); returns [(delivery_tag, redelivered, body)]."""
        self.c.send(self.get * n)
        out = []
        for _ in range(n):
            frm = self.c.read_method(timeout=DEADLINE)
            assert frm.class_method == BASIC_GET_OK, frm
            tag = frm.args.longlong()
            redelivered = bool(frm.args.octet() & 1)
            header = self.c.read_frame(timeout=DEADLINE)
            size = struct.unpack(">Q", header.payload[4:12])[0]
            body = b""
            while len(body) < size:
                body += self.c.read_frame(timeout=DEADLINE).payload
            out.append((tag, redelivered, body))
        return out

    def ack_each(self, tags):
        self.c.send(b"".join(rawamqp.method_frame(1, rawamqp.BASIC_ACK, struct.pack(">Q", t)
                                                  + rawamqp.bits(False)) for t in tags))

    def cycle(self, n):
        done = 0
        while done < n:
            k = min(BATCH, n - done)
            self.publish([b"x"] * k)
            got = self.get_many(k)
            self.ack_each([t for t, _, _ in got])
            done += k
        self.round_trip()

    def round_trip(self):
        """A passive declare: every earlier frame of the channel has been handled when its
        declare-ok arrives (a 406 for a bad ack would arrive instead)."""
        return self.c.queue_declare(1, self.queue, passive=True)


@pytest.mark.timeout(600)
def test_one_long_unacked_delivery_does_not_keep_the_acked_ones(warren_factory):
    b = warren_factory()
    cy = Cycler(b.port, "held-one")
    try:
        cy.publish([b"held"])
        [(held_tag, _, body)] = cy.get_many(1)
        assert body == b"held"
        cy.cycle(WARM_UP)
        before = rss_bytes(b.pid)
        cy.cycle(MEASURED)
        after = rss_bytes(b.pid)
        assert after - before < GROWTH_LIMIT, (
            "the broker grew by %d KiB over %d acked deliveries behind one unacked one"
            % ((after - before) >> 10, MEASURED))
        # The held delivery is still known, with its message: nack it back into the queue.
        assert cy.round_trip()[1] == 0
        cy.c.send_method(1, BASIC_NACK, struct.pack(">Q", held_tag) + rawamqp.bits(False, True))
        assert cy.round_trip()[1] == 1
        [(tag, redelivered, body)] = cy.get_many(1)
        assert (body, redelivered) == (b"held", True)
        assert tag == held_tag + WARM_UP + MEASURED + 1
    finally:
        cy.c.close_socket()
