"""Single active consumer (x-single-active-consumer: true), as RabbitMQ 3.10's classic queues.

Only one consumer of the queue receives: the first one registered. The others wait (they are
counted in consumer_count). When the active consumer goes (basic.cancel, its channel closed,
its connection gone) the next one takes over: the waiting consumer of the highest x-priority,
the earliest registered among equals (rabbit_queue_consumers:get_consumer). When the active
consumer's channel or connection goes, its unacknowledged messages are requeued at their
original places first, so the next consumer receives them before the rest, flagged redelivered.
A basic.cancel alone leaves the cancelled consumer's unacked messages with its channel. An
exclusive basic.consume on such a queue is refused with 403, even when it would be the only
consumer.

Checked against RabbitMQ 3.10.8, with one exception noted in
test_cancelled_active_consumer_hands_over_ready_messages_at_once.

The active consumer's channel and connection are closed with raw clients here: pika's
Channel.close() sends basic.cancel for each consumer first, which is a cancel, not a channel
going away.
"""

import struct

import pika
import pika.exceptions

import amqp_helpers
import rawamqp
from amqp_helpers import Collector, queue_depth, settle, wait_until

DEADLINE = 30
SAC = {"x-single-active-consumer": True}


def declare_sac(ch):
    return ch.queue_declare("", exclusive=True, arguments=SAC).method.queue


def publish(ch, q, bodies):
    for b in bodies:
        ch.basic_publish("", q, b)
    settle(ch)


def raw_consumer(port, queue, prefetch):
    """A raw connection consuming `queue` on channel 1 with a prefetch, manual acks."""
    c = rawamqp.RawClient("127.0.0.1", port, timeout=DEADLINE)
    c.handshake()
    c.channel_open(1)
    c.basic_qos(1, prefetch)
    c.basic_consume(1, queue)
    return c


def bodies(collector):
    return [m[2] for m in collector.messages]


def test_only_the_first_consumer_receives(connection):
    ch = connection.channel()
    q = ch.queue_declare("", arguments=SAC).method.queue
    try:
        collectors = [Collector() for _ in range(3)]
        for c in collectors:
            connection.channel().basic_consume(q, c, auto_ack=True)
        publish(ch, q, [b"m%d" % i for i in range(10)])
        assert wait_until(lambda: len(collectors[0]) == 10, timeout=DEADLINE,
                          connection=connection)
        assert ch.queue_declare(q, passive=True).method.consumer_count == 3
        connection.process_data_events(time_limit=0)
        assert bodies(collectors[0]) == [b"m%d" % i for i in range(10)]
        assert (len(collectors[1]), len(collectors[2])) == (0, 0)
    finally:
        ch.queue_delete(q)


def test_waiting_consumers_get_nothing_while_the_active_one_is_full(connection):
    """The active consumer's prefetch is full: the others do not step in (the messages stay in
    the queue). The positive control: an ack lets the next message through, to the active
    consumer again."""
    ch = connection.channel()
    q = declare_sac(ch)
    first_ch = connection.channel()
    first_ch.basic_qos(prefetch_count=1)
    first = Collector()
    first_ch.basic_consume(q, first)
    waiting = Collector()
    connection.channel().basic_consume(q, waiting, auto_ack=True)
    publish(ch, q, [b"a", b"b", b"c"])
    assert wait_until(lambda: len(first) == 1, timeout=DEADLINE, connection=connection)
    assert queue_depth(ch, q) == 2  # nobody else took them
    connection.process_data_events(time_limit=0)
    assert len(waiting) == 0
    first_ch.basic_ack(first.messages[0][0].delivery_tag)
    assert wait_until(lambda: len(first) == 2, timeout=DEADLINE, connection=connection)
    assert queue_depth(ch, q) == 1
    connection.process_data_events(time_limit=0)
    assert bodies(first) == [b"a", b"b"] and len(waiting) == 0


def test_after_cancel_the_next_registered_consumer_takes_over(connection):
    ch = connection.channel()
    q = declare_sac(ch)
    cs = [Collector() for _ in range(3)]
    chans = [connection.channel() for _ in cs]
    tags = [c_ch.basic_consume(q, c, auto_ack=True) for c_ch, c in zip(chans, cs)]
    publish(ch, q, [b"a0", b"a1"])
    assert wait_until(lambda: len(cs[0]) == 2, timeout=DEADLINE, connection=connection)
    chans[0].basic_cancel(tags[0])
    publish(ch, q, [b"b0", b"b1"])
    assert wait_until(lambda: len(cs[1]) == 2, timeout=DEADLINE, connection=connection)
    chans[1].basic_cancel(tags[1])
    publish(ch, q, [b"c0"])
    assert wait_until(lambda: len(cs[2]) == 1, timeout=DEADLINE, connection=connection)
    assert [bodies(c) for c in cs] == [[b"a0", b"a1"], [b"b0", b"b1"], [b"c0"]]
    assert ch.queue_declare(q, passive=True).method.consumer_count == 1


