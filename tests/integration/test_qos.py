"""basic.qos prefetch semantics (RabbitMQ flavour) and round-robin dispatch.

RabbitMQ reinterprets the global flag of AMQP 0-9-1:
  * global=False: prefetch_count applies to each consumer created on the
    channel *afterwards* (existing consumers keep their limit).  It also
    removes any channel-wide limit set before (the channel limiter is reset).
  * global=True: prefetch_count is shared by all consumers on the channel
    and takes effect immediately, also for existing consumers.
  * basic.get deliveries do not count against either limit.
"""

from amqp_helpers import Collector, collect, queue_depth, wait_until


def fill(channel, n):
    q = channel.queue_declare("", exclusive=True).method.queue
    for i in range(n):
        channel.basic_publish("", q, b"m%d" % i)
    assert wait_until(lambda: queue_depth(channel, q) == n)
    return q


def counts(connection, collectors, total, linger=0.25):
    """Wait (up to 5 s) until the collectors hold `total` deliveries, then
    keep pumping for `linger` seconds so that any excess shows up too."""
    wait_until(lambda: sum(len(c) for c in collectors) >= total,
               timeout=5, connection=connection)
    collect(connection, linger)
    return tuple(len(c) for c in collectors)


def consume_all(connection, channel, queues):
    collectors = [Collector() for _ in queues]
    for q, c in zip(queues, collectors):
        channel.basic_consume(q, c)
    return collectors


def test_per_consumer_prefetch_limits_each_consumer(connection):
    setup = connection.channel()
    queues = [fill(setup, 10) for _ in range(2)]
    ch = connection.channel()
    ch.basic_qos(prefetch_count=2)
    a, b = consume_all(connection, ch, queues)
    assert counts(connection, [a, b], 4) == (2, 2)
    # acking one lets exactly one more through
    ch.basic_ack(a.messages[0][0].delivery_tag)
    assert counts(connection, [a, b], 5) == (3, 2)
    # delivery tags are per channel: a multiple ack of the highest tag acks
    # everything outstanding, for both consumers
    highest = max(m.delivery_tag for m, _, _ in a.messages + b.messages)
    ch.basic_ack(highest, multiple=True)
    assert counts(connection, [a, b], 9) == (5, 4)


def test_prefetch_one_per_consumer_two_consumers_same_queue(connection):
    setup = connection.channel()
    q = fill(setup, 6)
    ch = connection.channel()
    ch.basic_qos(prefetch_count=1)
    a = Collector()
    b = Collector()
    ch.basic_consume(q, a)
    ch.basic_consume(q, b)
    assert counts(connection, [a, b], 2) == (1, 1)
    assert queue_depth(setup, q) == 4


def test_global_prefetch_is_shared_by_channel_consumers(connection):
    setup = connection.channel()
    queues = [fill(setup, 10) for _ in range(3)]
    ch = connection.channel()
    ch.basic_qos(prefetch_count=3, global_qos=True)
    collectors = consume_all(connection, ch, queues)
    assert sum(counts(connection, collectors, 3)) == 3
    # ack everything received so far: 3 more in total
    ch.basic_ack(0, multiple=True)
    assert sum(counts(connection, collectors, 6)) == 6


def test_per_consumer_then_global_both_apply(connection):
    setup = connection.channel()
    queues = [fill(setup, 10) for _ in range(2)]
    ch = connection.channel()
    ch.basic_qos(prefetch_count=2)
    ch.basic_qos(prefetch_count=3, global_qos=True)
    a, b = consume_all(connection, ch, queues)
    got = counts(connection, [a, b], 3)
    assert got[0] <= 2 and got[1] <= 2
    assert sum(got) == 3


def test_global_then_per_consumer_resets_channel_limit(connection):
    """A non-global basic.qos clears the channel-wide limit set earlier
    (RabbitMQ 3.10 behaviour): each consumer then gets its own 2."""
    setup = connection.channel()
    queues = [fill(setup, 10) for _ in range(2)]
    ch = connection.channel()
    ch.basic_qos(prefetch_count=3, global_qos=True)
    ch.basic_qos(prefetch_count=2)
    a, b = consume_all(connection, ch, queues)
    assert counts(connection, [a, b], 4) == (2, 2)


def test_per_consumer_prefetch_fixed_at_consume_time(connection):
    setup = connection.channel()
    q1 = fill(setup, 10)
    q2 = fill(setup, 10)
    ch = connection.channel()
    early = Collector()
    ch.basic_consume(q1, early)  # unlimited
    ch.basic_qos(prefetch_count=1)
    late = Collector()
    ch.basic_consume(q2, late)
    assert counts(connection, [early, late], 11) == (10, 1)
    # raising the per-consumer prefetch does not affect existing consumers
    ch.basic_qos(prefetch_count=5)
    collect(connection, 0.25)
    assert len(late) == 1


