"""Message TTL as RabbitMQ 3.10 does it: x-message-ttl on the queue and the per-message
`expiration` property (milliseconds as a decimal string; the lower of the two wins). An expired
message is never delivered, by basic.consume or basic.get; with a dead-letter exchange it is
dead-lettered with reason "expired". Expiry happens at the head of the queue, on a timer, so a
queue of expired messages drains with nobody consuming it; a message behind a head without a TTL
waits until it reaches the head. A message keeps its expiry while delivered and requeued (it does
not restart). TTL 0: delivered only if a consumer can take it at once, else expired at once.

An invalid expiration closes the channel: 406 "invalid expiration '<text>': <reason>", the reason
as RabbitMQ prints it with ~p (texts checked against RabbitMQ 3.10.8).

How the tests avoid depending on the machine's speed: a message that must NOT expire during a
test has a TTL of 60 s; a message that must have expired is waited for (its dead letter arrives,
or the queue drains), or the test waits on the monotonic clock past the TTL measured from a
round trip that proves the broker had the message (a slower machine only lets more time pass).
"""

import time

import pika
import pika.exceptions
import pytest

import amqp_helpers
from amqp_helpers import close_quietly, params, queue_depth, settle, wait_until
from amqp_helpers import dead_letter_pair, declare

DEADLINE = 30  # seconds to wait for something that must happen (bounds a hang only)
LONG_TTL = 60000  # ms: never reached during a test


def wait_past(deadline):
    """Lets monotonic time pass `deadline` (a TTL measured from a completed round trip)."""
    while time.monotonic() <= deadline:
        time.sleep(max(0.001, deadline - time.monotonic()))


def x_death(props):
    return props.headers["x-death"]


# -- the expiration property ---------------------------------------------------------------------

@pytest.mark.parametrize("expiration,reason", [
    ("abc", "no_integer"),
    ("", "no_integer"),
    (" 5", "no_integer"),
    ("-1", "{value_negative,-1}"),
    ("12abc", '{leftover_string,"abc"}'),
    ("1.5", '{leftover_string,".5"}'),
    ("315360000001", "{value_too_large,315360000001}"),  # over ten years
    # ~p wraps a term that would end past column 78 of "invalid expiration '<text>': <term>".
    ("0" * 13 + "315360000001", "{value_too_large,315360000001}"),  # ends at column 78
    ("0" * 14 + "315360000001", "{value_too_large,\n" + " " * 50 + "315360000001}"),
    ("1" + "a" * 18, '{leftover_string,\n' + " " * 43 + '"' + "a" * 18 + '"}'),
    ("-" + "0" * 40 + "1", "{value_negative,\n" + " " * 66 + "-1}"),
])
def test_invalid_expiration_closes_the_channel(connection, uname, expiration, reason):
    ch = connection.channel()
    q = declare(ch, uname, "ttl-bad")
    # Positive control on the same channel: a valid one is accepted and enqueued.
    ch.basic_publish("", q, b"ok", pika.BasicProperties(expiration=str(LONG_TTL)))
    settle(ch)
    exc = amqp_helpers.expect_channel_closed(
        ch, connection, ch.basic_publish, "", q, b"bad",
        pika.BasicProperties(expiration=expiration))
    assert exc.reply_code == 406
    assert exc.reply_text == ("PRECONDITION_FAILED - invalid expiration '%s': %s"
                              % (expiration, reason))
    other = connection.channel()
    assert queue_depth(other, q) == 1, "the refused message must not be enqueued"
    other.queue_delete(q)


@pytest.mark.parametrize("expiration", ["0", "+5", "-0", "007", "4294967296", "315360000000"])
def test_valid_expirations_are_accepted(channel, uname, expiration):
    q = declare(channel, uname, "ttl-ok")
    channel.basic_publish("", q, b"m", pika.BasicProperties(expiration=expiration))
    settle(channel)
    assert channel.is_open
    channel.queue_delete(q)


# -- expiry --------------------------------------------------------------------------------------

def test_queue_ttl_drains_the_queue_with_nobody_consuming(channel, uname):
    q, dlq = dead_letter_pair(channel, uname, "ttl-drain", **{"x-message-ttl": 100})
    keep = declare(channel, uname, "ttl-keep", **{"x-message-ttl": LONG_TTL})
    for i in range(5):
        channel.basic_publish("", q, b"m%d" % i)
        channel.basic_publish("", keep, b"k%d" % i)
    settle(channel)
    assert wait_until(lambda: queue_depth(channel, dlq) == 5, timeout=DEADLINE)
    assert queue_depth(channel, q) == 0
    assert channel.basic_get(q)[0] is None
    # Expired in order, each dead-lettered as "expired" from q.
    got = amqp_helpers.get_all(channel, dlq)
    assert amqp_helpers.bodies(got) == [b"m%d" % i for i in range(5)]
    for _, props, _ in got:
        assert x_death(props)[0]["reason"] == "expired"
        assert x_death(props)[0]["queue"] == q
        assert "original-expiration" not in x_death(props)[0]
    # Control: the same publishes into a queue with a long TTL are all there.
    assert queue_depth(channel, keep) == 5
    for name in (q, dlq, keep):
        channel.queue_delete(name)


