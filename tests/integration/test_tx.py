"""Transactions (tx.select / tx.commit / tx.rollback) as RabbitMQ implements them: publishes and
acks/nacks/rejects take effect at commit and vanish at rollback; tx and confirm modes exclude
each other.

What a transaction has done (or not yet done) is observed from another connection, after a
synchronous round trip on the transactional channel (amqp_helpers.settle) has proved that the
broker processed the publishes and acks sent before it."""
import pika
import pytest

from amqp_helpers import expect_channel_closed, get_all, queue_depth, settle, wait_until

DEADLINE = 30  # seconds to wait for something that must happen (bounds a hang only)


def test_publishes_appear_only_at_commit(connection, connect, shared_queue):
    ch = connection.channel()
    observer = connect().channel()
    q = shared_queue
    ch.tx_select()
    for i in range(5):
        ch.basic_publish("", q, b"m%d" % i)
    settle(ch)  # the broker has processed the five publishes
    assert queue_depth(observer, q) == 0
    ch.tx_commit()
    assert queue_depth(observer, q) == 5
    assert [b for _, _, b in get_all(observer, q)] == [b"m%d" % i for i in range(5)]


def test_rollback_discards_publishes(connection, connect, shared_queue):
    ch = connection.channel()
    observer = connect().channel()
    q = shared_queue
    ch.tx_select()
    ch.basic_publish("", q, b"dropped")
    settle(ch)
    assert queue_depth(observer, q) == 0
    ch.tx_rollback()
    assert queue_depth(observer, q) == 0
    ch.basic_publish("", q, b"kept")
    settle(ch)
    assert queue_depth(observer, q) == 0
    ch.tx_commit()
    # the commit publishes what was sent since the rollback, and only that
    assert [b for _, _, b in get_all(observer, q)] == [b"kept"]
    assert [b for _, _, b in get_all(ch, q)] == []


def test_acks_apply_at_commit_and_rollback_keeps_them_unacked(connection, connect,
                                                              shared_queue):
    setup = connection.channel()
    q = shared_queue
    for i in range(3):
        setup.basic_publish("", q, b"m%d" % i)
    settle(setup)
    assert wait_until(lambda: queue_depth(setup, q) == 3, timeout=DEADLINE)
    conn2 = connect()
    ch = conn2.channel()
    ch.tx_select()
    got = [ch.basic_get(q) for _ in range(3)]
    assert [b for _, _, b in got] == [b"m0", b"m1", b"m2"]
    tags = [m.delivery_tag for m, _, _ in got]
    ch.basic_ack(tags[0])
    ch.tx_rollback()  # the ack of m0 is forgotten: m0 is unacked again
    ch.basic_ack(tags[1])
    ch.basic_reject(tags[2], requeue=True)
    settle(ch)
    assert queue_depth(setup, q) == 0  # the reject has not requeued m2 yet
    ch.tx_commit()  # m1 acked, m2 back in the queue
    assert wait_until(lambda: queue_depth(setup, q) == 1, timeout=DEADLINE)
    conn2.close()  # m0 (still unacked) is requeued, m1 (acked) is not
    assert wait_until(lambda: queue_depth(setup, q) >= 2, timeout=DEADLINE)
    bodies = [(b, m.redelivered) for m, _, b in get_all(setup, q)]
    assert bodies == [(b"m0", True), (b"m2", True)]


def test_ack_of_the_same_tag_twice_in_one_transaction_is_406(connection):
    ch = connection.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"x")
    ch.tx_select()
    m, _, _ = ch.basic_get(q)
    assert m is not None
    ch.basic_ack(m.delivery_tag)
    exc = expect_channel_closed(ch, connection, ch.basic_ack, m.delivery_tag)
    assert ch.is_closed
    assert exc.reply_code == 406
    assert exc.reply_text == ("PRECONDITION_FAILED - unknown delivery tag %d"
                              % m.delivery_tag)


def _closes_with(connection, method, code, text_part):
    ch = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        method(ch)
    assert info.value.reply_code == code
    assert text_part in info.value.reply_text


def test_commit_or_rollback_without_select_is_406(connection):
    _closes_with(connection, lambda ch: ch.tx_commit(), 406,
                 "PRECONDITION_FAILED - channel is not transactional")
    _closes_with(connection, lambda ch: ch.tx_rollback(), 406,
                 "PRECONDITION_FAILED - channel is not transactional")


def test_tx_and_confirm_exclude_each_other(connection):
    def confirm_then_tx(ch):
        ch.confirm_delivery()
        ch.tx_select()

    def tx_then_confirm(ch):
        ch.tx_select()
        ch.confirm_delivery()

    _closes_with(connection, confirm_then_tx, 406,
                 "PRECONDITION_FAILED - cannot switch from confirm to tx mode")
    _closes_with(connection, tx_then_confirm, 406,
                 "PRECONDITION_FAILED - cannot switch from tx to confirm mode")


def test_mandatory_unroutable_is_returned_at_commit(connection, uname):
    ch = connection.channel()
    returned = []
    ch.add_on_return_callback(lambda c, m, p, b: returned.append((m.reply_code, b)))
    ch.tx_select()
    ch.basic_publish("", uname("nowhere"), b"lost", mandatory=True)
    # a basic.return sent for the publish would arrive before this round trip's reply
    settle(ch)
    connection.process_data_events(time_limit=0)
    assert returned == []
    ch.tx_commit()
    assert wait_until(lambda: returned, timeout=DEADLINE, connection=connection)
    assert returned == [(312, b"lost")]
