"""Direct reply-to edge cases (the RPC tutorial in test_tutorials.py covers the happy path).

As RabbitMQ 3.10.8 (compared with it): a requester consumes the pseudo-queue
amq.rabbitmq.reply-to (no-ack) and publishes with reply_to=amq.rabbitmq.reply-to; the responder
sees a reply address amq.rabbitmq.reply-to.<token> that routes straight back to the requester's
channel while that consumer exists. A publish to an address nobody consumes is unroutable: with
mandatory it comes back as basic.return 312 NO_ROUTE, without it is dropped (a confirm acks it
either way). Every queue.declare of a name starting with amq.rabbitmq.reply-to is treated as
passive: the pseudo-queue and a live address exist (0 messages, 1 consumer), anything else is
404, and such a declare is never refused for the reserved amq. prefix.
"""

import pika
import pika.exceptions
import pytest

from amqp_helpers import expect_channel_closed, settle, wait_until

DEADLINE = 30
REPLY_TO = "amq.rabbitmq.reply-to"


class Requester(object):
    def __init__(self, connection):
        self.connection = connection
        self.channel = connection.channel()
        self.replies = []
        self.tag = self.channel.basic_consume(
            REPLY_TO, lambda ch, m, p, body: self.replies.append(body), auto_ack=True)

    def address(self, server_channel):
        """Sends a request through a private queue and returns the reply address the responder
        sees."""
        q = server_channel.queue_declare("", exclusive=True).method.queue
        self.channel.basic_publish("", q, b"request", pika.BasicProperties(reply_to=REPLY_TO))
        settle(self.channel)
        _, props, _ = server_channel.basic_get(q, auto_ack=True)
        return props.reply_to


def declare_ok(connection, name, passive=True):
    return connection.channel().queue_declare(name, passive=passive).method


def declare_404(connection, name, passive=True):
    ch = connection.channel()
    exc = expect_channel_closed(ch, connection, ch.queue_declare, name, passive=passive)
    assert exc.reply_code == 404, exc
    assert exc.reply_text == "NOT_FOUND - no queue '%s' in vhost '/'" % name
    assert connection.is_open


class Returns(object):
    def __init__(self, channel):
        self.returned = []
        channel.add_on_return_callback(
            lambda ch, method, props, body: self.returned.append((method, body)))


def test_reply_address_routes_back_while_its_consumer_lives(connection):
    """A mandatory reply to a live address is delivered and not returned. (RabbitMQ 3.10.8
    delivers it and also returns it, 312 NO_ROUTE: a documented caveat of 3.x, where reply
    addresses never count as routed, which RabbitMQ 4.x removed. Warren does not return a
    message it delivered.)"""
    req = Requester(connection)
    server = connection.channel()
    addr = req.address(server)
    assert addr.startswith(REPLY_TO + ".") and len(addr) > len(REPLY_TO) + 1
    returns = Returns(server)
    server.basic_publish("", addr, b"reply", mandatory=True)
    assert wait_until(lambda: req.replies == [b"reply"], timeout=DEADLINE, connection=connection)
    settle(server)
    connection.process_data_events(time_limit=0)
    assert returns.returned == []


def test_mandatory_publish_to_an_unknown_reply_address_is_returned_312(connection):
    ch = connection.channel()
    returns = Returns(ch)
    ch.basic_publish("", REPLY_TO + ".bogus", b"lost", mandatory=True)
    ch.basic_publish("", REPLY_TO + ".bogus", b"dropped", mandatory=False)
    settle(ch)
    assert wait_until(lambda: returns.returned, timeout=DEADLINE, connection=connection)
    settle(ch)
    connection.process_data_events(time_limit=0)
    assert len(returns.returned) == 1
    method, body = returns.returned[0]
    assert (method.reply_code, method.reply_text) == (312, "NO_ROUTE")
    assert (method.exchange, method.routing_key, body) == ("", REPLY_TO + ".bogus", b"lost")
    assert ch.is_open


def test_confirmed_publish_to_an_unknown_reply_address(connection):
    ch = connection.channel()
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError):  # returned, then acked
        ch.basic_publish("", REPLY_TO + ".bogus", b"lost", mandatory=True)
    ch.basic_publish("", REPLY_TO + ".bogus", b"dropped")  # acked, no error
    assert ch.is_open


def test_reply_address_becomes_unknown_when_the_requester_goes(connection):
    req = Requester(connection)
    server = connection.channel()
    addr = req.address(server)
    ok = declare_ok(connection, addr)
    assert (ok.queue, ok.message_count, ok.consumer_count) == (addr, 0, 1)
    req.channel.close()
    declare_404(connection, addr)
    returns = Returns(server)
    server.basic_publish("", addr, b"late", mandatory=True)
    assert wait_until(lambda: returns.returned, timeout=DEADLINE, connection=connection)
    assert returns.returned[0][0].reply_code == 312


def test_cancelled_reply_consumer_makes_the_address_unknown(connection):
    req = Requester(connection)
    addr = req.address(connection.channel())
    declare_ok(connection, addr)
    req.channel.basic_cancel(req.tag)
    declare_404(connection, addr)


def test_declares_of_reply_names_are_passive(connection):
    """The pseudo-queue itself always exists with one consumer, a live address too, even
    declared non-passive (no 403 for the amq. prefix); other names under the prefix are 404."""
    req = Requester(connection)
    addr = req.address(connection.channel())
    for passive in (True, False):
        ok = declare_ok(connection, REPLY_TO, passive=passive)
        assert (ok.queue, ok.message_count, ok.consumer_count) == (REPLY_TO, 0, 1)
        ok = declare_ok(connection, addr, passive=passive)
        assert (ok.queue, ok.message_count, ok.consumer_count) == (addr, 0, 1)
        for name in (REPLY_TO + ".bogus", REPLY_TO + ".", addr + "x", REPLY_TO + "x"):
            declare_404(connection, name, passive=passive)
    assert declare_ok(connection, addr).consumer_count == 1  # nothing was created or deleted


def test_reply_to_without_a_reply_consumer_is_406(connection):
    setup = connection.channel()
    q = setup.queue_declare("", exclusive=True).method.queue
    ch = connection.channel()
    exc = expect_channel_closed(ch, connection, ch.basic_publish, "", q, b"r",
                                pika.BasicProperties(reply_to=REPLY_TO))
    assert exc.reply_code == 406
    assert exc.reply_text == "PRECONDITION_FAILED - fast reply consumer does not exist"
    assert setup.queue_declare(q, passive=True).method.message_count == 0
    assert connection.is_open
