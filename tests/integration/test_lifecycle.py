"""Broker process lifecycle (needs brokers of its own: skipped when
WARREN_TEST_AMQP_PORT points at an external broker).

Validated by hand against RabbitMQ 3.10 (SIGTERM to a second node): every
client immediately receives connection.close 320 "CONNECTION_FORCED - broker
forced connection closure with reason 'shutdown'" and then EOF.
"""

import signal

import pika

import amqp_helpers
import rawamqp


def test_two_brokers_on_ephemeral_ports(warren_factory):
    a = warren_factory()
    b = warren_factory()
    assert a.port != b.port
    for broker in (a, b):
        conn = pika.BlockingConnection(amqp_helpers.params(broker.port))
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, b"hi %d" % broker.port)
        assert ch.basic_get(q, auto_ack=True)[2] == b"hi %d" % broker.port
        conn.close()


def test_fresh_broker_has_no_leftover_queues(warren_factory, connect):
    """A queue declared on the shared broker does not exist on a fresh
    one (the data dir is per instance)."""
    name = amqp_helpers.unique("only-on-shared")
    connect().channel().queue_declare(name, auto_delete=True)
    fresh = warren_factory()
    conn = pika.BlockingConnection(amqp_helpers.params(fresh.port))
    ch = conn.channel()
    exc = amqp_helpers.expect_channel_closed(ch, conn, ch.queue_declare,
                                             name, passive=True)
    assert exc.reply_code == 404
    conn.close()


def test_sigterm_closes_clients_with_320_and_exits(warren_factory):
    broker = warren_factory()
    client = rawamqp.RawClient(broker.host, broker.port, timeout=10)
    try:
        client.handshake()
        client.channel_open(1)
        client.queue_declare(1, "", exclusive=True)
        broker.process.send_signal(signal.SIGTERM)
        # Generous bounds: they only keep a hang from blocking the suite.
        close = client.expect_connection_close(timeout=30)
        assert close.reply_code == 320
        assert close.reply_text.startswith("CONNECTION_FORCED - ")
        assert client.wait_for_eof(30) is not None
        broker.process.wait(30)
        assert broker.process.returncode == 0, broker.log_tail()
    finally:
        client.close_socket()
