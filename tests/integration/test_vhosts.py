"""Vhost isolation, vhost limits (max-connections, max-queues) and connection.update-secret."""

import socket
import struct
import threading
import time

import pika
import pytest

import amqp_helpers
import rawamqp
from amqp_helpers import expect_channel_closed
from tenancy_helpers import Seed, connect, open_refused, seeded_broker


@pytest.fixture
def two_vhosts(restartable_broker):
    seed = (Seed().user("alice", "apw").vhost("v1").vhost("v2", max_connections=1, max_queues=1)
            .permit("alice", "v1", ".*", ".*", ".*")
            .permit("guest", "v1", ".*", ".*", ".*")
            .permit("guest", "v2", ".*", ".*", ".*"))
    return seeded_broker(restartable_broker, seed)


def test_vhosts_are_isolated(two_vhosts):
    root = connect(two_vhosts, "guest", "guest", "/")
    v1 = connect(two_vhosts, "guest", "guest", "v1")
    rch, vch = root.channel(), v1.channel()
    for ch in (rch, vch):
        ch.queue_declare("q")
        ch.exchange_declare("x", "fanout")
        ch.queue_bind("q", "x")
    vch.basic_publish("x", "", b"in v1")
    vch.basic_publish("", "q", b"in v1 by default exchange")
    assert amqp_helpers.wait_until(lambda: amqp_helpers.queue_depth(vch, "q") == 2)
    assert amqp_helpers.queue_depth(rch, "q") == 0
    rch.queue_delete("q")
    rch.exchange_delete("x")
    assert amqp_helpers.queue_depth(vch, "q") == 2
    vch.queue_declare("only-v1")
    exc = expect_channel_closed(rch, root, rch.queue_declare, "only-v1", passive=True)
    assert (exc.reply_code, exc.reply_text) == (404, "NOT_FOUND - no queue 'only-v1' in vhost '/'")
    # alice has permissions on v1 only.
    connect(two_vhosts, "alice", "apw", "v1").close()
    code, text = open_refused(two_vhosts, "alice", "apw", "/")
    assert (code, text) == (530, "NOT_ALLOWED - access to vhost '/' refused for user 'alice'")
    root.close()
    v1.close()


def test_vhost_connection_limit(two_vhosts):
    first = connect(two_vhosts, "guest", "guest", "v2")
    code, text = open_refused(two_vhosts, "guest", "guest", "v2")
    assert (code, text) == (530, "NOT_ALLOWED - access to vhost 'v2' refused for user 'guest': "
                                 "connection limit (1) is reached")
    connect(two_vhosts, "guest", "guest", "v1").close()  # other vhosts are not limited
    first.close()
    # The slot is free again once the first connection is gone.
    amqp_helpers.wait_until(lambda: _can_open(two_vhosts, "v2"))


def _can_open(broker, vhost):
    try:
        connect(broker, "guest", "guest", vhost).close()
        return True
    except pika.exceptions.AMQPConnectionError:
        return False


def test_vhost_queue_limit(two_vhosts):
    c = connect(two_vhosts, "guest", "guest", "v2")
    ch = c.channel()
    ch.queue_declare("q1")
    ch.queue_declare("q1")  # redeclaring an existing queue is not a new queue
    exc = expect_channel_closed(ch, c, ch.queue_declare, "q2")
    assert (exc.reply_code, exc.reply_text) == (
        406, "PRECONDITION_FAILED - cannot declare queue 'q2': queue limit in vhost 'v2' (1) is "
             "reached")
    ch = c.channel()
    ch.queue_delete("q1")
    ch.queue_declare("q2")
    c.close()


def test_limits_and_vhosts_survive_restart(two_vhosts, restartable_broker):
    broker = restartable_broker.restart()
    first = connect(broker, "guest", "guest", "v2")
    code, _ = open_refused(broker, "guest", "guest", "v2")
    assert code == 530
    first.close()


def _update_secret(client, secret):
    args = rawamqp.longstr(secret.encode()) + rawamqp.shortstr(b"rotation")
    client.send_method(0, (10, 70), args)
    return client.read_frame(timeout=10)


def test_update_secret_accepts_the_current_password(broker):
    client = rawamqp.RawClient(broker.host, broker.port)
    client.handshake()
    frm = _update_secret(client, "guest")
    assert frm.class_method == (10, 71)
    client.channel_open(1)  # still usable
    client.close_socket()


def test_update_secret_is_accepted_whatever_the_secret(broker):
    # As RabbitMQ 3.10.8: its internal user database never re-checks a secret (the state of
    # rabbit_auth_backend_internal cannot expire), so a wrong one is accepted too.
    client = rawamqp.RawClient(broker.host, broker.port)
    client.handshake()
    frm = _update_secret(client, "not-the-password")
    assert frm.class_method == (10, 71)
    client.channel_open(1)
    client.close_socket()


def test_wrong_password_brute_force_does_not_stall_other_clients(broker):
    stop = threading.Event()
    attempts = []

    def brute():
        while not stop.is_set() and len(attempts) < 200:
            attempts.append(1)
            try:
                connect(broker, "guest", "wrong-%d" % len(attempts)).close()
            except pika.exceptions.AMQPConnectionError:
                pass

    threads = [threading.Thread(target=brute) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        c = connect(broker, "guest", "guest")
        ch = c.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        deadline = time.monotonic() + 60
        done = 0
        while done < 100 and time.monotonic() < deadline:
            ch.basic_publish("", q, b"m%d" % done)
            m = None
            while m is None and time.monotonic() < deadline:
                m = ch.basic_get(q, auto_ack=True)[2]
            done += m is not None
        assert done == 100
        c.close()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(attempts) >= 8
