"""x-expires as RabbitMQ 3.10 has it: a queue unused for that many milliseconds is deleted, with
its messages (which are not dead-lettered). Unused means no consumers, and no queue.declare
(passive or not) and no basic.get for the period; each of those, and the last consumer going
away, starts the countdown again. Publishing into a queue is no use of it.

How a test sees that a queue is gone without using it: a mandatory publish to its name through
the default exchange comes back (pika's UnroutableError in confirm mode); a passive declare would
count as a use. Order without clocks: a control queue with the same x-expires declared after the
queue under test expires later, so once the control is gone, the queue under test would be gone
too if nothing had kept it alive.
"""

import pika
import pika.exceptions
import pytest

import amqp_helpers
from amqp_helpers import queue_depth, settle, wait_until

DEADLINE = 30  # seconds to wait for something that must happen (bounds a hang only)
EXPIRES = 200  # ms


class Probe(object):
    def __init__(self, connection):
        self.ch = connection.channel()
        self.ch.confirm_delivery()

    def gone(self, queue):
        try:
            self.ch.basic_publish("", queue, b"probe", mandatory=True)
            return False
        except pika.exceptions.UnroutableError:
            return True


def expiring(ch, uname, prefix, **arguments):
    q = uname(prefix)
    arguments["x-expires"] = EXPIRES
    ch.queue_declare(q, arguments=arguments)
    return q


def exists(connection, queue):
    ch = connection.channel()
    try:
        ch.queue_declare(queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        assert exc.reply_code == 404
        return False
    ch.close()
    return True


def test_unused_queue_is_deleted_with_its_messages(connection, uname):
    ch = connection.channel()
    dlq = uname("exp-dlq")
    ch.queue_declare(dlq)
    q = expiring(ch, uname, "exp-unused", **{"x-dead-letter-exchange": "",
                                            "x-dead-letter-routing-key": dlq})
    for body in (b"rejected", b"kept"):
        ch.basic_publish("", q, body)
    settle(ch)
    # Control: a dead letter from this queue does arrive.
    method, _, body = ch.basic_get(q)
    assert body == b"rejected"
    ch.basic_reject(method.delivery_tag, requeue=False)
    assert wait_until(lambda: queue_depth(ch, dlq) == 1, timeout=DEADLINE)
    probe = Probe(connection)
    # The probes publish into the queue all along: publishing does not keep it alive.
    assert wait_until(lambda: probe.gone(q), timeout=DEADLINE)
    assert not exists(connection, q)
    # Deleted with its messages: nothing more was dead-lettered.
    assert queue_depth(ch, dlq) == 1
    ch.queue_delete(dlq)


def test_a_consumer_keeps_the_queue_alive_until_it_goes(connection, uname):
    ch = connection.channel()
    q = expiring(ch, uname, "exp-consumed")
    consumer = connection.channel()
    tag = consumer.basic_consume(q, lambda *args: None)
    control = expiring(ch, uname, "exp-control")
    probe = Probe(connection)
    assert wait_until(lambda: probe.gone(control), timeout=DEADLINE)
    assert exists(connection, q)
    consumer.basic_cancel(tag)
    assert wait_until(lambda: probe.gone(q), timeout=DEADLINE)
    assert not exists(connection, q)


def test_a_consumer_whose_channel_closes_restarts_the_countdown(connection, uname):
    ch = connection.channel()
    q = expiring(ch, uname, "exp-chclose")
    consumer = connection.channel()
    consumer.basic_consume(q, lambda *args: None)
    control = expiring(ch, uname, "exp-chclose-control")
    probe = Probe(connection)
    assert wait_until(lambda: probe.gone(control), timeout=DEADLINE)
    consumer.close()
    assert wait_until(lambda: probe.gone(q), timeout=DEADLINE)


USE_EXPIRES = 1000  # ms: the longest pause between two uses that the test below tolerates


@pytest.mark.parametrize("use", ["redeclare", "passive-declare", "basic-get", "consume-cancel"])
def test_use_restarts_the_countdown(connection, uname, use):
    """q is declared before the control, with the same x-expires, and used over and over until
    the control has expired: q outlives it only if each use restarted its countdown (a use of a
    deleted queue fails with 404)."""
    ch = connection.channel()
    q = uname("exp-used")
    ch.queue_declare(q, arguments={"x-expires": USE_EXPIRES})
    control = uname("exp-used-control")
    ch.queue_declare(control, arguments={"x-expires": USE_EXPIRES})

    def use_q():
        if use == "redeclare":
            ch.queue_declare(q, arguments={"x-expires": USE_EXPIRES})
        elif use == "passive-declare":
            ch.queue_declare(q, passive=True)
        elif use == "basic-get":
            assert ch.basic_get(q)[0] is None  # even an empty get counts
        else:
            ch.basic_cancel(ch.basic_consume(q, lambda *args: None))

    probe = Probe(connection)
    uses = 0
    while not probe.gone(control):
        use_q()
        uses += 1
        assert uses < 100000, "the control never expired"
    use_q()  # still there
    # Unused from now on, it goes too.
    assert wait_until(lambda: probe.gone(q), timeout=DEADLINE)


def test_queue_without_x_expires_stays(connection, uname):
    """Control for the probe: a queue without x-expires outlives an expiring one."""
    ch = connection.channel()
    q = uname("exp-none")
    ch.queue_declare(q)
    control = expiring(ch, uname, "exp-none-control")
    probe = Probe(connection)
    assert wait_until(lambda: probe.gone(control), timeout=DEADLINE)
    assert not probe.gone(q)
    assert amqp_helpers.queue_depth(ch, q) == 1  # the probe's message
    ch.queue_delete(q)