def test_expiration_property_alone_expires_a_message(channel, uname):
    q, dlq = dead_letter_pair(channel, uname, "ttl-prop")
    channel.basic_publish("", q, b"short", pika.BasicProperties(expiration="50"))
    settle(channel)
    assert wait_until(lambda: queue_depth(channel, dlq) == 1, timeout=DEADLINE)
    assert queue_depth(channel, q) == 0
    _, props, body = channel.basic_get(dlq, auto_ack=True)
    assert body == b"short"
    assert props.expiration is None
    assert x_death(props)[0]["original-expiration"] == "50"
    channel.queue_delete(q)
    channel.queue_delete(dlq)


@pytest.mark.parametrize("queue_ttl,expiration", [(LONG_TTL, "50"), (50, str(LONG_TTL))])
def test_the_lower_of_queue_ttl_and_expiration_wins(channel, uname, queue_ttl, expiration):
    q, dlq = dead_letter_pair(channel, uname, "ttl-min", **{"x-message-ttl": queue_ttl})
    channel.basic_publish("", q, b"short", pika.BasicProperties(expiration=expiration))
    channel.basic_publish("", q, b"control")  # the queue's TTL only
    settle(channel)
    assert wait_until(lambda: queue_depth(channel, dlq) >= 1, timeout=DEADLINE)
    _, props, body = channel.basic_get(dlq, auto_ack=True)
    assert body == b"short"
    assert x_death(props)[0]["reason"] == "expired"
    if queue_ttl == LONG_TTL:
        # The control keeps the queue's 60 s.
        assert queue_depth(channel, q) == 1
        assert channel.basic_get(q, auto_ack=True)[2] == b"control"
    else:
        assert wait_until(lambda: queue_depth(channel, dlq) == 1, timeout=DEADLINE)
        assert channel.basic_get(dlq, auto_ack=True)[2] == b"control"
    channel.queue_delete(q)
    channel.queue_delete(dlq)


def test_expired_message_behind_the_head_is_never_delivered_by_basic_get(channel, uname):
    q, dlq = dead_letter_pair(channel, uname, "ttl-get")
    channel.basic_publish("", q, b"head")  # no TTL: holds the expiring one back
    channel.basic_publish("", q, b"short", pika.BasicProperties(expiration="100"))
    channel.basic_publish("", q, b"tail")
    settle(channel)
    wait_past(time.monotonic() + 0.3)
    # Still counted while behind the head (RabbitMQ expires at the head only).
    assert queue_depth(channel, q) == 3
    assert channel.basic_get(q, auto_ack=True)[2] == b"head"
    # The expired one is skipped (and dead-lettered), the next one comes.
    assert channel.basic_get(q, auto_ack=True)[2] == b"tail"
    assert wait_until(lambda: queue_depth(channel, dlq) == 1, timeout=DEADLINE)
    assert channel.basic_get(dlq, auto_ack=True)[2] == b"short"
    channel.queue_delete(q)
    channel.queue_delete(dlq)


def test_expired_message_is_never_delivered_to_a_consumer(connection, uname):
    ch = connection.channel()
    q, dlq = dead_letter_pair(ch, uname, "ttl-consume")
    ch.basic_publish("", q, b"head")
    ch.basic_publish("", q, b"short", pika.BasicProperties(expiration="100"))
    ch.basic_publish("", q, b"tail")
    settle(ch)
    consumer = connection.channel()
    consumer.basic_qos(prefetch_count=1)
    got = amqp_helpers.Collector()
    consumer.basic_consume(q, got)
    assert wait_until(lambda: len(got) == 1, timeout=DEADLINE, connection=connection)
    assert got.bodies == [b"head"]
    # The consumer is full: "short" waits at the head until it has expired.
    wait_past(time.monotonic() + 0.3)
    consumer.basic_ack(got.messages[0][0].delivery_tag)
    # The next delivery is "tail"; "short" is dead-lettered, never delivered.
    assert wait_until(lambda: len(got) == 2, timeout=DEADLINE, connection=connection)
    assert got.bodies == [b"head", b"tail"]
    assert wait_until(lambda: queue_depth(ch, dlq) == 1, timeout=DEADLINE)
    assert ch.basic_get(dlq, auto_ack=True)[2] == b"short"
    ch.queue_delete(q)
    ch.queue_delete(dlq)


