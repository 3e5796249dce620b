"""basic.qos prefetch semantics (RabbitMQ flavour) and round-robin dispatch.

RabbitMQ reinterprets the global flag of AMQP 0-9-1:
  * global=False: prefetch_count applies to each consumer created on the
    channel *afterwards* (existing consumers keep their limit).  It also
    removes any channel-wide limit set before (the channel limiter is reset).
  * global=True: prefetch_count is shared by all consumers on the channel
    and takes effect immediately, also for existing consumers.
  * basic.get deliveries do not count against either limit.

How "no more than N" is observed without a timer: wait until the N allowed
deliveries have arrived, then read each queue's ready count (a passive
queue.declare on the consumers' connection). A queue that handed out more
than N has fewer left, and any delivery sent before the declare-ok has been
read from the socket by then, so the consumers' counts must add up exactly.
"""

from amqp_helpers import Collector, queue_depth, settle, wait_until

DEADLINE = 30  # seconds to wait for something that must happen (bounds a hang only)
N = 10  # messages per queue from fill()


def fill(channel, n=N):
    q = channel.queue_declare("", exclusive=True).method.queue
    for i in range(n):
        channel.basic_publish("", q, b"m%d" % i)
    settle(channel)
    assert wait_until(lambda: queue_depth(channel, q) == n, timeout=DEADLINE)
    return q


def counts(connection, setup, collectors, queues, total, n=N):
    """Wait until the collectors hold `total` deliveries, then return the
    number each consumer holds, checked against what left its queue: the
    consumer of queues[i] is collectors[i], and each queue started with n
    messages. The depth query runs on `setup`, a channel of the consumers'
    connection."""
    wait_until(lambda: sum(len(c) for c in collectors) >= total,
               timeout=DEADLINE, connection=connection)
    depths = [queue_depth(setup, q) for q in queues]
    connection.process_data_events(time_limit=0)  # deliveries read before the declare-ok
    got = tuple(len(c) for c in collectors)
    assert [n - d for d in depths] == list(got), (
        "left the queues %r, delivered %r" % ([n - d for d in depths], got))
    return got


def consume_all(connection, channel, queues):
    collectors = [Collector() for _ in queues]
    for q, c in zip(queues, collectors):
        channel.basic_consume(q, c)
    return collectors


def test_per_consumer_prefetch_limits_each_consumer(connection):
    setup = connection.channel()
    queues = [fill(setup) for _ in range(2)]
    ch = connection.channel()
    ch.basic_qos(prefetch_count=2)
    a, b = consume_all(connection, ch, queues)
    assert counts(connection, setup, [a, b], queues, 4) == (2, 2)
    # acking one lets exactly one more through
    ch.basic_ack(a.messages[0][0].delivery_tag)
    assert counts(connection, setup, [a, b], queues, 5) == (3, 2)
    # delivery tags are per channel: a multiple ack of the highest tag acks
    # everything outstanding, for both consumers
    highest = max(m.delivery_tag for m, _, _ in a.messages + b.messages)
    ch.basic_ack(highest, multiple=True)
    assert counts(connection, setup, [a, b], queues, 9) == (5, 4)


def test_prefetch_one_per_consumer_two_consumers_same_queue(connection):
    setup = connection.channel()
    q = fill(setup, 6)
    ch = connection.channel()
    ch.basic_qos(prefetch_count=1)
    a = Collector()
    b = Collector()
    ch.basic_consume(q, a)
    ch.basic_consume(q, b)
    assert wait_until(lambda: len(a) + len(b) >= 2, timeout=DEADLINE,
                      connection=connection)
    assert queue_depth(setup, q) == 4
    connection.process_data_events(time_limit=0)
    assert (len(a), len(b)) == (1, 1)


def test_global_prefetch_is_shared_by_channel_consumers(connection):
    setup = connection.channel()
    queues = [fill(setup) for _ in range(3)]
    ch = connection.channel()
    ch.basic_qos(prefetch_count=3, global_qos=True)
    collectors = consume_all(connection, ch, queues)
    assert sum(counts(connection, setup, collectors, queues, 3)) == 3
    # ack everything received so far: 3 more in total
    ch.basic_ack(0, multiple=True)
    assert sum(counts(connection, setup, collectors, queues, 6)) == 6


def test_per_consumer_then_global_both_apply(connection):
    setup = connection.channel()
    queues = [fill(setup) for _ in range(2)]
    ch = connection.channel()
    ch.basic_qos(prefetch_count=2)
    ch.basic_qos(prefetch_count=3, global_qos=True)
    a, b = consume_all(connection, ch, queues)
    got = counts(connection, setup, [a, b], queues, 3)
    assert got[0] <= 2 and got[1] <= 2
    assert sum(got) == 3


