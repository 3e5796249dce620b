"""Helpers for test_robustness.py: frame templates for every server-side
method, a seeded frame mutator, the oracle that decides whether the broker
answered an abusive byte stream acceptably, field-table bombs, and process
probes (RSS, liveness, a pika round trip).

Everything here is deterministic for a given random.Random seed.
"""

import os
import socket
import struct
import time

import pika

import amqp_helpers
import rawamqp
from rawamqp import (FRAME_HEADER, FRAME_METHOD, bits, content_header_frame,
                     method_frame, shortstr, table)

# Reply codes the broker may legitimately put in a channel.close (soft
# errors) or a connection.close (hard errors; 403 only for a refused login).
SOFT_CODES = {311, 312, 313, 403, 404, 405, 406}
HARD_CODES = {320, 402, 403, 501, 502, 503, 504, 505, 506, 530, 540, 541}
CODE_NAMES = {
    311: "CONTENT_TOO_LARGE", 312: "NO_ROUTE", 313: "NO_CONSUMERS",
    320: "CONNECTION_FORCED", 402: "INVALID_PATH", 403: "ACCESS_REFUSED",
    404: "NOT_FOUND", 405: "RESOURCE_LOCKED", 406: "PRECONDITION_FAILED",
    501: "FRAME_ERROR", 502: "SYNTAX_ERROR", 503: "COMMAND_INVALID",
    504: "CHANNEL_ERROR", 505: "UNEXPECTED_FRAME", 506: "RESOURCE_ERROR",
    530: "NOT_ALLOWED", 540: "NOT_IMPLEMENTED", 541: "INTERNAL_ERROR",
}

PROBE_CHANNEL = 2000          # <= the default channel_max of 2047
EXCHANGE_DECLARE = (40, 10)
EXCHANGE_DELETE = (40, 20)
EXCHANGE_BIND = (40, 30)
EXCHANGE_UNBIND = (40, 40)
QUEUE_BIND = (50, 20)
QUEUE_PURGE = (50, 30)
QUEUE_DELETE = (50, 40)
QUEUE_UNBIND = (50, 50)
BASIC_CANCEL = (60, 30)
BASIC_REJECT = (60, 90)
BASIC_RECOVER_ASYNC = (60, 100)
BASIC_RECOVER = (60, 110)
BASIC_NACK = (60, 120)
CHANNEL_FLOW = (20, 20)
CONFIRM_SELECT = (85, 10)
TX_SELECT = (90, 10)
TX_COMMIT = (90, 20)
TX_ROLLBACK = (90, 30)

# Every (class, method) pair of AMQP 0-9-1, client- and server-side, used to
# retarget a method frame's arguments at another method.
ALL_METHODS = [
    (10, 10), (10, 11), (10, 20), (10, 21), (10, 30), (10, 31), (10, 40),
    (10, 41), (10, 50), (10, 51), (20, 10), (20, 11), (20, 20), (20, 21),
    (20, 40), (20, 41), (40, 10), (40, 11), (40, 20), (40, 21), (40, 30),
    (40, 31), (40, 40), (40, 51), (50, 10), (50, 11), (50, 20), (50, 21),
    (50, 30), (50, 31), (50, 40), (50, 41), (50, 50), (50, 51), (60, 10),
    (60, 11), (60, 20), (60, 21), (60, 30), (60, 31), (60, 40), (60, 50),
    (60, 60), (60, 70), (60, 71), (60, 72), (60, 80), (60, 90), (60, 100),
    (60, 110), (60, 111), (60, 120), (85, 10), (85, 11), (90, 10), (90, 11),
    (90, 20), (90, 21), (90, 30), (90, 31),
]


class OracleFailure(AssertionError):
    pass


# ---------------------------------------------------------------------------
# Field tables


