"""Acknowledgements: ack / nack / reject (single and multiple), recover,
requeue on channel and connection close, and where requeued messages go.

RabbitMQ puts requeued messages back at their original position in the queue
(ordered by when they were first enqueued), whatever order they are rejected
in, ahead of messages that were never delivered; they come back with
redelivered=True.

How the effects are observed: a settled (acked, or rejected/nacked without
requeue) message is one that does not come back when its channel closes. So
the tests keep at least one message unacked on purpose, close the channel, and
drain the queue from another channel: the unacked one must be back (proof
that the observation sees whatever the close returns to the queue) and the
settled ones must not.
"""

import amqp_helpers
from amqp_helpers import Collector, queue_depth, settle, wait_until

DEADLINE = 30  # seconds to wait for something that must happen (bounds a hang only)


def fill(channel, n, prefix=b"m", queue=None):
    if queue is None:
        q = channel.queue_declare("", exclusive=True).method.queue
    else:
        q = queue
    for i in range(n):
        channel.basic_publish("", q, prefix + b"%d" % i)
    settle(channel)
    assert wait_until(lambda: queue_depth(channel, q) == n, timeout=DEADLINE)
    return q


def contents(channel, queue):
    """Drain the queue: [(body, redelivered)]."""
    settle(channel)
    return [(body, method.redelivered)
            for method, _, body in amqp_helpers.get_all(channel, queue)]


def assert_contents(channel, queue, expected):
    """Wait until the queue holds len(expected) ready messages (requeues
    may complete asynchronously), then drain it and compare."""
    settle(channel)
    wait_until(lambda: queue_depth(channel, queue) >= len(expected),
               timeout=DEADLINE)
    assert contents(channel, queue) == expected


def take(channel, queue, n):
    methods = []
    for _ in range(n):
        method, _, _ = channel.basic_get(queue)
        assert method is not None
        methods.append(method)
    return methods


def test_ack_single(connection):
    ch = connection.channel()
    q = fill(ch, 3)
    worker = connection.channel()
    m0, m1 = take(worker, q, 2)
    assert queue_depth(ch, q) == 1  # m0 and m1 are held by the worker
    worker.basic_ack(m0.delivery_tag)
    worker.close()  # m1 (unacked) comes back, the acked m0 does not
    assert_contents(ch, q, [(b"m1", True), (b"m2", False)])


def test_ack_multiple(connection):
    ch = connection.channel()
    q = fill(ch, 6)
    worker = connection.channel()
    methods = take(worker, q, 5)
    assert [m.delivery_tag for m in methods] == [1, 2, 3, 4, 5]
    worker.basic_ack(3, multiple=True)  # acks 1, 2, 3
    worker.close()  # 4 and 5 are requeued
    assert_contents(ch, q, [(b"m3", True), (b"m4", True), (b"m5", False)])


def test_ack_multiple_with_tag_zero_acks_everything(connection):
    ch = connection.channel()
    q = fill(ch, 4)
    worker = connection.channel()
    take(worker, q, 3)
    worker.basic_ack(0, multiple=True)
    settle(worker)
    assert worker.is_open
    # m3, taken after the ack, stays unacked: it comes back at close, m0-m2 do not
    take(worker, q, 1)
    worker.close()
    assert_contents(ch, q, [(b"m3", True)])


def test_nack_multiple_requeue_keeps_original_order(connection):
    ch = connection.channel()
    q = fill(ch, 6)
    worker = connection.channel()
    methods = take(worker, q, 4)
    worker.basic_nack(methods[-1].delivery_tag, multiple=True, requeue=True)
    settle(worker)
    assert_contents(ch, q, [(b"m0", True), (b"m1", True), (b"m2", True),
                            (b"m3", True), (b"m4", False), (b"m5", False)])


def test_nack_multiple_with_tag_zero_requeues_everything(connection):
    ch = connection.channel()
    q = fill(ch, 4)
    worker = connection.channel()
    take(worker, q, 3)
    worker.basic_nack(0, multiple=True, requeue=True)
    settle(worker)
    assert_contents(ch, q, [(b"m0", True), (b"m1", True), (b"m2", True),
                            (b"m3", False)])


def test_nack_multiple_redelivers_to_consumer_in_order(connection):
    ch = connection.channel()
    q = fill(ch, 5)
    worker = connection.channel()
    worker.basic_qos(prefetch_count=10)
    seen = []

    def on_message(c, method, props, body):
        seen.append((body, method.redelivered))
        if not method.redelivered and len(seen) == 5:
            c.basic_nack(method.delivery_tag, multiple=True, requeue=True)
        elif method.redelivered:
            c.basic_ack(method.delivery_tag)

    worker.basic_consume(q, on_message)
    assert wait_until(lambda: len(seen) == 10, connection=connection,
                      timeout=DEADLINE)
    assert seen[:5] == [(b"m%d" % i, False) for i in range(5)]
    assert seen[5:] == [(b"m%d" % i, True) for i in range(5)]