def test_global_then_per_consumer_resets_channel_limit(connection):
    """A non-global basic.qos clears the channel-wide limit set earlier
    (RabbitMQ 3.10 behaviour): each consumer then gets its own 2."""
    setup = connection.channel()
    queues = [fill(setup) for _ in range(2)]
    ch = connection.channel()
    ch.basic_qos(prefetch_count=3, global_qos=True)
    ch.basic_qos(prefetch_count=2)
    a, b = consume_all(connection, ch, queues)
    assert counts(connection, setup, [a, b], queues, 4) == (2, 2)


def test_per_consumer_prefetch_fixed_at_consume_time(connection):
    setup = connection.channel()
    q1 = fill(setup)
    q2 = fill(setup)
    q3 = fill(setup)
    ch = connection.channel()
    early = Collector()
    ch.basic_consume(q1, early)  # unlimited
    ch.basic_qos(prefetch_count=1)
    late = Collector()
    ch.basic_consume(q2, late)
    assert counts(connection, setup, [early, late], [q1, q2], 11) == (10, 1)
    # raising the per-consumer prefetch does not affect existing consumers;
    # a consumer created afterwards gets the new limit (which shows that the
    # qos took effect, and that dispatch ran after it)
    ch.basic_qos(prefetch_count=5)
    newer = Collector()
    ch.basic_consume(q3, newer)
    assert counts(connection, setup, [early, late, newer], [q1, q2, q3],
                  16) == (10, 1, 5)


def test_global_prefetch_change_applies_to_existing_consumers(connection):
    setup = connection.channel()
    q = fill(setup)
    ch = connection.channel()
    ch.basic_qos(prefetch_count=1, global_qos=True)
    c = Collector()
    ch.basic_consume(q, c)
    assert counts(connection, setup, [c], [q], 1) == (1,)
    ch.basic_qos(prefetch_count=4, global_qos=True)
    assert counts(connection, setup, [c], [q], 4) == (4,)


def test_prefetch_zero_is_unlimited(connection):
    setup = connection.channel()
    q = fill(setup, 50)
    ch = connection.channel()
    ch.basic_qos(prefetch_count=1)
    ch.basic_qos(prefetch_count=0)  # replaces the limit of 1
    c = Collector()
    ch.basic_consume(q, c)
    assert wait_until(lambda: len(c) == 50, connection=connection,
                      timeout=DEADLINE)
    assert queue_depth(setup, q) == 0


def test_basic_get_ignores_prefetch(connection):
    setup = connection.channel()
    q = fill(setup, 5)
    ch = connection.channel()
    ch.basic_qos(prefetch_count=1)
    c = Collector()
    ch.basic_consume(q, c)
    assert counts(connection, setup, [c], [q], 1, n=5) == (1,)
    method, _, body = ch.basic_get(q)
    assert method is not None
    assert body == b"m1"


def test_basic_get_unacked_do_not_count_against_prefetch(connection):
    setup = connection.channel()
    q1 = fill(setup, 5)
    q2 = fill(setup, 5)
    ch = connection.channel()
    ch.basic_qos(prefetch_count=2)
    assert ch.basic_get(q1)[0] is not None
    assert ch.basic_get(q1)[0] is not None
    c = Collector()
    ch.basic_consume(q1, c)
    # 2 taken by basic.get (unacked) + 2 delivered to the consumer
    assert counts(connection, setup, [c], [q1], 2, n=5 - 2) == (2,)

    ch2 = connection.channel()
    ch2.basic_qos(prefetch_count=2, global_qos=True)
    assert ch2.basic_get(q2)[0] is not None
    assert ch2.basic_get(q2)[0] is not None
    c2 = Collector()
    ch2.basic_consume(q2, c2)
    assert counts(connection, setup, [c2], [q2], 2, n=5 - 2) == (2,)


def test_no_ack_consumers_ignore_prefetch(connection):
    setup = connection.channel()
    q = fill(setup, 20)
    ch = connection.channel()
    ch.basic_qos(prefetch_count=1)
    c = Collector()
    ch.basic_consume(q, c, auto_ack=True)
    assert wait_until(lambda: len(c) == 20, connection=connection,
                      timeout=DEADLINE)


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
    assert wait_until(lambda: len(a) + len(b) == 10, connection=connection,
                      timeout=DEADLINE)
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
                      connection=channel.connection, timeout=DEADLINE)
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
            conn.process_data_events(time_limit=0.02)
        return sum(len(c) for c in collectors) == 20

    assert wait_until(all_seen, timeout=DEADLINE)
    assert len(collectors[0]) > 0 and len(collectors[1]) > 0
    assert sorted(collectors[0].bodies + collectors[1].bodies) == [
        b"%02d" % i for i in range(20)]