def rich_table():
    """A table with one value of every RabbitMQ field type."""
    return table([
        ("bool", True), ("i8", rawamqp.Typed("b", -5)),
        ("u8", rawamqp.Typed("B", 250)), ("i16", rawamqp.Typed("s", -300)),
        ("u16", rawamqp.Typed("u", 60000)), ("i32", 123456),
        ("u32", rawamqp.Typed("i", 4000000000)), ("i64", 2 ** 40),
        ("f", rawamqp.Typed("f", 1.5)), ("d", 2.25),
        ("dec", rawamqp.Typed("D", (2, 12345))), ("s", "text"),
        ("bytes", rawamqp.Typed("x", b"\x00\x01")),
        ("ts", rawamqp.Typed("T", 1700000000)), ("void", None),
        ("arr", [1, "two", [3.0], {"k": "v"}]), ("nested", {"a": {"b": 1}}),
    ])


def nested_table(depth, kind="F"):
    """A table nested `depth` levels deep: {a: {a: ... {}}}; with kind "A"
    the nesting goes through arrays instead: {a: [[[...]]]}."""
    if kind == "F":
        inner = struct.pack(">I", 0)
        for _ in range(depth):
            entry = shortstr("a") + b"F" + inner
            inner = struct.pack(">I", len(entry)) + entry
        return inner
    inner = b"A" + struct.pack(">I", 0)
    for _ in range(depth - 1):
        inner = b"A" + struct.pack(">I", len(inner)) + inner
    entry = shortstr("a") + inner
    return struct.pack(">I", len(entry)) + entry


def raw_table(entries_bytes, declared_len=None):
    n = len(entries_bytes) if declared_len is None else declared_len
    return struct.pack(">I", n) + entries_bytes


# ---------------------------------------------------------------------------
# Method argument encoders (server-side methods)


def queue_declare_args(queue, exclusive=True, auto_delete=True,
                       arguments=None, passive=False, durable=False,
                       no_wait=False):
    tbl = arguments if isinstance(arguments, bytes) else table(arguments)
    return (struct.pack(">H", 0) + shortstr(queue)
            + bits(passive, durable, exclusive, auto_delete, no_wait) + tbl)


def exchange_declare_args(name, kind="direct", arguments=None,
                          passive=False, durable=False, auto_delete=True,
                          internal=False, no_wait=False):
    tbl = arguments if isinstance(arguments, bytes) else table(arguments)
    return (struct.pack(">H", 0) + shortstr(name) + shortstr(kind)
            + bits(passive, durable, auto_delete, internal, no_wait) + tbl)


def basic_consume_args(queue, tag="", no_ack=False, exclusive=False,
                       arguments=None, no_wait=False):
    tbl = arguments if isinstance(arguments, bytes) else table(arguments)
    return (struct.pack(">H", 0) + shortstr(queue) + shortstr(tag)
            + bits(False, no_ack, exclusive, no_wait) + tbl)


def publish_frames(channel, exchange, routing_key, body, mandatory=False,
                   flags=0, props=b"", body_size=None, chunk=100000):
    frames = [method_frame(channel, rawamqp.BASIC_PUBLISH,
                           struct.pack(">H", 0) + shortstr(exchange)
                           + shortstr(routing_key) + bits(mandatory, False)),
              content_header_frame(channel, len(body) if body_size is None
                                   else body_size, flags=flags, props=props)]
    for i in range(0, len(body), chunk):
        frames.append(rawamqp.body_frame(channel, body[i:i + chunk]))
    return frames


def all_props():
    """(flags, encoded properties) with all 14 basic properties set."""
    flags = 0xFFFC
    props = (shortstr("text/plain") + shortstr("gzip")
             + table({"h": 1, "x": {"y": [1, 2]}}) + b"\x02" + b"\x05"
             + shortstr("corr") + shortstr("reply") + shortstr("60000")
             + shortstr("mid") + struct.pack(">Q", 1700000000)
             + shortstr("type") + shortstr("guest") + shortstr("app")
             + shortstr("cluster"))
    return flags, props


