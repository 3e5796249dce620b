"""Heartbeats: a live client stays connected, a silent one is dropped and
its resources are cleaned up.

RabbitMQ 3.10 sends heartbeats every timeout/2 and drops a client it has not
heard from for about three timeouts (3 s for a 1 s heartbeat); it just closes
the TCP connection, without connection.close.  These tests work against a
shared broker too: they only touch their own connections and queues.
"""

import time


import amqp_helpers
import rawamqp
from amqp_helpers import queue_depth, wait_until


def test_pika_connection_with_heartbeat_1s_stays_alive(connect):
    conn = connect(heartbeat=1)
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    start = time.monotonic()
    while time.monotonic() - start < 3.5:
        conn.process_data_events(time_limit=0.25)
    assert conn.is_open
    ch.basic_publish("", q, b"still here")
    method, _, body = ch.basic_get(q, auto_ack=True)
    assert body == b"still here"


def test_pika_connection_sleeping_with_heartbeats(connect):
    """BlockingConnection.sleep keeps servicing heartbeats."""
    conn = connect(heartbeat=1)
    ch = conn.channel()
    conn.sleep(2.5)
    assert conn.is_open
    assert ch.queue_declare("", exclusive=True).method.queue


def test_silent_client_is_disconnected_and_cleaned_up(raw_client, connect,
                                                      shared_queue):
    observer = connect()
    och = observer.channel()
    och.basic_publish("", shared_queue, b"held by the silent client")
    och.basic_publish("", shared_queue, b"still ready")
    assert wait_until(lambda: queue_depth(och, shared_queue) == 2, timeout=30)

    # a client that negotiates a 1 s heartbeat, takes a message and an
    # exclusive queue, then never sends anything again
    silent = raw_client(timeout=10)
    silent.handshake(heartbeat=1)
    silent.channel_open(1)
    excl, _, _ = silent.queue_declare(1, amqp_helpers.unique("silent-excl"),
                                      exclusive=True)
    silent.basic_qos(1, 1)
    silent.basic_consume(1, shared_queue, "silent-consumer")
    deliver, _, body = silent.read_delivery()
    assert body == b"held by the silent client"

    # a second silent client without heartbeats must not be dropped
    quiet = raw_client(timeout=10)
    quiet.handshake(heartbeat=0)
    quiet.channel_open(1)

    # The deadline only bounds a hang; it is far below the 60 s default, so a broker that
    # ignored the negotiated 1 s would fail it. The lower bound is the protocol's: a peer is
    # dead only after more than one silent interval.
    start = time.monotonic()
    closed_after = None
    while time.monotonic() - start < 30:
        try:
            frm = silent.read_frame(timeout=30, skip_heartbeats=False)
        except rawamqp.ConnectionClosedByPeer:
            closed_after = time.monotonic() - start
            break
        # heartbeats (and at most a connection.close) are all it may send
        assert frm.type == rawamqp.FRAME_HEARTBEAT or \
            frm.class_method == rawamqp.CONNECTION_CLOSE, frm
    assert closed_after is not None, "silent client was not disconnected"
    assert closed_after >= 1.0, closed_after

    # its unacked message is back, redelivered, in its original place
    assert wait_until(lambda: queue_depth(och, shared_queue) == 2, timeout=30)
    method, _, body = och.basic_get(shared_queue, auto_ack=True)
    assert (body, method.redelivered) == (b"held by the silent client", True)
    method, _, body = och.basic_get(shared_queue, auto_ack=True)
    assert (body, method.redelivered) == (b"still ready", False)

    # its exclusive queue is gone
    probe = observer.channel()
    exc = amqp_helpers.expect_channel_closed(
        probe, observer, probe.queue_declare, excl, passive=True)
    assert exc.reply_code == 404

    # the client without heartbeats is still served
    q, _, _ = quiet.queue_declare(1, "", exclusive=True)
    assert q.startswith("amq.gen-")
    quiet.close()


def test_client_sending_heartbeats_is_not_dropped(raw_client):
    c = raw_client()
    c.handshake(heartbeat=1)
    c.channel_open(1)
    start = time.monotonic()
    while time.monotonic() - start < 4:
        c.send(rawamqp.heartbeat_frame())
        try:
            c.read_frame(timeout=0.4, skip_heartbeats=False)
        except OSError:  # socket.timeout: nothing to read, fine
            pass
    q, _, _ = c.queue_declare(1, "", exclusive=True)
    assert q.startswith("amq.gen-")
    c.close()


def test_any_traffic_counts_as_heartbeat(raw_client):
    """A client that keeps sending other frames (no heartbeat frames) is
    alive too."""
    c = raw_client()
    c.handshake(heartbeat=1)
    c.channel_open(1)
    start = time.monotonic()
    while time.monotonic() - start < 4:
        c.queue_declare(1, "", exclusive=True)
        time.sleep(0.3)
    c.basic_qos(1, 5)
    c.close()
