"""Flow control: the memory alarm blocks publishers (connection.blocked) while consumers keep
draining, and per-queue flow control keeps a fast publisher from burying a consumer."""
import threading
import time

import pika
import pytest

from amqp_helpers import params, unique, wait_until


def test_memory_alarm_blocks_publisher_and_consumers_still_drain(warren_factory):
    broker = warren_factory("--vm-memory-high-watermark-absolute", str(4 << 20))
    events = []
    pub = pika.BlockingConnection(params(broker.port, blocked_connection_timeout=None))
    pub.add_on_connection_blocked_callback(lambda conn, m: events.append(("blocked", m.method.reason)))
    pub.add_on_connection_unblocked_callback(lambda conn, m: events.append(("unblocked",)))
    ch = pub.channel()
    q = unique("alarm")
    ch.queue_declare(q)
    body = b"x" * 16384
    # Past the 4 MiB watermark the broker blocks this connection; stop once told so (a blocked
    # connection is not read, so further publishes would only fill the socket buffers).
    published = 0
    while published < 1024 and ("blocked", "low on memory") not in events:
        ch.basic_publish("", q, body)
        published += 1
        pub.process_data_events(0)
    assert wait_until(lambda: ("blocked", "low on memory") in events, timeout=5, connection=pub)
    # The log is read by a pump thread: give it a moment to see the line.
    assert wait_until(lambda: any("memory alarm set" in line for line in broker.log), timeout=5)
    assert 240 <= published < 1024, published

    consumer = pika.BlockingConnection(params(broker.port))
    cch = consumer.channel()
    depth_while_blocked = cch.queue_declare(q, passive=True).method.message_count
    assert 240 <= depth_while_blocked <= published

    # Another connection drains the queue; the alarm clears and the publisher is unblocked.
    drained = 0
    for method, props, b in cch.consume(q, auto_ack=True, inactivity_timeout=2):
        if method is None:
            break
        drained += 1
        if drained == published:
            break
    cch.cancel()
    assert drained == published
    assert wait_until(lambda: ("unblocked",) in events, timeout=5, connection=pub)
    ch.basic_publish("", q, b"after")
    assert cch.queue_declare(q, passive=True).method.message_count == 1
    ch.queue_delete(q)
    pub.close()
    consumer.close()


def test_publisher_faster_than_consumer_is_paced(warren_factory):
    """A publisher far ahead of a slow consumer is paused by per-queue flow control: the backlog
    stays near the queue's high-water mark (20,000) instead of growing with everything sent."""
    broker = warren_factory()
    q = unique("paced")
    setup = pika.BlockingConnection(params(broker.port))
    sch = setup.channel()
    sch.queue_declare(q)
    stop = threading.Event()
    counts = {"sent": 0, "received": 0}

    def consume():
        conn = pika.BlockingConnection(params(broker.port))
        ch = conn.channel()
        ch.basic_qos(prefetch_count=10)
        for method, props, body in ch.consume(q, inactivity_timeout=0.2):
            if stop.is_set():
                break
            if method is not None:
                counts["received"] += 1
                time.sleep(0.0005)  # a slow consumer
                ch.basic_ack(method.delivery_tag)
        ch.cancel()
        conn.close()

    def publish():
        conn = pika.BlockingConnection(params(broker.port))
        ch = conn.channel()
        while not stop.is_set() and counts["sent"] < 200000:
            for _ in range(1000):
                ch.basic_publish("", q, b"m")
            counts["sent"] += 1000
        conn.close()

    threads = [threading.Thread(target=consume, daemon=True),
               threading.Thread(target=publish, daemon=True)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 6
    max_depth = 0
    while time.monotonic() < deadline:
        time.sleep(0.1)
        max_depth = max(max_depth, sch.queue_declare(q, passive=True).method.message_count)
    stop.set()
    for t in threads:
        t.join(15)
    # Unpaced, the publisher would have pushed far past the high-water mark in this time;
    # flow control holds the backlog near it (the last read batch may overshoot a little).
    assert counts["sent"] > 25000, counts
    assert counts["received"] > 0
    assert max_depth < 30000, (max_depth, counts)
    sch.queue_delete(q)
    setup.close()