def test_nack_without_requeue_drops(connection):
    ch = connection.channel()
    q = fill(ch, 5)
    worker = connection.channel()
    methods = take(worker, q, 4)
    worker.basic_nack(methods[1].delivery_tag, multiple=True, requeue=False)
    worker.basic_nack(methods[2].delivery_tag, requeue=False)
    settle(worker)
    assert worker.is_open
    assert queue_depth(ch, q) == 1  # nothing came back: only m4 is ready
    # m3 stays unacked: it comes back at close (the drain below sees what
    # the close returns), the nacked m0-m2 do not
    worker.close()
    assert_contents(ch, q, [(b"m3", True), (b"m4", False)])


def test_reject_without_requeue_drops(connection):
    ch = connection.channel()
    q = fill(ch, 3)
    worker = connection.channel()
    m0, _ = take(worker, q, 2)
    worker.basic_reject(m0.delivery_tag, requeue=False)
    settle(worker)
    assert worker.is_open
    assert queue_depth(ch, q) == 1  # m0 did not come back: only m2 is ready
    worker.close()  # the unacked m1 comes back, the rejected m0 does not
    assert_contents(ch, q, [(b"m1", True), (b"m2", False)])


def test_reject_with_requeue_goes_back_to_original_position(connection):
    ch = connection.channel()
    q = fill(ch, 4)
    worker = connection.channel()
    methods = take(worker, q, 3)
    worker.basic_reject(methods[1].delivery_tag, requeue=True)
    settle(worker)
    method, _, body = worker.basic_get(q)
    assert (body, method.redelivered) == (b"m1", True)
    assert method.delivery_tag == 4  # tags keep increasing per channel


def test_requeue_order_is_original_order_not_reject_order(connection):
    ch = connection.channel()
    q = fill(ch, 6)
    worker = connection.channel()
    methods = take(worker, q, 5)
    # reject in reverse order: 3, 1, 0 (2 is acked, 4 stays unacked)
    worker.basic_reject(methods[3].delivery_tag, requeue=True)
    worker.basic_ack(methods[2].delivery_tag)
    worker.basic_reject(methods[1].delivery_tag, requeue=True)
    worker.basic_reject(methods[0].delivery_tag, requeue=True)
    settle(worker)
    assert_contents(ch, q, [(b"m0", True), (b"m1", True), (b"m3", True),
                            (b"m5", False)])
    # closing the channel returns m4 (still unacked), but not the acked m2
    worker.close()
    assert_contents(ch, q, [(b"m4", True)])


def test_requeued_messages_go_before_later_publishes(connection):
    ch = connection.channel()
    q = fill(ch, 3)
    worker = connection.channel()
    methods = take(worker, q, 3)
    ch.basic_publish("", q, b"m3")
    ch.basic_publish("", q, b"m4")
    settle(ch)
    worker.basic_reject(methods[2].delivery_tag, requeue=True)
    worker.basic_reject(methods[0].delivery_tag, requeue=True)
    settle(worker)
    assert_contents(ch, q, [(b"m0", True), (b"m2", True), (b"m3", False),
                            (b"m4", False)])


def test_recover_requeue_redelivers_to_consumer(connection):
    ch = connection.channel()
    q = fill(ch, 3)
    worker = connection.channel()
    collector = Collector()
    tag = worker.basic_consume(q, collector)
    assert wait_until(lambda: len(collector) == 3, connection=connection,
                      timeout=DEADLINE)
    worker.basic_ack(collector.messages[0][0].delivery_tag)
    worker.basic_recover(requeue=True)
    assert wait_until(lambda: len(collector) == 5, connection=connection,
                      timeout=DEADLINE)
    redelivered = collector.messages[3:]
    assert [(b, m.redelivered) for m, _, b in redelivered] == [
        (b"m1", True), (b"m2", True)]
    # new delivery tags
    assert [m.delivery_tag for m, _, _ in redelivered] == [4, 5]
    for m, _, _ in redelivered:
        worker.basic_ack(m.delivery_tag)
    worker.basic_cancel(tag)
    # the acks took effect: closing the channel returns only m3, which was
    # taken after them and left unacked
    ch.basic_publish("", q, b"m3")
    settle(ch)
    assert wait_until(lambda: queue_depth(ch, q) == 1, timeout=DEADLINE)
    take(worker, q, 1)
    worker.close()
    assert_contents(ch, q, [(b"m3", True)])
    assert queue_depth(ch, q) == 0


