"""Small helpers shared by the integration tests (pika based)."""

import threading
import time
import uuid

import pika
import pika.exceptions

HOST = "127.0.0.1"


def params(port, **kwargs):
    kwargs.setdefault("credentials", pika.PlainCredentials("guest", "guest"))
    kwargs.setdefault("connection_attempts", 1)
    kwargs.setdefault("socket_timeout", 5)
    kwargs.setdefault("stack_timeout", 10)
    kwargs.setdefault("blocked_connection_timeout", 10)
    return pika.ConnectionParameters(host=HOST, port=port, **kwargs)


def unique(prefix="x"):
    return "warren-it.%s.%s" % (prefix, uuid.uuid4().hex[:12])


def close_quietly(thing):
    try:
        if thing is not None and thing.is_open:
            thing.close()
    except Exception:  # noqa: E722 - best-effort cleanup
        pass


def wait_until(predicate, timeout=30.0, interval=0.02, connection=None):
    """Poll predicate() until it is true; pumps `connection` if given. The default deadline is
    generous on purpose: it only bounds a hang, on a busy 2-core machine."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return value
        if connection is not None:
            connection.process_data_events(time_limit=interval)
        else:
            time.sleep(interval)


def get_all(channel, queue, auto_ack=True, limit=100000):
    """basic.get until empty; returns list of (method, props, body)."""
    out = []
    while len(out) < limit:
        method, props, body = channel.basic_get(queue, auto_ack=auto_ack)
        if method is None:
            break
        out.append((method, props, body))
    return out


def bodies(messages):
    return [m[2] for m in messages]


def consume_n(channel, queue, n, timeout=30.0, auto_ack=True):
    """Consume exactly n messages (or fewer on timeout) via channel.consume."""
    out = []
    if n == 0:
        return out
    deadline = time.monotonic() + timeout
    for method, props, body in channel.consume(queue, auto_ack=auto_ack,
                                               inactivity_timeout=0.1):
        if method is not None:
            out.append((method, props, body))
            if len(out) >= n:
                break
        if time.monotonic() > deadline:
            break
    channel.cancel()
    return out


def collect(connection, timeout):
    """Run the connection's event loop for `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        connection.process_data_events(time_limit=min(remaining, 0.05))


def queue_depth(channel, queue):
    """Ready messages in `queue` (a passive queue.declare; durable or not, it does not matter)."""
    return channel.queue_declare(queue, passive=True).method.message_count


def settle(channel):
    """A synchronous round trip on `channel` that changes nothing (a passive declare of
    amq.direct). The broker handles a channel's frames in order, so when it returns every
    earlier publish, ack, nack or reject on this channel has been processed and routed."""
    channel.exchange_declare("amq.direct", passive=True)


class Collector(object):
    """A basic_consume callback that records deliveries."""

    def __init__(self, channel=None, ack=False):
        self.channel = channel
        self.ack = ack
        self.messages = []
        self.lock = threading.Lock()

    def __call__(self, ch, method, props, body):
        with self.lock:
            self.messages.append((method, props, body))
        if self.ack:
            ch.basic_ack(method.delivery_tag)

    @property
    def bodies(self):
        return [m[2] for m in self.messages]

    def __len__(self):
        return len(self.messages)


def expect_channel_closed(channel, connection, func, *args, **kwargs):
    """Call func and return the ChannelClosedByBroker that it raises or that
    arrives shortly afterwards (errors on asynchronous methods such as
    basic.publish or basic.ack arrive later); fails if none comes."""
    try:
        func(*args, **kwargs)
        deadline = time.monotonic() + 30  # returns as soon as the close arrives
        while channel.is_open and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.05)
    except pika.exceptions.ChannelClosedByBroker as exc:
        return exc
    reason = getattr(channel, "_closing_reason", None)
    if channel.is_closed and isinstance(
            reason, pika.exceptions.ChannelClosedByBroker):
        return reason
    raise AssertionError("channel was not closed by the broker (is_open=%r, "
                         "reason=%r)" % (channel.is_open, reason))


def declare(ch, uname, prefix, **arguments):
    """Declares the queue uname(prefix) with x-arguments; returns its name."""
    q = uname(prefix)
    ch.queue_declare(q, arguments=arguments or None)
    return q


def dead_letter_pair(ch, uname, prefix, **arguments):
    """A queue dead-lettering through the default exchange into its own "-dlq" queue: (queue,
    dead-letter queue)."""
    dlq = declare(ch, uname, prefix + "-dlq")
    arguments.update({"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
    return declare(ch, uname, prefix, **arguments), dlq