def templates(queue, exchange):
    """(label, [frames]) sequences of valid frames for every server-side
    method, on channel 1 (connection.close on channel 0).  `queue` is an
    exclusive queue and `exchange` a direct exchange declared beforehand."""
    flags, props = all_props()
    t = [
        ("queue.declare", [method_frame(1, rawamqp.QUEUE_DECLARE,
                                        queue_declare_args(queue + ".2",
                                                           arguments=None)
                                        )]),
        ("queue.declare+table", [method_frame(
            1, rawamqp.QUEUE_DECLARE,
            queue_declare_args(queue + ".3", arguments=rich_table()))]),
        ("queue.bind", [method_frame(1, QUEUE_BIND, struct.pack(">H", 0)
                                     + shortstr(queue) + shortstr(exchange)
                                     + shortstr("rk") + bits(False)
                                     + rich_table())]),
        ("queue.unbind", [method_frame(1, QUEUE_UNBIND, struct.pack(">H", 0)
                                       + shortstr(queue) + shortstr(exchange)
                                       + shortstr("rk") + table({}))]),
        ("queue.purge", [method_frame(1, QUEUE_PURGE, struct.pack(">H", 0)
                                      + shortstr(queue) + bits(False))]),
        ("queue.delete", [method_frame(1, QUEUE_DELETE, struct.pack(">H", 0)
                                       + shortstr(queue)
                                       + bits(False, False, False))]),
        ("exchange.declare+table", [method_frame(
            1, EXCHANGE_DECLARE,
            exchange_declare_args(exchange + ".2", "headers",
                                  arguments=rich_table()))]),
        ("exchange.declare-topic", [method_frame(
            1, EXCHANGE_DECLARE,
            exchange_declare_args(exchange + ".3", "topic",
                                  arguments={"alternate-exchange": "ae"}))]),
        ("exchange.delete", [method_frame(1, EXCHANGE_DELETE,
                                          struct.pack(">H", 0)
                                          + shortstr(exchange + ".x")
                                          + bits(False, False))]),
        ("exchange.bind", [method_frame(1, EXCHANGE_BIND, struct.pack(">H", 0)
                                        + shortstr(exchange)
                                        + shortstr("amq.fanout")
                                        + shortstr("rk") + bits(False)
                                        + rich_table())]),
        ("exchange.unbind", [method_frame(1, EXCHANGE_UNBIND,
                                          struct.pack(">H", 0)
                                          + shortstr(exchange)
                                          + shortstr("amq.fanout")
                                          + shortstr("rk") + bits(False)
                                          + table({}))]),
        ("basic.qos", [method_frame(1, rawamqp.BASIC_QOS,
                                    struct.pack(">IH", 0, 10)
                                    + bits(False))]),
        ("basic.consume", [method_frame(1, rawamqp.BASIC_CONSUME,
                                        basic_consume_args(
                                            queue, "ctag",
                                            arguments={"x-priority": 5}))]),
        ("basic.cancel", [method_frame(1, BASIC_CANCEL, shortstr("ctag")
                                       + bits(False))]),
        ("basic.publish", publish_frames(1, "", queue, b"hello fuzz")),
        ("basic.publish+props", publish_frames(1, exchange, "rk",
                                               b"x" * 3000, mandatory=True,
                                               flags=flags, props=props,
                                               chunk=1000)),
        ("basic.publish-empty", publish_frames(1, "", queue, b"")),
        ("basic.get", [method_frame(1, rawamqp.BASIC_GET,
                                    struct.pack(">H", 0) + shortstr(queue)
                                    + bits(False))]),
        ("basic.ack", [method_frame(1, rawamqp.BASIC_ACK,
                                    struct.pack(">Q", 1) + bits(True))]),
        ("basic.reject", [method_frame(1, BASIC_REJECT,
                                       struct.pack(">Q", 1) + bits(True))]),
        ("basic.nack", [method_frame(1, BASIC_NACK, struct.pack(">Q", 0)
                                     + bits(True, True))]),
        ("basic.recover", [method_frame(1, BASIC_RECOVER, bits(True))]),
        ("basic.recover-async", [method_frame(1, BASIC_RECOVER_ASYNC,
                                              bits(True))]),
        ("channel.flow", [method_frame(1, CHANNEL_FLOW, bits(True))]),
        ("channel.close", [method_frame(1, rawamqp.CHANNEL_CLOSE,
                                        struct.pack(">H", 200)
                                        + shortstr("bye")
                                        + struct.pack(">HH", 0, 0))]),
        ("confirm.select", [method_frame(1, CONFIRM_SELECT, bits(False))]),
        ("tx.select", [method_frame(1, TX_SELECT)]),
        ("tx.commit", [method_frame(1, TX_COMMIT)]),
        ("connection.close", [method_frame(0, rawamqp.CONNECTION_CLOSE,
                                           struct.pack(">H", 200)
                                           + shortstr("bye")
                                           + struct.pack(">HH", 0, 0))]),
        ("heartbeat", [rawamqp.heartbeat_frame()]),
    ]
    return t