def test_recover_requeue_after_basic_get(connection):
    ch = connection.channel()
    q = fill(ch, 4)
    worker = connection.channel()
    methods = take(worker, q, 3)
    worker.basic_ack(methods[0].delivery_tag)
    worker.basic_recover(requeue=True)
    assert_contents(ch, q, [(b"m1", True), (b"m2", True), (b"m3", False)])


def test_channel_close_requeues_unacked_for_other_consumer(connect,
                                                           shared_queue):
    conn = connect()
    ch = conn.channel()
    q = fill(ch, 5, queue=shared_queue)
    first = conn.channel()
    first.basic_qos(prefetch_count=2)
    got_first = Collector()
    first.basic_consume(q, got_first)
    assert wait_until(lambda: len(got_first) == 2, connection=conn,
                      timeout=DEADLINE)
    assert got_first.bodies == [b"m0", b"m1"]
    # another consumer (other connection) waits for messages
    other_conn = connect()
    second = other_conn.channel()
    got_second = Collector(ack=True)
    second.basic_consume(q, got_second)
    assert wait_until(lambda: len(got_second) == 3, connection=other_conn,
                      timeout=DEADLINE)
    # prefetch 2: the first consumer got no more than m0 and m1
    assert got_second.bodies == [b"m2", b"m3", b"m4"]
    first.close()
    assert wait_until(lambda: len(got_second) == 5, connection=other_conn,
                      timeout=DEADLINE)
    assert [(b, m.redelivered) for m, _, b in got_second.messages[3:]] == [
        (b"m0", True), (b"m1", True)]


def test_channel_close_requeues_at_original_position(connection):
    ch = connection.channel()
    q = fill(ch, 6)
    worker = connection.channel()
    worker.basic_qos(prefetch_count=3)
    collector = Collector()
    worker.basic_consume(q, collector)
    assert wait_until(lambda: len(collector) == 3, connection=connection,
                      timeout=DEADLINE)
    worker.basic_ack(collector.messages[1][0].delivery_tag)
    # the ack frees one prefetch slot, so m3 is delivered too
    assert wait_until(lambda: len(collector) == 4, connection=connection,
                      timeout=DEADLINE)
    worker.close()
    assert_contents(ch, q, [(b"m0", True), (b"m2", True), (b"m3", True),
                            (b"m4", False), (b"m5", False)])


def test_connection_close_requeues_unacked(connect, shared_queue):
    observer = connect()
    ch = observer.channel()
    q = fill(ch, 3, queue=shared_queue)
    worker_conn = connect()
    worker = worker_conn.channel()
    take(worker, q, 2)
    assert queue_depth(ch, q) == 1
    worker_conn.close()
    assert wait_until(lambda: queue_depth(ch, q) == 3, timeout=DEADLINE)
    assert_contents(ch, q, [(b"m0", True), (b"m1", True), (b"m2", False)])


def test_ack_after_basic_cancel_is_accepted(connection):
    ch = connection.channel()
    q = fill(ch, 2)
    worker = connection.channel()
    collector = Collector()
    tag = worker.basic_consume(q, collector)
    assert wait_until(lambda: len(collector) == 2, connection=connection,
                      timeout=DEADLINE)
    worker.basic_cancel(tag)
    for method, _, _ in collector.messages:
        worker.basic_ack(method.delivery_tag)
    settle(worker)
    assert worker.is_open
    # the acks took effect: closing the channel returns only m2, which was
    # taken after them and left unacked, not m0 or m1
    ch.basic_publish("", q, b"m2")
    settle(ch)
    assert wait_until(lambda: queue_depth(ch, q) == 1, timeout=DEADLINE)
    take(worker, q, 1)
    worker.close()
    assert_contents(ch, q, [(b"m2", True)])
    assert queue_depth(ch, q) == 0


def test_unacked_messages_survive_basic_cancel(connection):
    """Cancelling a consumer does not requeue its unacked messages; closing
    the channel does."""
    ch = connection.channel()
    q = fill(ch, 2)
    worker = connection.channel()
    collector = Collector()
    tag = worker.basic_consume(q, collector)
    assert wait_until(lambda: len(collector) == 2, connection=connection,
                      timeout=DEADLINE)
    worker.basic_cancel(tag)
    assert queue_depth(ch, q) == 0
    # A marker published on the worker's channel after the cancel: had the
    # cancel requeued m0 and m1, they would be back before it (at their
    # original position, ahead of the marker), so the drain would see them.
    worker.basic_publish("", q, b"marker")
    settle(worker)
    assert wait_until(lambda: queue_depth(ch, q) >= 1, timeout=DEADLINE)
    assert contents(ch, q) == [(b"marker", False)]
    worker.close()
    assert wait_until(lambda: queue_depth(ch, q) == 2, timeout=DEADLINE)
    assert contents(ch, q) == [(b"m0", True), (b"m1", True)]
