"""Consumer priorities (basic.consume argument x-priority), as RabbitMQ 3.10.

A queue delivers to its highest-priority consumers while one of them can take a message;
consumers of equal priority share round robin; a consumer that cannot take a message (its
prefetch is full) lets lower-priority ones receive, and gets messages again as soon as it acks.
The default priority is 0; negative priorities and 64-bit ones are allowed. Checked against
RabbitMQ 3.10.8.

Counts are proven by the queue's ready count (a passive declare after the expected deliveries
arrived): deliveries sent before the declare-ok are in the client's hands by then, so the
counts per consumer must add up to what left the queue.
"""

import amqp_helpers
from amqp_helpers import Collector, queue_depth, settle, wait_until

DEADLINE = 30


def fill(ch, q, n, prefix=b"m"):
    for i in range(n):
        ch.basic_publish("", q, prefix + b"%d" % i)
    settle(ch)


def counts(connection, setup, q, collectors, total, published):
    assert wait_until(lambda: sum(len(c) for c in collectors) >= total, timeout=DEADLINE,
                      connection=connection), [len(c) for c in collectors]
    left = queue_depth(setup, q)
    connection.process_data_events(time_limit=0)
    got = [len(c) for c in collectors]
    assert published - left == sum(got), (published, left, got)
    return got


def test_highest_priority_consumer_receives_everything_it_can_take(connection):
    setup = connection.channel()
    q = setup.queue_declare("", exclusive=True).method.queue
    lo, hi = Collector(), Collector()
    ch = connection.channel()
    lo_tag = ch.basic_consume(q, lo, auto_ack=True)  # registered first, priority 0
    hi_tag = ch.basic_consume(q, hi, auto_ack=True, arguments={"x-priority": 10})
    fill(setup, q, 10)
    assert counts(connection, setup, q, [hi, lo], 10, 10) == [10, 0]
    # the positive control: without the high-priority consumer, the other one receives
    ch.basic_cancel(hi_tag)
    fill(setup, q, 3, b"n")
    assert counts(connection, setup, q, [hi, lo], 13, 13) == [10, 3]
    ch.basic_cancel(lo_tag)


def test_blocked_high_priority_consumer_lets_lower_ones_receive(connection):
    """The high-priority consumer's prefetch (2) is full: the rest goes round robin to the two
    low-priority consumers; an ack makes the next message go to the high-priority one again."""
    setup = connection.channel()
    q = setup.queue_declare("", exclusive=True).method.queue
    hi_ch = connection.channel()
    hi_ch.basic_qos(prefetch_count=2)
    hi = Collector()
    hi_ch.basic_consume(q, hi, arguments={"x-priority": 10})
    lo_ch = connection.channel()
    lo_ch.basic_qos(prefetch_count=0)
    lo1, lo2 = Collector(), Collector()
    lo_ch.basic_consume(q, lo1, auto_ack=True)
    lo_ch.basic_consume(q, lo2, auto_ack=True)
    fill(setup, q, 8)
    assert counts(connection, setup, q, [hi, lo1, lo2], 8, 8) == [2, 3, 3]
    assert [m[2] for m in hi.messages] == [b"m0", b"m1"]
    assert sorted(m[2] for m in lo1.messages + lo2.messages) == [b"m%d" % i for i in range(2, 8)]
    # hi is still full: the next one goes to a low-priority consumer
    fill(setup, q, 1, b"n")
    assert counts(connection, setup, q, [hi, lo1, lo2], 9, 9)[0] == 2
    # one ack: exactly one more for hi, the following to the others again
    hi_ch.basic_ack(hi.messages[0][0].delivery_tag)
    settle(hi_ch)
    fill(setup, q, 1, b"x")
    assert wait_until(lambda: len(hi) == 3, timeout=DEADLINE, connection=connection)
    assert hi.messages[2][2] == b"x0"
    fill(setup, q, 1, b"y")
    assert counts(connection, setup, q, [hi, lo1, lo2], 11, 11)[0] == 3


def test_equal_priorities_share_round_robin(connection):
    setup = connection.channel()
    q = setup.queue_declare("", exclusive=True).method.queue
    ch = connection.channel()
    a, b, low = Collector(), Collector(), Collector()
    ch.basic_consume(q, a, auto_ack=True, arguments={"x-priority": 5})
    ch.basic_consume(q, low, auto_ack=True)
    ch.basic_consume(q, b, auto_ack=True, arguments={"x-priority": 5})
    fill(setup, q, 6)
    assert counts(connection, setup, q, [a, b, low], 6, 6) == [3, 3, 0]
    assert [m[2] for m in a.messages] == [b"m0", b"m2", b"m4"]
    assert [m[2] for m in b.messages] == [b"m1", b"m3", b"m5"]


def test_negative_priority_is_below_the_default(connection):
    setup = connection.channel()
    q = setup.queue_declare("", exclusive=True).method.queue
    ch = connection.channel()
    neg, default = Collector(), Collector()
    ch.basic_consume(q, neg, auto_ack=True, arguments={"x-priority": -5})
    default_tag = ch.basic_consume(q, default, auto_ack=True)
    fill(setup, q, 4)
    assert counts(connection, setup, q, [neg, default], 4, 4) == [0, 4]
    ch.basic_cancel(default_tag)
    fill(setup, q, 2, b"n")
    assert counts(connection, setup, q, [neg, default], 6, 6) == [2, 4]


def test_64_bit_priority_ranks_above_32_bit_ones(connection):
    """x-priority may be a long (RabbitMQ keeps any integer); 2**40 outranks 2**31-1."""
    setup = connection.channel()
    q = setup.queue_declare("", exclusive=True).method.queue
    ch = connection.channel()
    big32, big64 = Collector(), Collector()
    ch.basic_consume(q, big32, auto_ack=True, arguments={"x-priority": 2 ** 31 - 1})
    ch.basic_consume(q, big64, auto_ack=True, arguments={"x-priority": 2 ** 40})
    fill(setup, q, 3)
    assert counts(connection, setup, q, [big32, big64], 3, 3) == [0, 3]


def test_priorities_across_channels_and_connections(connect, connection):
    """Priority decides across channels and connections alike."""
    setup = connection.channel()
    q = setup.queue_declare("", exclusive=False).method.queue
    other = None
    try:
        other = connect()
        lo, hi = Collector(), Collector()
        connection.channel().basic_consume(q, lo, auto_ack=True, arguments={"x-priority": 1})
        other.channel().basic_consume(q, hi, auto_ack=True, arguments={"x-priority": 2})
        fill(setup, q, 5)
        assert wait_until(lambda: len(hi) == 5, timeout=DEADLINE, connection=other)
        assert queue_depth(setup, q) == 0
        connection.process_data_events(time_limit=0)
        assert len(lo) == 0
    finally:
        setup.queue_delete(q)
        amqp_helpers.close_quietly(other)