# ---------------------------------------------------------------------------
# The mutator


def split_frame(data):
    ftype, channel, size = struct.unpack(">BHI", data[:7])
    return ftype, channel, size, data[7:-1], data[-1]


def join_frame(ftype, channel, payload, size=None, end=0xCE):
    return (struct.pack(">BHI", ftype & 0xFF, channel & 0xFFFF,
                        (len(payload) if size is None else size) & 0xFFFFFFFF)
            + payload + bytes([end & 0xFF]))


def _flip(rng, payload):
    if not payload:
        return payload
    b = bytearray(payload)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(b))
        mode = rng.random()
        if mode < 0.4:
            b[i] ^= 1 << rng.randrange(8)
        elif mode < 0.7:
            b[i] = rng.choice([0x00, 0xFF, 0x7F, 0x80, 0xCE, 0x01])
        else:
            b[i] = rng.randrange(256)
    return bytes(b)


def mutate_frame(rng, data):
    """Returns (mutated bytes, op name)."""
    ftype, channel, size, payload, end = split_frame(data)
    ops = ["flip", "flip", "flip", "truncate", "extend", "type", "channel",
           "size", "end", "retarget", "interesting"]
    op = rng.choice(ops)
    if op == "flip":
        return join_frame(ftype, channel, _flip(rng, payload)), op
    if op == "truncate":
        n = rng.randrange(len(payload)) if payload else 0
        return join_frame(ftype, channel, payload[:n]), op
    if op == "extend":
        extra = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        return join_frame(ftype, channel, payload + extra), op
    if op == "type":
        return join_frame(rng.choice([0, 1, 2, 3, 4, 7, 8, 9, 0xCE, 0xFF,
                                      rng.randrange(256)]),
                          channel, payload), op
    if op == "channel":
        return join_frame(ftype, rng.choice([0, 2, 3, 2047, 2048, 65535,
                                             rng.randrange(65536)]),
                          payload), op
    if op == "size":
        choices = [0, 1, len(payload) - 1, len(payload) + 1,
                   len(payload) + 100, 4096, 131064, 131065, 2 ** 31,
                   2 ** 32 - 1, rng.randrange(2 ** 32)]
        return join_frame(ftype, channel, payload,
                          size=max(0, rng.choice(choices))), op
    if op == "end":
        return join_frame(ftype, channel, payload,
                          end=rng.choice([0, 0xCD, 0xFF,
                                          rng.randrange(256)])), op
    if op == "retarget" and ftype == FRAME_METHOD and len(payload) >= 4:
        cm = rng.choice(ALL_METHODS + [(rng.randrange(65536),
                                        rng.randrange(65536))])
        return join_frame(ftype, channel,
                          struct.pack(">HH", *cm) + payload[4:]), op
    # "interesting" values at random positions (lengths, sizes, flags)
    b = bytearray(payload)
    if len(b) >= 2:
        width = rng.choice([1, 2, 4, 8])
        width = min(width, len(b))
        i = rng.randrange(len(b) - width + 1)
        value = rng.choice([0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF,
                            0xFFFFFFFF, 2 ** 63, 2 ** 64 - 1])
        value &= (1 << (8 * width)) - 1
        b[i:i + width] = value.to_bytes(width, "big")
    if ftype == FRAME_HEADER and len(b) >= 14 and rng.random() < 0.5:
        # body size and property flags of a content header
        b[4:12] = rng.choice([0, 1, 2 ** 63, 2 ** 64 - 1, 10 ** 9,
                              134217729]).to_bytes(8, "big")
        b[12:14] = rng.randrange(65536).to_bytes(2, "big")
    return join_frame(ftype, channel, bytes(b)), "interesting"