def test_new_head_expires_on_its_own_once_the_head_is_taken(channel, uname):
    """The head had no TTL; once it is taken, the expired message behind it becomes the head and
    must drain with no further request (a timer for the new head)."""
    q, dlq = dead_letter_pair(channel, uname, "ttl-newhead")
    channel.basic_publish("", q, b"head")
    channel.basic_publish("", q, b"short", pika.BasicProperties(expiration="100"))
    settle(channel)
    assert channel.basic_get(q, auto_ack=True)[2] == b"head"
    # No basic.get after this: only the broker's own timer can move "short".
    assert wait_until(lambda: queue_depth(channel, dlq) == 1, timeout=DEADLINE)
    assert queue_depth(channel, q) == 0
    channel.queue_delete(q)
    channel.queue_delete(dlq)


def test_delivered_messages_do_not_expire_and_keep_their_expiry_when_requeued(connection, uname):
    ch = connection.channel()
    q, dlq = dead_letter_pair(ch, uname, "ttl-requeue", **{"x-message-ttl": 300})
    ch.basic_publish("", q, b"held")
    settle(ch)
    method, _, body = ch.basic_get(q)  # unacked: out of the queue, TTL or not
    assert body == b"held"
    wait_past(time.monotonic() + 0.6)
    # Not dead-lettered while delivered; the round trip shows the queue is empty.
    assert queue_depth(ch, dlq) == 0
    assert queue_depth(ch, q) == 0
    ch.basic_reject(method.delivery_tag, requeue=True)
    # Back with its original expiry, long past: expired at once, never delivered again (a
    # restarted TTL would hand it out here).
    assert ch.basic_get(q)[0] is None
    assert wait_until(lambda: queue_depth(ch, dlq) == 1, timeout=DEADLINE)
    _, props, body = ch.basic_get(dlq, auto_ack=True)
    assert body == b"held"
    assert x_death(props)[0]["reason"] == "expired"
    # Control: a message without TTL requeued the same way comes back, redelivered.
    plain = declare(ch, uname, "ttl-requeue-plain")
    ch.basic_publish("", plain, b"plain")
    settle(ch)
    method, _, _ = ch.basic_get(plain)
    ch.basic_reject(method.delivery_tag, requeue=True)
    method, _, body = ch.basic_get(plain, auto_ack=True)
    assert body == b"plain" and method.redelivered
    for name in (q, dlq, plain):
        ch.queue_delete(name)


# -- TTL 0 ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["queue", "message"])
def test_ttl_zero_without_a_consumer_expires_at_once(channel, uname, where):
    arguments = {"x-message-ttl": 0} if where == "queue" else {}
    props = pika.BasicProperties(expiration="0") if where == "message" else None
    q, dlq = dead_letter_pair(channel, uname, "ttl0", **arguments)
    channel.basic_publish("", q, b"zero", props)
    # The very next frame on the channel: RabbitMQ has already expired it.
    assert channel.basic_get(q)[0] is None
    assert queue_depth(channel, q) == 0
    assert wait_until(lambda: queue_depth(channel, dlq) == 1, timeout=DEADLINE)
    _, p, body = channel.basic_get(dlq, auto_ack=True)
    assert body == b"zero"
    assert x_death(p)[0]["reason"] == "expired"
    channel.queue_delete(q)
    channel.queue_delete(dlq)


def test_ttl_zero_goes_to_a_consumer_that_can_take_it(connection, uname):
    ch = connection.channel()
    q, dlq = dead_letter_pair(ch, uname, "ttl0-consumer", **{"x-message-ttl": 0})
    consumer = connection.channel()
    consumer.basic_qos(prefetch_count=2)
    got = amqp_helpers.Collector()
    consumer.basic_consume(q, got)
    for i in range(5):
        ch.basic_publish("", q, b"m%d" % i)
    settle(ch)
    # Room for two: those two are delivered, the other three expire at once.
    assert wait_until(lambda: queue_depth(ch, dlq) == 3, timeout=DEADLINE)
    assert wait_until(lambda: len(got) == 2, timeout=DEADLINE, connection=connection)
    assert got.bodies == [b"m0", b"m1"]
    assert amqp_helpers.bodies(amqp_helpers.get_all(ch, dlq)) == [b"m2", b"m3", b"m4"]
    assert queue_depth(ch, q) == 0
    # Once the consumer has room again, the next one is delivered too.
    consumer.basic_ack(got.messages[1][0].delivery_tag, multiple=True)
    settle(consumer)
    ch.basic_publish("", q, b"m5")
    assert wait_until(lambda: len(got) == 3, timeout=DEADLINE, connection=connection)
    assert got.bodies[2] == b"m5"
    ch.queue_delete(q)
    ch.queue_delete(dlq)