def test_global_prefetch_change_applies_to_existing_consumers(connection):
    setup = connection.channel()
    q = fill(setup, 10)
    ch = connection.channel()
    ch.basic_qos(prefetch_count=1, global_qos=True)
    c = Collector()
    ch.basic_consume(q, c)
    assert counts(connection, [c], 1) == (1,)
    ch.basic_qos(prefetch_count=4, global_qos=True)
    assert counts(connection, [c], 4) == (4,)


def test_prefetch_zero_is_unlimited(connection):
    setup = connection.channel()
    q = fill(setup, 50)
    ch = connection.channel()
    ch.basic_qos(prefetch_count=0)
    c = Collector()
    ch.basic_consume(q, c)
    assert wait_until(lambda: len(c) == 50, connection=connection)


def test_basic_get_ignores_prefetch(connection):
    setup = connection.channel()
    q = fill(setup, 5)
    ch = connection.channel()
    ch.basic_qos(prefetch_count=1)
    c = Collector()
    ch.basic_consume(q, c)
    assert counts(connection, [c], 1) == (1,)
    method, _, body = ch.basic_get(q)
    assert body == b"m1"


def test_basic_get_unacked_do_not_count_against_prefetch(connection):
    setup = connection.channel()
    q1 = fill(setup, 5)
    q2 = fill(setup, 5)
    ch = connection.channel()
    ch.basic_qos(prefetch_count=2)
    ch.basic_get(q1)
    ch.basic_get(q1)
    c = Collector()
    ch.basic_consume(q1, c)
    assert counts(connection, [c], 2) == (2,)

    ch2 = connection.channel()
    ch2.basic_qos(prefetch_count=2, global_qos=True)
    ch2.basic_get(q2)
    ch2.basic_get(q2)
    c2 = Collector()
    ch2.basic_consume(q2, c2)
    assert counts(connection, [c2], 2) == (2,)


def test_no_ack_consumers_ignore_prefetch(connection):
    setup = connection.channel()
    q = fill(setup, 20)
    ch = connection.channel()
    ch.basic_qos(prefetch_count=1)
    c = Collector()
    ch.basic_consume(q, c, auto_ack=True)
    assert wait_until(lambda: len(c) == 20, connection=connection)


def test_round_robin_two_consumers_separate_channels(connection):
    setup = connection.channel()
    q = setup.queue_declare("", exclusive=True).method.queue
    c1 = connection.channel()
    c2 = connection.channel()
    a = Collector(ack=True)
    b = Collector(ack=True)
    c1.basic_consume(q, a)
    c2.basic_consume(q, b)
    for i in range(10):
        setup.basic_publish("", q, b"%d" % i)
    assert wait_until(lambda: len(a) + len(b) == 10, connection=connection)
    assert a.bodies == [b"0", b"2", b"4", b"6", b"8"]
    assert b.bodies == [b"1", b"3", b"5", b"7", b"9"]


def test_round_robin_two_consumers_same_channel(channel):
    q = channel.queue_declare("", exclusive=True).method.queue
    a = Collector(ack=True)
    b = Collector(ack=True)
    channel.basic_consume(q, a)
    channel.basic_consume(q, b)
    for i in range(10):
        channel.basic_publish("", q, b"%d" % i)
    assert wait_until(lambda: len(a) + len(b) == 10,
                      connection=channel.connection)
    assert a.bodies == [b"0", b"2", b"4", b"6", b"8"]
    assert b.bodies == [b"1", b"3", b"5", b"7", b"9"]


def test_round_robin_with_prefetch_one_and_acks(connect, shared_queue):
    """Two workers on separate connections with prefetch 1 both make
    progress and together see every message exactly once."""
    producer = connect().channel()
    conns = [connect(), connect()]
    collectors = []
    for conn in conns:
        ch = conn.channel()
        ch.basic_qos(prefetch_count=1)
        c = Collector(ack=True)
        ch.basic_consume(shared_queue, c)
        collectors.append(c)
    for i in range(20):
        producer.basic_publish("", shared_queue, b"%02d" % i)
    def all_seen():
        for conn in conns:
            collect(conn, 0.02)
        return sum(len(c) for c in collectors) == 20

    assert wait_until(all_seen, timeout=10)
    assert len(collectors[0]) > 0 and len(collectors[1]) > 0
    assert sorted(collectors[0].bodies + collectors[1].bodies) == [
        b"%02d" % i for i in range(20)]