def mutate_sequence(rng, frames):
    """Mutates one frame of a valid frame sequence, or the sequence itself.
    Returns (bytes to send, description)."""
    frames = list(frames)
    r = rng.random()
    if r < 0.75 or len(frames) == 1:
        i = rng.randrange(len(frames))
        frames[i], op = mutate_frame(rng, frames[i])
        return b"".join(frames), "frame %d: %s" % (i, op)
    if r < 0.85:
        i = rng.randrange(len(frames))
        del frames[i]
        return b"".join(frames), "drop frame %d" % i
    if r < 0.92:
        i = rng.randrange(len(frames))
        frames.insert(i, frames[i])
        return b"".join(frames), "duplicate frame %d" % i
    data = b"".join(frames)
    n = rng.randrange(1, len(data))
    return data[:n], "cut stream at %d of %d" % (n, len(data))


# ---------------------------------------------------------------------------
# The oracle


def check_close(close, kind):
    codes = HARD_CODES if kind == "connection" else SOFT_CODES
    if close.reply_code not in codes:
        raise OracleFailure("%s.close with unexpected reply code: %r"
                            % (kind, close))
    name = CODE_NAMES[close.reply_code]
    if close.reply_text != name and \
            not close.reply_text.startswith(name + " - "):
        raise OracleFailure("%s.close reply text does not start with %s: %r"
                            % (kind, name, close))


def parse_close(frm):
    """Like rawamqp.Close, but tolerant of non-UTF-8 reply texts (the
    broker may legitimately echo a client's binary names back)."""
    r = rawamqp.Reader(frm.payload[4:])
    close = rawamqp.Close.__new__(rawamqp.Close)
    close.channel = frm.channel
    close.reply_code = r.short()
    close.reply_text = r.take(r.octet()).decode("utf-8", "replace")
    close.class_id = r.short()
    close.method_id = r.short()
    return close


class EofWatcher(object):
    """Collects connections that must reach EOF soon (after the broker's
    connection.close, or our close-ok) and checks them all at once, so
    that the broker's 3 s close timer after fatal frame errors is waited
    for only once, not per iteration."""

    def __init__(self, grace=30.0):
        self.grace = grace
        self.pending = []  # (deadline, client, label)

    def add(self, client, label):
        self.pending.append((time.monotonic() + self.grace, client, label))

    def finish(self):
        import select
        pending = list(self.pending)
        self.pending = []
        try:
            while pending:
                now = time.monotonic()
                timeout = max(0.0, min(p[0] for p in pending) - now)
                socks = [p[1].sock for p in pending]
                readable, _, _ = select.select(socks, [], [], timeout)
                still = []
                for p in pending:
                    if p[1].sock not in readable:
                        still.append(p)
                        continue
                    try:
                        chunk = p[1].sock.recv(65536)
                    except OSError:
                        chunk = b""
                    if chunk:
                        still.append(p)
                    else:
                        p[1].close_socket()
                pending = still
                now = time.monotonic()
                late = [p for p in pending if p[0] <= now and
                        p[1].sock not in readable]
                if late:
                    raise OracleFailure(
                        "%d connection(s) still open %.0f s after their "
                        "connection.close, e.g. %s"
                        % (len(late), self.grace, late[0][2]))
        finally:
            for p in pending:
                p[1].close_socket()


def probe_frame():
    return method_frame(PROBE_CHANNEL, rawamqp.CHANNEL_OPEN, shortstr(""))