def test_cancelled_active_consumer_hands_over_ready_messages_at_once(connection):
    """The active consumer (prefetch 1) is cancelled while messages wait: the next consumer
    receives them right away, in order, and the cancelled one keeps its unacked delivery (it
    can still ack it). RabbitMQ 3.10.8 does not deliver them after the cancel, and its queue
    process crashes on the next publish ({badmatch,false} in attempt_delivery); Warren does
    what RabbitMQ documents, as later versions do."""
    ch = connection.channel()
    q = declare_sac(ch)
    first_ch = connection.channel()
    first_ch.basic_qos(prefetch_count=1)
    first = Collector()
    tag = first_ch.basic_consume(q, first)
    second = Collector()
    connection.channel().basic_consume(q, second, auto_ack=True)
    publish(ch, q, [b"m0", b"m1", b"m2"])
    assert wait_until(lambda: len(first) == 1, timeout=DEADLINE, connection=connection)
    first_ch.basic_cancel(tag)
    assert wait_until(lambda: len(second) == 2, timeout=DEADLINE, connection=connection)
    assert bodies(second) == [b"m1", b"m2"]
    first_ch.basic_ack(first.messages[0][0].delivery_tag)  # still its delivery
    settle(first_ch)
    publish(ch, q, [b"m3"])
    assert wait_until(lambda: len(second) == 3, timeout=DEADLINE, connection=connection)
    assert queue_depth(ch, q) == 0


def unacked_then_gone(connection, broker, how):
    """A raw active consumer with prefetch 2 holds m0 and m1 unacked, a pika consumer waits,
    m2..m4 are ready; then the raw consumer's channel or connection goes away (`how`). Returns
    what the waiting consumer received."""
    ch = connection.channel()
    q = ch.queue_declare("", arguments=SAC).method.queue
    raw = raw_consumer(broker.port, q, prefetch=2)
    try:
        waiting = Collector()
        connection.channel().basic_consume(q, waiting, auto_ack=True)
        assert wait_until(lambda: ch.queue_declare(q, passive=True).method.consumer_count == 2,
                          timeout=DEADLINE)
        publish(ch, q, [b"m%d" % i for i in range(5)])
        got = [raw.read_delivery()[2] for _ in range(2)]
        assert got == [b"m0", b"m1"]
        assert queue_depth(ch, q) == 3
        connection.process_data_events(time_limit=0)
        assert len(waiting) == 0
        if how == "channel":
            raw.send_method(1, rawamqp.CHANNEL_CLOSE,
                            struct.pack(">H", 200) + rawamqp.shortstr("bye")
                            + struct.pack(">HH", 0, 0))
            raw.read_method(rawamqp.CHANNEL_CLOSE_OK)
        else:
            raw.close_socket()
        assert wait_until(lambda: len(waiting) == 5, timeout=DEADLINE, connection=connection)
        return waiting
    finally:
        raw.close_socket()
        ch.queue_delete(q)


def test_channel_closed_next_takes_over_with_the_unacked_first(connection, broker):
    waiting = unacked_then_gone(connection, broker, "channel")
    assert bodies(waiting) == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert [m[0].redelivered for m in waiting.messages] == [True, True, False, False, False]


def test_connection_gone_next_takes_over_with_the_unacked_first(connection, broker):
    waiting = unacked_then_gone(connection, broker, "connection")
    assert bodies(waiting) == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert [m[0].redelivered for m in waiting.messages] == [True, True, False, False, False]


def test_pika_connection_closed_next_takes_over(connect, connection):
    """The usual client shutdown (pika cancels, then closes): the next consumer, on another
    connection, receives what is published afterwards."""
    ch = connection.channel()
    q = ch.queue_declare("", arguments=SAC).method.queue
    try:
        other = connect()
        first = Collector()
        other.channel().basic_consume(q, first, auto_ack=True)
        second = Collector()
        connection.channel().basic_consume(q, second, auto_ack=True)
        publish(ch, q, [b"a"])
        assert wait_until(lambda: len(first) == 1, timeout=DEADLINE, connection=other)
        other.close()
        assert wait_until(lambda: ch.queue_declare(q, passive=True).method.consumer_count == 1,
                          timeout=DEADLINE)
        publish(ch, q, [b"b"])
        assert wait_until(lambda: len(second) == 1, timeout=DEADLINE, connection=connection)
        assert bodies(first) == [b"a"] and bodies(second) == [b"b"]
    finally:
        ch.queue_delete(q)


def test_takeover_goes_to_the_highest_priority_waiting_consumer(connection):
    """The first consumer is active whatever its priority; when it goes, the waiting consumer
    with the highest x-priority takes over, the earliest registered among equals (RabbitMQ
    3.10.8 picks the same ones)."""
    ch = connection.channel()
    q = declare_sac(ch)
    prios = [0, 1, 5, 5, 2]
    cs = [Collector() for _ in prios]
    chans = [connection.channel() for _ in prios]
    tags = [c_ch.basic_consume(q, c, auto_ack=True, arguments={"x-priority": p})
            for c_ch, c, p in zip(chans, cs, prios)]
    order = []
    for step, expected in enumerate([0, 2, 3, 4, 1]):
        publish(ch, q, [b"x%d" % step])
        assert wait_until(lambda: len(cs[expected]) == 1, timeout=DEADLINE,
                          connection=connection), (step, [len(c) for c in cs])
        order.append(expected)
        chans[expected].basic_cancel(tags[expected])
    assert [len(c) for c in cs] == [1, 1, 1, 1, 1]
    assert order == [0, 2, 3, 4, 1]


def test_exclusive_consume_is_refused_even_as_the_only_consumer(connection):
    ch = connection.channel()
    q = declare_sac(ch)
    c = connection.channel()
    exc = amqp_helpers.expect_channel_closed(c, connection, c.basic_consume, q,
                                             lambda *a: None, exclusive=True)
    assert exc.reply_code == 403
    assert exc.reply_text == "ACCESS_REFUSED - queue '%s' in vhost '/' in exclusive use" % q
    assert connection.is_open
    # the positive control: a plain consumer is accepted
    connection.channel().basic_consume(q, lambda *a: None)
    assert ch.queue_declare(q, passive=True).method.consumer_count == 1