def test_ttl_zero_behind_a_head_without_ttl_waits_for_the_head(channel, uname):
    q, dlq = dead_letter_pair(channel, uname, "ttl0-behind")
    channel.basic_publish("", q, b"head")
    channel.basic_publish("", q, b"zero", pika.BasicProperties(expiration="0"))
    settle(channel)
    assert queue_depth(channel, q) == 2
    assert channel.basic_get(q, auto_ack=True)[2] == b"head"
    assert channel.basic_get(q)[0] is None
    assert wait_until(lambda: queue_depth(channel, dlq) == 1, timeout=DEADLINE)
    channel.queue_delete(q)
    channel.queue_delete(dlq)


# -- durable queues across a restart --------------------------------------------------------------

def test_durable_queue_messages_restored_then_expire(restartable_broker, uname):
    b = restartable_broker.start()
    conn = pika.BlockingConnection(params(b.port))
    ch = conn.channel()
    q, dlq = uname("ttl-durable"), uname("ttl-durable-dlq")
    ch.queue_declare(dlq, durable=True)
    ch.queue_declare(q, durable=True, arguments={
        "x-message-ttl": LONG_TTL, "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dlq})
    persistent = dict(delivery_mode=2)
    # "head" (the queue's 60 s) keeps "short" from expiring until it is taken.
    ch.basic_publish("", q, b"head", pika.BasicProperties(**persistent))
    ch.basic_publish("", q, b"short", pika.BasicProperties(expiration="200", **persistent))
    settle(ch)
    assert queue_depth(ch, q) == 2
    conn.close()
    b = restartable_broker.restart()
    conn = pika.BlockingConnection(params(b.port))
    try:
        ch = conn.channel()
        assert queue_depth(ch, q) == 2, "both restored"
        assert queue_depth(ch, dlq) == 0
        method, _, body = ch.basic_get(q, auto_ack=True)
        assert body == b"head"
        # "short" is the head now, long expired: it drains on its own into the dead-letter
        # queue, never delivered.
        assert wait_until(lambda: queue_depth(ch, dlq) == 1, timeout=DEADLINE)
        assert queue_depth(ch, q) == 0
        _, props, body = ch.basic_get(dlq, auto_ack=True)
        assert body == b"short"
        assert props.delivery_mode == 2
        assert x_death(props)[0]["reason"] == "expired"
        assert x_death(props)[0]["original-expiration"] == "200"
    finally:
        close_quietly(conn)


def test_paged_out_messages_keep_their_expiration_across_a_restart(restartable_broker, uname):
    """A durable queue without x-message-ttl restores more messages than its RAM budget (20,000)
    from disk: the messages past the budget stay on disk, and those with an expiration property
    must still expire (their properties are read at recovery although their bodies are not)."""
    b = restartable_broker.start()
    conn = pika.BlockingConnection(params(b.port))
    ch = conn.channel()
    q, dlq = uname("ttl-paged"), uname("ttl-paged-dlq")
    ch.queue_declare(dlq, durable=True)
    ch.queue_declare(q, durable=True, arguments={
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
    plain = 20000  # the budget: what follows is restored to disk only
    persistent = pika.BasicProperties(delivery_mode=2)
    for i in range(plain):
        ch.basic_publish("", q, b"plain", persistent)
    for i in range(5):
        ch.basic_publish("", q, b"short-%d" % i,
                         pika.BasicProperties(delivery_mode=2, expiration="300"))
    settle(ch)
    conn.close()
    b = restartable_broker.restart()
    restored_by = time.monotonic()  # recovery ends before the port opens: the TTLs restarted before
    conn = pika.BlockingConnection(params(b.port))
    try:
        ch = conn.channel()
        assert queue_depth(ch, q) == plain + 5
        wait_past(restored_by + 0.3)
        # Behind 20,000 messages without a TTL the expired ones wait; once they are at the head
        # they are dead-lettered, never delivered.
        got = []
        ch.basic_qos(prefetch_count=1000)
        ch.basic_consume(q, lambda c, m, p, body: got.append(body), auto_ack=True)
        assert wait_until(lambda: queue_depth(ch, dlq) == 5 and len(got) >= plain,
                          timeout=DEADLINE, connection=conn)
        conn.process_data_events(time_limit=0.2)
        assert len(got) == plain and set(got) == {b"plain"}
        ch.cancel()
        _, props, body = ch.basic_get(dlq, auto_ack=True)
        assert body == b"short-0"
        assert x_death(props)[0]["reason"] == "expired"
    finally:
        close_quietly(conn)