def drain_until_verdict(client, timeout, eof_watcher=None, label=""):
    """Reads what the broker answers after an abusive byte stream followed
    by the probe (channel.open on PROBE_CHANNEL).

    Returns one of "probe-ok", "closed:<code>", "eof", "stalled" (nothing
    at all within timeout).  Raises OracleFailure on a bad close."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "stalled"
        try:
            frm = client.read_frame(timeout=remaining)
        except socket.timeout:
            return "stalled"
        except rawamqp.ConnectionClosedByPeer:
            return "eof"
        except rawamqp.ProtocolError as exc:
            raise OracleFailure("broker sent a malformed frame: %s" % exc)
        except OSError:
            return "eof"
        if frm.type != FRAME_METHOD:
            continue  # deliveries, returns, get-ok contents
        if frm.class_method == rawamqp.CONNECTION_CLOSE:
            close = parse_close(frm)
            if frm.channel != 0:
                raise OracleFailure("connection.close on channel %d"
                                    % frm.channel)
            check_close(close, "connection")
            try:
                client.send_method(0, rawamqp.CONNECTION_CLOSE_OK)
            except OSError:
                pass
            _expect_eof(client, eof_watcher, "%s %r" % (label, close))
            return "closed:%d" % close.reply_code
        if frm.class_method == rawamqp.CONNECTION_CLOSE_OK:
            # the client (us) closes the socket after close-ok (spec;
            # RabbitMQ waits for it, Warren closes it as well)
            return "close-ok"
        if frm.class_method == rawamqp.CHANNEL_CLOSE:
            close = parse_close(frm)
            check_close(close, "channel")
            try:
                client.send_method(frm.channel, rawamqp.CHANNEL_CLOSE_OK)
            except OSError:
                pass
            continue
        if frm.class_method == rawamqp.CHANNEL_OPEN_OK and \
                frm.channel == PROBE_CHANNEL:
            return "probe-ok"


def _expect_eof(client, eof_watcher, label):
    if eof_watcher is not None:
        eof_watcher.add(client, label)
    elif client.wait_for_eof(30) is None:
        raise OracleFailure("socket still open 30 s after connection.close "
                            "(%s)" % label)


def wait_while_busy(client, pid, read, limit=30.0):
    """After `read` (a function of a timeout that returns a verdict, or
    "stalled" when nothing came) found nothing: keeps reading while the
    broker process `pid` is busy, up to `limit` seconds.  Returns "stalled"
    only once the broker idles (every thread asleep) and still nothing
    came, i.e. it waits for more bytes; a slow broker is not stalled.
    Without a pid (an external broker) returns "stalled" at once."""
    verdict = "stalled"
    if pid is None:
        return verdict
    deadline = time.monotonic() + limit
    while verdict == "stalled" and time.monotonic() < deadline:
        if process_idle(pid):
            # Idle: whatever it sent is in our socket buffer by now.
            return read(0.1)
        verdict = read(0.2)
    return verdict


def judge(client, frame_max, label, probe_timeout=0.5, pad_timeout=30.0,
          eof_watcher=None, pid=None):
    """Sends the probe after an abusive stream and insists on a verdict.

    A broker that is still waiting for bytes (an announced frame size
    larger than what was sent: no answer, and the broker process `pid`
    idles, see wait_while_busy) gets frame_max + 8 zero bytes: that must
    complete the pending frame and end the connection with an error."""
    try:
        client.send(probe_frame())
    except OSError:
        return "eof"

    def read(timeout):
        return drain_until_verdict(client, timeout, eof_watcher, label)

    verdict = read(probe_timeout)
    if verdict == "stalled":
        verdict = wait_while_busy(client, pid, read)
    if verdict != "stalled":
        return verdict
    try:
        client.send(b"\x00" * (frame_max + 8) + probe_frame())
    except OSError:
        return "eof"
    verdict = drain_until_verdict(client, pad_timeout, eof_watcher, label)
    if verdict == "stalled":
        raise OracleFailure("%s: no answer and no close %.1f s after the "
                            "probe and %d padding bytes"
                            % (label, probe_timeout + pad_timeout,
                               frame_max + 8))
    if verdict == "probe-ok":
        # The broker waited (e.g. for a content body on channel 1) and the
        # padding was accepted as payload: acceptable.
        return "probe-ok-after-pad"
    return verdict + "-after-pad"


# ---------------------------------------------------------------------------
# Process and pika probes


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS for pid %d" % pid)


def assert_alive(broker):
    if broker.process is not None and broker.process.poll() is not None:
        raise AssertionError("warren-server exited with %r; log tail:\n%s"
                             % (broker.process.poll(), broker.log_tail(80)))


def pika_roundtrip(port, body=b"still alive", timeout=30):
    """A fresh pika connection declares a queue, publishes, gets."""
    conn = pika.BlockingConnection(amqp_helpers.params(
        port, socket_timeout=timeout, stack_timeout=timeout,
        blocked_connection_timeout=timeout))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, body)
        method, _, got = ch.basic_get(q, auto_ack=True)
        assert method is not None and got == body, (method, got)
        ch.queue_delete(q)
    finally:
        amqp_helpers.close_quietly(conn)


def broker_ok(broker):
    assert_alive(broker)
    pika_roundtrip(broker.port)
    assert_alive(broker)


# ---------------------------------------------------------------------------
# A private broker with resource limits, registered with conftest so that failing tests show
# its log; stop it with conftest.stop_broker(b), which checks that it exits cleanly.


def start_limited_warren(address_space=None, nofile=None, extra_args=()):
    import conftest
    return conftest.start_warren(extra_args, address_space=address_space, nofile=nofile)


def thread_states(pid):
    """The scheduler state letter (R running or runnable, S sleeping, D disk
    wait, ...) of every thread of a process."""
    states = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        except (OSError, IndexError):
            pass  # the thread ended
    return states


def process_idle(pid, samples=5, interval=0.01):
    """True when no thread of the process is running, runnable or in disk
    wait in `samples` consecutive samples: it waits for input.  A busy
    process shows R even when the machine is too loaded to run it, so this
    does not depend on the machine's speed."""
    for _ in range(samples):
        if any(state in ("R", "D") for state in thread_states(pid)):
            return False
        time.sleep(interval)
    return True


def runnable_share(pid, samples=200, interval=0.01):
    """The share of `samples` samples in which some thread of the process
    was running or runnable (state R).  A process that spins is runnable
    all the time, however little CPU a loaded machine gives it; one that
    sleeps between timer ticks is almost never."""
    busy = 0
    for _ in range(samples):
        if "R" in thread_states(pid):
            busy += 1
        time.sleep(interval)
    return busy / float(samples)


def cpu_seconds(pid):
    """User + system CPU time consumed so far by a process."""
    import os
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(
        os.sysconf("SC_CLK_TCK"))


def watch_rss(pid, limit_mb, max_seconds, settle=0.5):
    """Samples a process's RSS every 50 ms until it exceeds limit_mb, or
    the process has used (almost) no CPU for `settle` seconds (it has
    finished whatever it was doing), or max_seconds pass.  Returns the
    peak RSS in MB (None if the process is gone)."""
    peak = 0.0
    deadline = time.monotonic() + max_seconds
    window = []  # (time, cpu)
    while time.monotonic() < deadline:
        try:
            peak = max(peak, rss_mb(pid))
            cpu = cpu_seconds(pid)
        except (OSError, RuntimeError, IndexError):
            return None
        now = time.monotonic()
        if peak > limit_mb:
            return peak
        window.append((now, cpu))
        while window and now - window[0][0] > settle:
            window.pop(0)
        if len(window) >= 2 and window[-1][0] - window[0][0] >= settle * 0.8 \
                and window[-1][1] - window[0][1] < 0.05 * settle:
            return peak
        time.sleep(0.05)
    return peak
