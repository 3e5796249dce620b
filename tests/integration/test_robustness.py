"""Robustness: whatever a client sends, the broker answers with the right
AMQP error (or drops that one connection), keeps serving every other client
and never crashes, hangs or grows without bound.

Tests run against a private broker: one per module (``rbroker``, whose
process is watched) or one per test (``warren_factory`` and
``fuzz_helpers.start_limited_warren``, for RSS, rlimit, thread-state and
memory alarm checks).  After each abuse they check that (a) the abusing connection
got the expected close or was dropped, (b) a fresh pika connection can
still declare/publish/get and (c) the server process is alive.

With WARREN_TEST_AMQP_PORT set, the module's tests run against that broker
(a differential check against RabbitMQ 3.10.8) and the per-test-broker ones
are skipped.  Expected codes follow RabbitMQ where it answers sensibly;
where RabbitMQ itself hangs or drops the socket without a close, the
docstring says so and the test accepts any clean connection error.

The fuzzers use fixed seeds; on a failure the message names the seed, the
iteration, the mutation and the bytes sent.
"""

import random
import socket
import struct
import threading
import time

import pika
import pytest

import amqp_helpers
import fuzz_helpers
import rawamqp
from fuzz_helpers import (OracleFailure, assert_alive, broker_ok, judge,
                          nested_table, publish_frames, queue_declare_args,
                          raw_table, rss_mb)
from rawamqp import (BASIC_PUBLISH, CHANNEL_CLOSE, CHANNEL_OPEN,
                     CONNECTION_CLOSE, FRAME_METHOD, RawClient, bits,
                     body_frame, content_header_frame, method_frame,
                     shortstr)


@pytest.fixture(scope="module")
def rbroker():
    """A private broker shared by this module's tests (process watched)."""
    import conftest
    port = conftest.external_port()
    if port is not None:
        # differential runs against e.g. RabbitMQ: no process to watch
        yield conftest.Broker("127.0.0.1", port, external=True)
        return
    b = conftest.start_warren()
    conftest._current_brokers.append(b)
    try:
        yield b
    finally:
        conftest.stop_broker(b)


@pytest.fixture
def robust(rbroker):
    """The module's private broker; after the test it must be alive and
    serve a fresh pika connection."""
    assert_alive(rbroker)
    yield rbroker
    broker_ok(rbroker)


def pid_of(broker):
    """The broker's process id, None for an external broker."""
    return broker.process.pid if broker.process is not None else None


def raw(broker, timeout=5.0):
    return RawClient(broker.host, broker.port, timeout=timeout)


def opened(broker, channels=(1,), **handshake):
    c = raw(broker)
    c.handshake(**handshake)
    for ch in channels:
        c.channel_open(ch)
    return c


def expect_connection_close(client, code, timeout=5.0):
    close = client.expect_connection_close(timeout=timeout)
    fuzz_helpers.check_close(close, "connection")
    assert close.reply_code == code, close
    assert client.wait_for_eof(5) is not None, "socket not closed"
    return close


def get_body(client, channel, queue):
    """basic.get no-ack over the raw client; the body or None if empty."""
    client.send_method(channel, rawamqp.BASIC_GET, struct.pack(">H", 0)
                       + shortstr(queue) + bits(True))
    frm = client.read_method()
    if frm.class_method == rawamqp.BASIC_GET_EMPTY:
        return None
    if frm.class_method != rawamqp.BASIC_GET_OK:
        raise rawamqp.ProtocolError("expected basic.get-ok, got %r"
                                    % (fuzz_helpers.parse_close(frm)
                                       if frm.class_method in (
                                           CONNECTION_CLOSE, CHANNEL_CLOSE)
                                       else frm,))
    header = client.read_frame()
    size = struct.unpack(">Q", header.payload[4:12])[0]
    body = b""
    while len(body) < size:
        body += client.read_frame().payload
    return body


# ---------------------------------------------------------------------------
# 1. Seeded random fuzzing


def fuzz_setup(client, queue, exchange):
    """Channel 1 open, an exclusive queue and a direct exchange, pipelined."""
    client.send(method_frame(1, CHANNEL_OPEN, shortstr(""))
                + method_frame(1, fuzz_helpers.EXCHANGE_DECLARE,
                               fuzz_helpers.exchange_declare_args(exchange))
                + method_frame(1, rawamqp.QUEUE_DECLARE,
                               queue_declare_args(queue)))
    client.read_method(rawamqp.CHANNEL_OPEN_OK)
    client.read_method((40, 11))
    client.read_method(rawamqp.QUEUE_DECLARE_OK)


FUZZ_SEEDS = (1, 2, 3)
FUZZ_ITERATIONS = 100  # per seed


def test_fuzz_mutated_frames_after_handshake(robust):
    """300 seeded iterations: a fresh connection (handshake, channel 1, an
    exclusive queue, a direct exchange), then one mutated valid frame
    sequence of a server-side method (byte flips, truncation, extension,
    frame type/channel/size/end changes, retargeted method ids,
    interesting values, dropped/duplicated frames, a cut stream; 5 % plain
    random bytes), then a probe (channel.open on another channel).  The
    broker must answer the probe, close with a valid code (and then close
    the socket), or drop the connection; a silent broker (no answer, and
    its process idles: it waits for more bytes) is padded with frame_max
    zero bytes and must then close (fuzz_helpers.judge)."""
    watcher = fuzz_helpers.EofWatcher()
    verdicts = {}
    started = time.monotonic()
    for seed in FUZZ_SEEDS:
        rng = random.Random(seed)
        for i in range(FUZZ_ITERATIONS):
            queue = "warren-it.fz.%d.%d" % (seed, i)
            exchange = "warren-it.fzx.%d.%d" % (seed, i)
            label = "seed %d iteration %d" % (seed, i)
            c = raw(robust)
            try:
                c.handshake()
                fuzz_setup(c, queue, exchange)
                if rng.random() < 0.05:
                    data = bytes(rng.randrange(256)
                                 for _ in range(rng.randint(1, 300)))
                    name, what = "garbage", "random bytes"
                else:
                    name, frames = rng.choice(
                        fuzz_helpers.templates(queue, exchange))
                    data, what = fuzz_helpers.mutate_sequence(rng, frames)
                label += " (%s, %s): %r" % (name, what, data[:300])
                try:
                    c.send(data)
                except OSError:
                    pass
                verdict = judge(c, c.frame_max, label, eof_watcher=watcher,
                                pid=pid_of(robust))
            except OracleFailure as exc:
                raise AssertionError("%s\n%s" % (label, exc))
            except (OSError, rawamqp.ProtocolError,
                    rawamqp.ConnectionClosedByPeer) as exc:
                assert_alive(robust)
                raise AssertionError("%s: %r" % (label, exc))
            finally:
                if not any(p[1] is c for p in watcher.pending):
                    c.close_socket()
            verdicts[verdict] = verdicts.get(verdict, 0) + 1
            if not robust.alive():
                raise AssertionError("broker died after %s; log:\n%s"
                                     % (label, robust.log_tail(60)))
            if i % 50 == 49:
                broker_ok(robust)
    try:
        watcher.finish()
    except OracleFailure as exc:
        raise AssertionError(str(exc))
    print("fuzz: %.1f s, verdicts %r" % (time.monotonic() - started,
                                        verdicts))
    # the fuzzer must actually reach both kinds of outcome
    assert verdicts.get("probe-ok", 0) > 20, verdicts
    assert sum(v for k, v in verdicts.items()
               if k.startswith("closed")) > 100, verdicts


def _start_ok_frame():
    return method_frame(0, rawamqp.CONNECTION_START_OK, rawamqp.table(
        {"product": "fuzz", "capabilities": {"consumer_cancel_notify": True,
                                             "connection.blocked": True}})
        + shortstr("PLAIN") + rawamqp.longstr(b"\x00guest\x00guest")
        + shortstr("en_US"))


def _tune_ok_frame():
    return method_frame(0, rawamqp.CONNECTION_TUNE_OK,
                        struct.pack(">HIH", 2047, 131072, 0))


def _open_frame():
    return method_frame(0, rawamqp.CONNECTION_OPEN,
                        shortstr("/") + shortstr("") + bits(False))


def _handshake_verdict(client, expected, timeout, watcher, label):
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "stalled"
        try:
            frm = client.read_frame(timeout=remaining)
        except socket.timeout:
            return "stalled"
        except (rawamqp.ConnectionClosedByPeer, OSError):
            return "eof"
        if frm.type != FRAME_METHOD:
            continue
        if frm.class_method == expected:
            return "ok"
        if frm.class_method == CONNECTION_CLOSE:
            close = fuzz_helpers.parse_close(frm)
            fuzz_helpers.check_close(close, "connection")
            try:
                client.send_method(0, rawamqp.CONNECTION_CLOSE_OK)
            except OSError:
                pass
            watcher.add(client, "%s %r" % (label, close))
            return "closed:%d" % close.reply_code
        raise OracleFailure("%s: unexpected %r during the handshake"
                            % (label, frm))


def test_fuzz_mutated_handshake(robust):
    """90 seeded iterations mutating connection.start-ok, tune-ok or open
    (the other handshake frames valid).  The broker must go on with the
    handshake, close with a valid code or drop the socket; a silent broker
    (no answer, its process idle) gets 131080 zero bytes and must then
    close.  Never a hang."""
    rng = random.Random(7)
    watcher = fuzz_helpers.EofWatcher()
    verdicts = {}
    stages = ["start-ok", "tune-ok", "open"]
    for i in range(90):
        stage = stages[i % 3]
        c = raw(robust)
        label = "handshake iteration %d (%s)" % (i, stage)
        try:
            c.send_protocol_header()
            c.read_start()
            if stage == "start-ok":
                data, what = fuzz_helpers.mutate_frame(rng, _start_ok_frame())
                expected = rawamqp.CONNECTION_TUNE
            else:
                c.send(_start_ok_frame())
                c.read_tune()
                if stage == "tune-ok":
                    data, what = fuzz_helpers.mutate_frame(
                        rng, _tune_ok_frame())
                    data += _open_frame()
                else:
                    c.send(_tune_ok_frame())
                    data, what = fuzz_helpers.mutate_frame(rng, _open_frame())
                expected = rawamqp.CONNECTION_OPEN_OK
            label += " %s: %r" % (what, data[:300])
            try:
                c.send(data)
            except OSError:
                pass

            def read(timeout):
                return _handshake_verdict(c, expected, timeout, watcher,
                                          label)

            verdict = read(0.5)
            if verdict == "stalled":
                verdict = fuzz_helpers.wait_while_busy(c, pid_of(robust),
                                                       read)
            if verdict == "stalled":
                try:
                    c.send(b"\x00" * (131072 + 8))
                except OSError:
                    pass
                verdict = read(30.0)
                if verdict in ("stalled", "ok"):
                    raise OracleFailure("%s: %s after padding"
                                        % (label, verdict))
                verdict += "-after-pad"
        except OracleFailure as exc:
            raise AssertionError(str(exc))
        finally:
            if not any(p[1] is c for p in watcher.pending):
                c.close_socket()
        verdicts[verdict] = verdicts.get(verdict, 0) + 1
        assert_alive(robust)
    try:
        watcher.finish()
    except OracleFailure as exc:
        raise AssertionError(str(exc))
    print("handshake fuzz verdicts %r" % verdicts)
    assert verdicts.get("ok", 0) > 5, verdicts
    assert sum(v for k, v in verdicts.items()
               if k.startswith("closed")) > 20, verdicts


def _garbage_headers():
    rng = random.Random(11)
    blobs = [
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)),
        b"AMQP\x00\x00\x09\x02", b"AMQP\x00\x00\x00\x00",
        b"AMQP\x00\x01\x00\x00", b"AMQX", b"\x00" * 8, b"\xce" * 16,
        b"AMQPAMQPAMQP", b"XAMQP\x00\x00\x09\x01",
        b"\x01\x00\x00\x00\x00\x00\x0c\x00\x0a\x00\x0b",  # a frame, no header
        b"amqp\x00\x00\x09\x01", b"\xff" * 4096,
    ]
    for _ in range(25):
        n = rng.choice([1, 4, 7, 8, 9, 16, 100, 1000])
        blob = bytes(rng.randrange(256) for _ in range(n))
        if b"AMQP\x00\x00\x09\x01".startswith(blob):
            blob = b"Z" + blob
        blobs.append(blob)
    return blobs


def test_garbage_instead_of_protocol_header(robust):
    """Anything that is not 'AMQP' 0 0 9 1 (HTTP, TLS, other versions,
    random bytes, garbage before a valid header) gets the protocol header
    RabbitMQ speaks back and the socket closed, as RabbitMQ does."""
    clients = []
    for blob in _garbage_headers():
        c = raw(robust)
        c.send(blob)
        clients.append((blob, c))
    try:
        for blob, c in clients:
            data = b""
            deadline = time.monotonic() + 30
            while True:
                chunk = c.recv_raw(timeout=max(0.01,
                                               deadline - time.monotonic()))
                if not chunk:
                    break
                data += chunk
                assert time.monotonic() < deadline, (blob, data)
            assert data == rawamqp.PROTOCOL_HEADER, (blob[:40], data)
    except socket.timeout:
        raise AssertionError("no answer/close for garbage header %r"
                             % (blob[:40],))
    finally:
        for _, c in clients:
            c.close_socket()
    assert_alive(robust)


# ---------------------------------------------------------------------------
# 2. Field-table bombs


BOMBS = {
    # name: (table bytes, may the broker accept it?)
    "nested-10k-tables": (nested_table(10000), True),
    "nested-10k-arrays": (nested_table(10000, "A"), True),
    "array-length-4G": (raw_table(shortstr("a") + b"A"
                                  + struct.pack(">I", 0xFFFFFFF0)), False),
    "table-length-beyond-frame": (raw_table(shortstr("a") + b"I"
                                            + b"\x00\x00\x00\x01",
                                            declared_len=100000), False),
    "table-length-4G": (raw_table(shortstr("a") + b"V",
                                  declared_len=0xFFFFFFFF), False),
    "unknown-type-tag": (raw_table(shortstr("a") + b"Z"
                                   + b"\x00\x00\x00\x00"), False),
    "string-length-4G": (raw_table(shortstr("a") + b"S"
                                   + struct.pack(">I", 0xFFFFFFFF)
                                   + b"abc"), False),
    "key-beyond-table": (raw_table(b"\xff" + b"ab"), False),
    "truncated-long": (raw_table(shortstr("a") + b"l" + b"\x00\x00"), False),
    "13k-entries": (raw_table(b"".join(shortstr("k%05d" % i) + b"V"
                                       for i in range(13000))), True),
}


def _carrier_frames(carrier, bomb, queue, exchange):
    """(setup frames and their replies, the frame carrying the bomb,
    the reply expected if the table is accepted)."""
    if carrier == "queue.declare":
        return [], method_frame(1, rawamqp.QUEUE_DECLARE,
                                queue_declare_args(queue, arguments=bomb)), \
            rawamqp.QUEUE_DECLARE_OK
    if carrier == "exchange.declare":
        return [], method_frame(1, fuzz_helpers.EXCHANGE_DECLARE,
                                fuzz_helpers.exchange_declare_args(
                                    exchange, "headers", arguments=bomb)), \
            (40, 11)
    setup = [(method_frame(1, rawamqp.QUEUE_DECLARE,
                           queue_declare_args(queue)),
              rawamqp.QUEUE_DECLARE_OK)]
    if carrier == "basic.consume":
        return setup, method_frame(1, rawamqp.BASIC_CONSUME,
                                   fuzz_helpers.basic_consume_args(
                                       queue, arguments=bomb)), \
            rawamqp.BASIC_CONSUME_OK
    if carrier == "queue.bind":
        return setup, method_frame(1, fuzz_helpers.QUEUE_BIND,
                                   struct.pack(">H", 0) + shortstr(queue)
                                   + shortstr("amq.headers") + shortstr("")
                                   + bits(False) + bomb), (50, 21)
    if carrier == "exchange.bind":
        setup = [(method_frame(1, fuzz_helpers.EXCHANGE_DECLARE,
                               fuzz_helpers.exchange_declare_args(exchange)),
                  (40, 11))]
        return setup, method_frame(1, fuzz_helpers.EXCHANGE_BIND,
                                   struct.pack(">H", 0) + shortstr(exchange)
                                   + shortstr("amq.headers") + shortstr("")
                                   + bits(False) + bomb), (40, 31)
    raise ValueError(carrier)


@pytest.mark.parametrize("bomb", sorted(BOMBS))
@pytest.mark.parametrize("carrier", ["queue.declare", "exchange.declare",
                                     "basic.consume", "queue.bind",
                                     "exchange.bind"])
def test_field_table_bomb_in_arguments(robust, uname, carrier, bomb):
    """A hostile arguments table gets a clean connection.close 501
    FRAME_ERROR / 502 SYNTAX_ERROR (RabbitMQ 3.10 answers 501 for a table
    longer than the frame and drops the socket without a close for
    unknown tags and huge arrays: a bare EOF is accepted too).  Deep
    nesting and huge-but-valid tables may also be accepted (RabbitMQ
    accepts 10k levels); then the connection must keep working."""
    table_bytes, may_accept = BOMBS[bomb]
    c = opened(robust)
    try:
        setup, carrier_frame, ok_reply = _carrier_frames(
            carrier, table_bytes, uname("bq"), uname("bx"))
        for frm, reply in setup:
            c.send(frm)
            c.read_method(reply)
        c.send(carrier_frame)
        try:
            frm = c.read_method(timeout=5)
        except rawamqp.ConnectionClosedByPeer:
            return  # dropped, as RabbitMQ does for some of these
        if frm.class_method == ok_reply:
            assert may_accept, "%s accepted a %s table" % (carrier, bomb)
            assert c.queue_declare(1, "", exclusive=True)[0]
            return
        assert frm.class_method == CONNECTION_CLOSE, frm
        close = fuzz_helpers.parse_close(frm)
        fuzz_helpers.check_close(close, "connection")
        assert close.reply_code in (501, 502), close
        c.send_method(0, rawamqp.CONNECTION_CLOSE_OK)
        assert c.wait_for_eof(5) is not None, "socket not closed"
    finally:
        c.close_socket()


@pytest.mark.parametrize("bomb", sorted(BOMBS))
def test_field_table_bomb_in_message_headers(robust, uname, bomb):
    """A hostile 'headers' property, published to amq.headers (whose
    routing has to decode it) and to the default exchange: the broker
    routes it or not, or closes cleanly (501/502); it then still delivers
    a normal message on the same channel if the connection survived."""
    table_bytes, _ = BOMBS[bomb]
    if len(table_bytes) > 120000:
        pytest.skip("does not fit a content header frame")
    c = opened(robust)
    try:
        q, _, _ = c.queue_declare(1, uname("hq"), exclusive=True)
        c.send_method(1, fuzz_helpers.QUEUE_BIND, struct.pack(">H", 0)
                      + shortstr(q) + shortstr("amq.headers") + shortstr("")
                      + bits(False) + rawamqp.table({"x-match": "any",
                                                     "a": 1}))
        c.read_method((50, 21))
        for exchange in ("amq.headers", ""):
            for frm in publish_frames(1, exchange, q, b"bomb", flags=0x2000,
                                      props=table_bytes):
                c.send(frm)
        c.basic_publish(1, "", q, b"after")
        bodies = []
        while True:
            try:
                body = get_body(c, 1, q)
            except rawamqp.ProtocolError as exc:
                # a clean connection error: 501/502 only
                assert "Close ch=0 501 " in str(exc) or \
                    "Close ch=0 502 " in str(exc), exc
                return
            except rawamqp.ConnectionClosedByPeer:
                return
            if body is None:
                break
            bodies.append(body)
        assert bodies[-1:] == [b"after"], bodies
        assert set(bodies[:-1]) <= {b"bomb"}, bodies
    finally:
        c.close_socket()


@pytest.mark.parametrize("bomb", sorted(BOMBS))
def test_field_table_bomb_in_handshake(robust, bomb):
    """As client_properties of connection.start-ok and as an AMQPLAIN
    response: the broker goes on (tune, or 403 for the unusable AMQPLAIN
    credentials) or closes cleanly; never a crash or hang."""
    table_bytes, _ = BOMBS[bomb]
    for where in ("client_properties", "amqplain"):
        c = raw(robust)
        try:
            c.send_protocol_header()
            c.read_start()
            if where == "client_properties":
                args = (table_bytes + shortstr("PLAIN")
                        + rawamqp.longstr(b"\x00guest\x00guest")
                        + shortstr("en_US"))
            else:
                args = (rawamqp.table({}) + shortstr("AMQPLAIN")
                        + rawamqp.longstr(table_bytes[4:])
                        + shortstr("en_US"))
            c.send_method(0, rawamqp.CONNECTION_START_OK, args)
            try:
                frm = c.read_method(timeout=5)
            except rawamqp.ConnectionClosedByPeer:
                continue
            if frm.class_method == rawamqp.CONNECTION_TUNE:
                continue
            assert frm.class_method == CONNECTION_CLOSE, (where, frm)
            close = fuzz_helpers.parse_close(frm)
            fuzz_helpers.check_close(close, "connection")
            assert close.reply_code in (403, 501, 502), (where, close)
            assert c.wait_for_eof(5) is not None, "socket not closed"
        finally:
            c.close_socket()


# ---------------------------------------------------------------------------
# 2b. Absurd arguments


# (argument, value) pairs RabbitMQ 3.10.8 refuses with channel.close 406
# "PRECONDITION_FAILED - invalid arg '<arg>' for queue '<q>' in vhost '/':
# <reason>" (the reason is given as a comment).
ABSURD_QUEUE_ARGS = [
    ("x-expires", 0),                    # {value_zero,0}
    ("x-expires", -1),                   # {value_negative,-1}
    ("x-expires", "soon"),               # "expected integer, got longstr"
    ("x-message-ttl", -1),               # {value_negative,-1}
    ("x-message-ttl", 2 ** 40),          # {value_too_large,...}
    ("x-message-ttl", 1.5),              # "expected integer, got double"
    ("x-max-length", -1),                # {value_negative,-1}
    ("x-max-length", "10"),              # "expected integer, got longstr"
    ("x-max-length-bytes", -5),          # {value_negative,-5}
    ("x-max-priority", 256),             # {max_value_exceeded,256}
    ("x-max-priority", -1),              # {value_negative,-1}
    ("x-max-priority", 2 ** 31 - 1),     # {max_value_exceeded,...}
    ("x-overflow", "bogus"),             # invalid_overflow
    ("x-queue-type", "bogus"),           # "unsupported queue type 'bogus'"
    ("x-queue-mode", "bogus"),           # "unsupported queue mode 'bogus'"
    ("x-queue-version", 7),              # "unsupported queue version '7'"
    ("x-dead-letter-exchange", 5),       # invalid type 'signedint' for arg
    ("x-dead-letter-routing-key", 1),    # {unacceptable_type,signedint}
    ("x-single-active-consumer", "s"),   # {unacceptable_type,longstr}
]

# Extreme but valid: RabbitMQ 3.10.8 accepts all of these.
EXTREME_QUEUE_ARGS = [
    ("x-expires", 1), ("x-expires", 2 ** 31 - 1), ("x-message-ttl", 0),
    ("x-message-ttl", 2 ** 32 - 1), ("x-max-length", 0),
    ("x-max-length", 2 ** 62), ("x-max-priority", 255),
    ("x-max-priority", 0), ("x-overflow", "reject-publish"),
    ("x-queue-type", "classic"), ("x-single-active-consumer", True),
    ("x-dead-letter-exchange", "dlx"), ("x-unknown-arg", [1, {"a": None}]),
]


def _declare_with(broker, name, key, value):
    c = opened(broker)
    try:
        c.send_method(1, rawamqp.QUEUE_DECLARE,
                      queue_declare_args(name, arguments={key: value}))
        frm = c.read_method(timeout=5)
        if frm.class_method in (CHANNEL_CLOSE, CONNECTION_CLOSE):
            return fuzz_helpers.parse_close(frm)
        return frm.class_method
    finally:
        c.close_socket()


def test_absurd_queue_arguments_are_refused_like_rabbitmq(robust, uname):
    """Out-of-range or mistyped x-arguments in queue.declare get
    channel.close 406 PRECONDITION_FAILED 'invalid arg ...' (class/method
    50/10) in RabbitMQ 3.10.8; all of them are checked and every
    difference is listed."""
    wrong = []
    for key, value in ABSURD_QUEUE_ARGS:
        name = uname("absurd")
        got = _declare_with(robust, name, key, value)
        ok = (isinstance(got, rawamqp.Close) and got.channel == 1
              and got.reply_code == 406
              and got.reply_text.startswith("PRECONDITION_FAILED - invalid ")
              and key in got.reply_text
              and (got.class_id, got.method_id) == (50, 10))
        if not ok:
            wrong.append("%s=%r: %r" % (key, value, got))
    assert not wrong, ("%d of %d absurd queue arguments not refused with "
                       "406:\n  %s" % (len(wrong), len(ABSURD_QUEUE_ARGS),
                                       "\n  ".join(wrong)))


def test_extreme_but_valid_queue_arguments_are_accepted(robust, uname):
    for key, value in EXTREME_QUEUE_ARGS:
        got = _declare_with(robust, uname("extreme"), key, value)
        assert got == rawamqp.QUEUE_DECLARE_OK, (key, value, got)


# ---------------------------------------------------------------------------
# 3. Content abuse


def _publish_method(channel, exchange, routing_key, mandatory=False):
    return method_frame(channel, BASIC_PUBLISH, struct.pack(">H", 0)
                        + shortstr(exchange) + shortstr(routing_key)
                        + bits(mandatory, False))


def _queue_state(port, queue):
    """(message_count, consumer_count), or None if the queue is gone."""
    conn = pika.BlockingConnection(amqp_helpers.params(port))
    try:
        ok = conn.channel().queue_declare(queue, passive=True).method
        return ok.message_count, ok.consumer_count
    except pika.exceptions.ChannelClosedByBroker as exc:
        assert exc.reply_code == 404, exc
        return None
    finally:
        amqp_helpers.close_quietly(conn)


def _good_message(channel, queue):
    """A complete publish sent ahead of an abusive one on the same
    connection: a positive control, it must be in the queue afterwards."""
    return b"".join(publish_frames(channel, "", queue, b"good"))


@pytest.fixture
def shared_q(robust, uname):
    """A non-exclusive queue on the private broker, deleted afterwards."""
    name = uname("rq")
    conn = pika.BlockingConnection(amqp_helpers.params(robust.port))
    conn.channel().queue_declare(name)
    yield name
    try:
        conn.channel().queue_delete(name)
    finally:
        amqp_helpers.close_quietly(conn)


@pytest.mark.parametrize("body_size", [2 ** 63, 2 ** 64 - 1, 2 ** 40])
def test_absurd_body_size_in_content_header(robust, shared_q, body_size):
    """A content header announcing 2^63 (or 2^64-1, 1 TiB) bytes.  Warren
    refuses it at once with channel.close 406 PRECONDITION_FAILED (over
    max_message_size) and does not try to allocate it; a hard 501/505 is
    accepted too.  (RabbitMQ 3.10 only checks the size once the body is
    complete, i.e. it waits forever.)  The channel can then be reopened
    and used."""
    c = opened(robust)
    try:
        c.send(_publish_method(1, "", shared_q)
               + content_header_frame(1, body_size) + body_frame(1, b"abc"))
        frm = c.read_method(timeout=5)
        if frm.class_method == CONNECTION_CLOSE:
            close = fuzz_helpers.parse_close(frm)
            assert close.reply_code in (501, 505), close
            return
        assert frm.class_method == CHANNEL_CLOSE, frm
        close = fuzz_helpers.parse_close(frm)
        assert close.reply_code == 406, close
        assert close.reply_text.startswith("PRECONDITION_FAILED - "), close
        assert (close.class_id, close.method_id) == (60, 40), close
        c.send_method(1, rawamqp.CHANNEL_CLOSE_OK)
        c.channel_open(1)
        c.basic_publish(1, "", shared_q, b"fine")
        assert get_body(c, 1, shared_q) == b"fine"
    finally:
        c.close_socket()
    assert _queue_state(robust.port, shared_q) == (0, 0)


@pytest.mark.parametrize("bodies", [[b"abcdef"], [b"ab", b"cdef"],
                                    [b"abc", b""], [b"abc", b"d"]],
                         ids=["one-frame-too-big", "second-frame-overflows",
                              "empty-extra-frame", "extra-frame"])
def test_body_frames_beyond_announced_size(robust, shared_q, bodies):
    """body_size 3 in the header, then more body bytes than that.  Warren
    closes the connection with 501 FRAME_ERROR (or 505 UNEXPECTED_FRAME
    for a body frame after the message was complete); nothing partial or
    oversized is enqueued.  (RabbitMQ 3.10 silently waits.)  A complete
    message sent first is there, so the connection's publishes were
    handled."""
    c = opened(robust)
    try:
        c.send(_good_message(1, shared_q) + _publish_method(1, "", shared_q)
               + content_header_frame(1, 3)
               + b"".join(body_frame(1, b) for b in bodies))
        expect_connection_close(c, 505 if len(bodies[0]) == 3 else 501)
    finally:
        c.close_socket()
    conn = pika.BlockingConnection(amqp_helpers.params(robust.port))
    try:
        got = amqp_helpers.bodies(amqp_helpers.get_all(conn.channel(),
                                                       shared_q))
    finally:
        amqp_helpers.close_quietly(conn)
    if len(bodies[0]) == 3:
        # "abc" was complete before the extra frame
        assert got == [b"good", b"abc"]
    else:
        assert got == [b"good"]


def test_zero_body_size_then_body_frame(robust, shared_q):
    """body_size 0 completes the message at the header (it is routed); a
    following body frame is 505 UNEXPECTED_FRAME, as in RabbitMQ."""
    c = opened(robust)
    try:
        c.send(_publish_method(1, "", shared_q) + content_header_frame(1, 0)
               + body_frame(1, b"surprise"))
        close = expect_connection_close(c, 505)
        assert close.reply_text == ("UNEXPECTED_FRAME - expected method "
                                    "frame, got non method frame instead")
    finally:
        c.close_socket()
    conn = pika.BlockingConnection(amqp_helpers.params(robust.port))
    try:
        msgs = amqp_helpers.get_all(conn.channel(), shared_q)
        assert [m[2] for m in msgs] == [b""]
    finally:
        amqp_helpers.close_quietly(conn)


@pytest.mark.parametrize("flags,props", [
    (0x0001, b""),
    (0x0001, b"\x00\x00"),
    (0x8001, shortstr("text/plain") + b"\x00\x00"),
    (0xFFFF, b""),
    (0x8000, b""),                            # content-type announced, absent
    (0x2000, b"\x00\x00\x00"),                # headers table cut short
    (0x0040, b"\x00\x00\x00\x00"),            # timestamp cut short
    (0x0002, b""),                            # the unused flag bit
], ids=["continuation", "continuation+second-word", "continuation+ct",
        "all-bits", "missing-content-type", "short-headers",
        "short-timestamp", "unused-bit"])
def test_weird_property_flags(robust, shared_q, flags, props):
    """Property flags with the continuation bit, bits for properties that
    are not there, truncated property values.  Accepted: the message
    arrives intact, or a clean 501/502 connection close (RabbitMQ 3.10:
    accepts a lone continuation bit, 541 INTERNAL_ERROR for the others);
    never a crash or a garbled delivery."""
    c = opened(robust)
    try:
        c.send(_publish_method(1, "", shared_q)
               + content_header_frame(1, 5, flags=flags, props=props)
               + body_frame(1, b"hello"))
        c.send_method(1, rawamqp.BASIC_GET, struct.pack(">H", 0)
                      + shortstr(shared_q) + bits(True))
        try:
            frm = c.read_method(timeout=5)
        except rawamqp.ConnectionClosedByPeer:
            raise AssertionError("dropped without connection.close")
        if frm.class_method == CONNECTION_CLOSE:
            close = fuzz_helpers.parse_close(frm)
            assert close.reply_code in (501, 502), close
            c.send_method(0, rawamqp.CONNECTION_CLOSE_OK)
            assert c.wait_for_eof(5) is not None
            return
        assert frm.class_method == rawamqp.BASIC_GET_OK, frm
        header = c.read_frame()
        assert header.type == rawamqp.FRAME_HEADER
        assert struct.unpack(">Q", header.payload[4:12])[0] == 5
        body = c.read_frame()
        assert body.payload == b"hello"
    finally:
        c.close_socket()


@pytest.mark.parametrize("after", ["publish", "header", "partial-body"])
def test_channel_close_in_the_middle_of_content(robust, shared_q, after):
    """basic.publish, then channel.close before the content is complete.
    A method frame where a content frame must come is 505 UNEXPECTED_FRAME
    (spec 4.2.6), and RabbitMQ 3.10.8 answers exactly that:
    connection.close 505 'UNEXPECTED_FRAME - expected content header for
    class 60, got non content header frame instead' (or '... expected
    content body, got non content body frame instead'), class/method
    60/40.  Nothing is enqueued either way (a complete message sent first
    is)."""
    c = opened(robust)
    try:
        data = _good_message(1, shared_q) + _publish_method(1, "", shared_q)
        if after != "publish":
            data += content_header_frame(1, 10)
        if after == "partial-body":
            data += body_frame(1, b"12345")
        data += method_frame(1, CHANNEL_CLOSE, struct.pack(">H", 200)
                             + shortstr("bye") + struct.pack(">HH", 0, 0))
        c.send(data)
        frm = c.read_method(timeout=5)
        shown = fuzz_helpers.parse_close(frm) if frm.class_method in (
            CONNECTION_CLOSE, CHANNEL_CLOSE) else frm
        assert frm.class_method == CONNECTION_CLOSE, (
            "expected connection.close 505 as RabbitMQ, got %r" % (shown,))
        close = shown
        assert close.reply_code == 505, close
        expected = ("expected content header for class 60, got non content "
                    "header frame instead" if after == "publish" else
                    "expected content body, got non content body frame "
                    "instead")
        assert close.reply_text == "UNEXPECTED_FRAME - " + expected, close
        assert (close.class_id, close.method_id) == (60, 40), close
    finally:
        c.close_socket()
    assert _queue_state(robust.port, shared_q) == (1, 0)


def test_connection_close_in_the_middle_of_content(robust, shared_q):
    """connection.close (channel 0) while channel 1 assembles content is
    fine: close-ok, nothing enqueued (a complete message sent first is)."""
    c = opened(robust)
    try:
        c.send(_good_message(1, shared_q) + _publish_method(1, "", shared_q)
               + content_header_frame(1, 10) + body_frame(1, b"12345"))
        c.send_method(0, CONNECTION_CLOSE, struct.pack(">H", 200)
                      + shortstr("bye") + struct.pack(">HH", 0, 0))
        c.read_method(rawamqp.CONNECTION_CLOSE_OK)
    finally:
        c.close_socket()
    assert _queue_state(robust.port, shared_q) == (1, 0)


def test_interleaved_content_on_many_channels(robust, shared_q):
    """Content frames of different channels may interleave (each channel
    assembles its own content): 5 channels, bodies split into frames of
    1..7000 bytes sent round-robin; every message arrives intact, in the
    order in which each one was completed."""
    rng = random.Random(5)
    channels = [1, 2, 3, 4, 5]
    c = opened(robust, channels=channels)
    try:
        queues = {}
        bodies = {}
        for ch in channels:
            body = bytes([ch]) * rng.randint(1, 5) + bytes(
                rng.randrange(256) for _ in range(rng.randint(0, 40000)))
            bodies[ch] = body
            frames = [_publish_method(ch, "", shared_q),
                      content_header_frame(ch, len(body))]
            pos = 0
            while pos < len(body):
                n = rng.randint(1, 7000)
                frames.append(body_frame(ch, body[pos:pos + n]))
                pos += n
            queues[ch] = frames
        order = []
        stream = []
        while any(queues.values()):
            for ch in channels:
                if queues[ch]:
                    stream.append(queues[ch].pop(0))
                    if not queues[ch]:
                        order.append(ch)
        c.send(b"".join(stream))
        got = []
        for _ in channels:
            body = None
            deadline = time.monotonic() + 30
            while body is None and time.monotonic() < deadline:
                body = get_body(c, 1, shared_q)
            got.append(body)
        assert got == [bodies[ch] for ch in order]
        assert get_body(c, 1, shared_q) is None
    finally:
        c.close_socket()


# ---------------------------------------------------------------------------
# 4. Resource abuse


def _rss(broker):
    return rss_mb(broker.process.pid) if broker.process is not None else 0.0


def test_2000_channels_opened_and_closed(robust):
    """Channels 1..2000 opened and closed on one connection, pipelined,
    three times over; every open-ok/close-ok arrives for the right
    channel, memory does not grow from round to round, and the
    connection still works afterwards."""
    c = raw(robust, timeout=10)
    try:
        c.handshake()
        ids = list(range(1, 2001))
        rss = []
        for _ in range(3):
            c.send(b"".join(method_frame(ch, CHANNEL_OPEN, shortstr(""))
                            for ch in ids))
            opened_ids = [c.read_method(rawamqp.CHANNEL_OPEN_OK).channel
                          for _ in ids]
            assert sorted(opened_ids) == ids  # RabbitMQ: any order
            c.send(b"".join(method_frame(ch, CHANNEL_CLOSE,
                                         struct.pack(">H", 200)
                                         + shortstr("") +
                                         struct.pack(">HH", 0, 0))
                            for ch in ids))
            closed_ids = [c.read_method(rawamqp.CHANNEL_CLOSE_OK).channel
                          for _ in ids]
            assert sorted(closed_ids) == ids
            rss.append(_rss(robust))
        assert rss[-1] - rss[0] < 30, "RSS grew %r MB" % rss
        c.channel_open(2047)
        assert c.queue_declare(2047, "", exclusive=True)[0]
    finally:
        c.close()


def test_500_queues_declared_and_deleted(robust, uname):
    """500 queues declared, bound, given a message and deleted, pipelined,
    twice; each delete-ok reports the one message; afterwards they are
    gone (passive declare: 404)."""
    c = raw(robust, timeout=10)
    names = [uname("mq%03d" % i) for i in range(500)]
    try:
        c.handshake()
        c.channel_open(1)
        for _ in range(2):
            out = []
            for name in names:
                out.append(method_frame(1, rawamqp.QUEUE_DECLARE,
                                        queue_declare_args(
                                            name, exclusive=False,
                                            auto_delete=False)))
                out.append(method_frame(1, fuzz_helpers.QUEUE_BIND,
                                        struct.pack(">H", 0) + shortstr(name)
                                        + shortstr("amq.direct")
                                        + shortstr(name) + bits(False)
                                        + rawamqp.table({})))
                out.extend(publish_frames(1, "amq.direct", name, b"m"))
            c.send(b"".join(out))
            for name in names:
                frm = c.read_method(rawamqp.QUEUE_DECLARE_OK)
                assert frm.args.shortstr() == name
                c.read_method((50, 21))
            c.send(b"".join(method_frame(1, fuzz_helpers.QUEUE_DELETE,
                                         struct.pack(">H", 0) + shortstr(n)
                                         + bits(False, False, False))
                            for n in names))
            counts = [c.read_method((50, 41)).args.long() for _ in names]
            assert counts == [1] * len(names)
    finally:
        c.close()
    conn = pika.BlockingConnection(amqp_helpers.params(robust.port))
    try:
        for name in names[::97]:
            ch = conn.channel()
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
                ch.queue_declare(name, passive=True)
            assert exc.value.reply_code == 404
    finally:
        amqp_helpers.close_quietly(conn)


@pytest.mark.parametrize("where", ["after-publish", "after-header",
                                   "mid-body", "mid-frame"])
@pytest.mark.parametrize("how", ["fin", "rst"])
def test_connection_vanishes_mid_publish(robust, shared_q, uname, where,
                                         how):
    """A client with an exclusive queue and a consumer on a shared queue
    publishes one complete message, starts publishing 1 MB and vanishes
    (FIN, or RST) after the method, after the header, in the middle of the
    body or of a frame.  Nothing partial is enqueued (the complete message
    is, and comes back unacked), its consumer and its exclusive queue go
    away and other clients are unaffected.  A channel.open on channel 2
    answered before the client vanishes proves the broker read the partial
    content (for mid-frame: all but the cut frame)."""
    excl = uname("vx")
    c = opened(robust)
    c.queue_declare(1, excl, exclusive=True)
    c.basic_consume(1, shared_q, consumer_tag="vanishing")
    body = b"v" * (1 << 20)
    data = _good_message(1, shared_q) + _publish_method(1, "", shared_q)
    if where != "after-publish":
        data += content_header_frame(1, len(body))
    if where == "mid-body":
        data += body_frame(1, body[:100000]) + body_frame(1, body[:50000])
    c.send(data + method_frame(2, CHANNEL_OPEN, shortstr("")))
    seen = set()  # the good message's delivery and channel 2's open-ok
    while len(seen) < 2:
        frm = c.read_frame(timeout=30)
        if frm.type == FRAME_METHOD:
            assert frm.class_method in (rawamqp.BASIC_DELIVER,
                                        rawamqp.CHANNEL_OPEN_OK), frm
            seen.add(frm.class_method)
    if where == "mid-frame":
        c.send(body_frame(1, body[:100000])[:60000])
        time.sleep(0.05)  # likely read; nothing below depends on it
    if how == "rst":
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          struct.pack("ii", 1, 0))
    c.close_socket()
    deadline = time.monotonic() + 30
    while True:
        state = _queue_state(robust.port, shared_q)
        gone = _queue_state(robust.port, excl) is None
        if state == (1, 0) and gone:
            break
        assert time.monotonic() < deadline, (
            "30 s after the client vanished: shared queue (messages, "
            "consumers) = %r (expected the good message and no consumer), "
            "exclusive queue gone = %r" % (state, gone))
        time.sleep(0.05)
    conn = pika.BlockingConnection(amqp_helpers.params(robust.port))
    try:
        method, _, got = conn.channel().basic_get(shared_q, auto_ack=True)
        assert (got, method.redelivered) == (b"good", True)
    finally:
        amqp_helpers.close_quietly(conn)
    assert_alive(robust)


def _rss_sampler(broker, stop, peak):
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], rss_mb(broker.process.pid))
        except (OSError, RuntimeError):
            return
        time.sleep(0.05)


RSS_LIMIT_MB = 300


def test_non_reading_consumer_does_not_grow_memory(warren_factory):
    """A consumer (no-ack) that never reads its socket, while another
    client pipelines 200k small messages into its queue for up to 4 s:
    the broker's RSS stays under 300 MB, an unrelated queue keeps working
    during the flood, and the broker is alive afterwards.  (Warren may
    throttle the publisher by flow control; how far it got is printed.)"""
    b = warren_factory()
    conn = pika.BlockingConnection(amqp_helpers.params(b.port))
    ch = conn.channel()
    ch.queue_declare("warren-it.nonreader")
    stuck = raw(b)
    stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.handshake()
    stuck.channel_open(1)
    stuck.basic_consume(1, "warren-it.nonreader", no_ack=True)
    pub = opened(b)
    one = b"".join(publish_frames(1, "", "warren-it.nonreader", b"m" * 100))
    sent = [0]
    done = threading.Event()

    def publisher():
        pub.sock.settimeout(4.0)
        deadline = time.monotonic() + 4
        try:
            while sent[0] < 200000 and time.monotonic() < deadline:
                pub.sock.sendall(one * 1000)
                sent[0] += 1000
        except OSError:
            pass
        done.set()

    stop = threading.Event()
    peak = [0.0]
    sampler = threading.Thread(target=_rss_sampler, args=(b, stop, peak),
                               daemon=True)
    sampler.start()
    threading.Thread(target=publisher, daemon=True).start()
    try:
        time.sleep(0.5)
        fuzz_helpers.pika_roundtrip(b.port)
        roundtrip_during = not done.is_set()
        done.wait(30)
        time.sleep(0.5)
        print("non-reading consumer: %d messages sent, peak RSS %.0f MB, "
              "roundtrip during the flood: %s" % (sent[0], peak[0],
                                                  roundtrip_during))
        assert_alive(b)
        assert peak[0] < RSS_LIMIT_MB, "peak RSS %.0f MB" % peak[0]
        fuzz_helpers.pika_roundtrip(b.port)
    finally:
        stop.set()
        stuck.close_socket()
        pub.close_socket()
        amqp_helpers.close_quietly(conn)
    assert_alive(b)


def _flood(sock, data, seconds, limit_bytes):
    """Writes data over and over until limit_bytes are sent or `seconds`
    pass, waiting (select) whenever the broker is not reading.  Returns
    the number of bytes sent."""
    import select
    sock.setblocking(False)
    sent = 0
    view = memoryview(data)
    pos = 0
    deadline = time.monotonic() + seconds
    try:
        while sent < limit_bytes:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            _, writable, _ = select.select([], [sock], [], min(remaining,
                                                               0.2))
            if not writable:
                continue
            try:
                n = sock.send(view[pos:])
            except BlockingIOError:
                continue
            sent += n
            pos = (pos + n) % len(data)
    except OSError:
        pass
    finally:
        try:
            sock.setblocking(True)
        except OSError:
            pass
    return sent


def test_mandatory_returns_to_non_reading_client_are_bounded(
        warren_factory):
    """A client publishes 100 kB mandatory messages that cannot be routed
    (each comes back as basic.return with its body) and never reads its
    socket.  The broker must stop reading it (TCP backpressure) or drop
    it rather than buffer the returns without bound: RSS stays under
    300 MB while up to 400 MB are offered, and others keep working.
    (RabbitMQ 3.10 buffers them too, but its VM-wide memory alarm blocks
    such a publisher at the watermark; Warren's alarm counts message
    bytes only, so nothing bounds this.)"""
    b = warren_factory()
    c = raw(b)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.handshake()
    c.channel_open(1)
    body = b"r" * 100000
    one = b"".join(publish_frames(1, "", "warren-it.no-such-queue", body,
                                  mandatory=True))
    result = {}

    def flood():
        result["sent"] = _flood(c.sock, one * 10, 6, 400 << 20)

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    try:
        time.sleep(0.5)
        peak = fuzz_helpers.watch_rss(b.process.pid, RSS_LIMIT_MB, 8)
        print("returns: peak RSS %s MB" % peak)
        assert_alive(b)
        assert peak < RSS_LIMIT_MB, (
            "RSS reached %.0f MB during mandatory unroutable publishes (up "
            "to 400 MB) by a client that does not read" % peak)
        fuzz_helpers.pika_roundtrip(b.port)
    finally:
        c.close_socket()


def test_get_reject_amplification_is_bounded(warren_factory):
    """One 4 MiB message, then 150 pipelined basic.get + basic.reject
    (requeue) pairs from a client that does not read: ~7 kB of input asks
    for 600 MB of output.  The broker must not build that up in memory
    (RSS under 300 MB; RabbitMQ 3.10 stays flat since deliveries share the
    body) and must stay alive and usable."""
    b = warren_factory()
    c = raw(b)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.handshake()
    c.channel_open(1)
    q = "warren-it.amplified"
    c.queue_declare(1, q, exclusive=False, auto_delete=False)
    c.basic_publish(1, "", q, b"g" * (4 << 20))
    deadline = time.monotonic() + 30
    while _queue_state(b.port, q) != (1, 0):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    get = method_frame(1, rawamqp.BASIC_GET, struct.pack(">H", 0)
                       + shortstr(q) + bits(False))
    stream = b"".join(get + method_frame(1, fuzz_helpers.BASIC_REJECT,
                                         struct.pack(">Q", tag) + bits(True))
                      for tag in range(1, 151))
    try:
        _flood(c.sock, stream, 2, len(stream))
        peak = fuzz_helpers.watch_rss(b.process.pid, RSS_LIMIT_MB, 15)
        print("get/reject: peak RSS %s MB" % peak)
        assert_alive(b)
        assert peak < RSS_LIMIT_MB, (
            "RSS reached %.0f MB after 150 pipelined get/reject of a 4 MiB "
            "message (7 kB of input)" % peak)
    finally:
        c.close_socket()
    fuzz_helpers.pika_roundtrip(b.port)


MAX_MESSAGE = 134217728  # Warren's (and RabbitMQ's) default max size


def test_announced_body_size_is_not_reserved_up_front():
    """Content headers announcing the maximum body size (128 MiB) on 40
    channels, one body byte each: 5 GiB announced, 40 bytes sent.  Under
    an address-space limit of 2 GiB (as with vm.overcommit_memory=2 or a
    ulimit -v) the broker must not die: RabbitMQ accumulates body frames
    as they arrive.  Warren allocates body_size at the header, so
    operator new throws std::bad_alloc and the process aborts."""
    import conftest
    if conftest.external_port() is not None:
        pytest.skip(conftest.PRIVATE_SKIP_REASON)
    b = fuzz_helpers.start_limited_warren(address_space=2 << 30)
    try:
        c = raw(b, timeout=30)
        c.handshake()
        out = []
        for ch in range(1, 41):
            out.append(method_frame(ch, CHANNEL_OPEN, shortstr("")))
            out.append(_publish_method(ch, "", "warren-it.nowhere"))
            out.append(content_header_frame(ch, MAX_MESSAGE))
            out.append(body_frame(ch, b"x"))
        # A channel.open after them all: its open-ok proves every header and
        # body frame before it was handled.
        out.append(method_frame(41, CHANNEL_OPEN, shortstr("")))
        try:
            c.send(b"".join(out))
        except OSError:
            pass
        try:
            for ch in range(1, 42):
                assert c.read_method(rawamqp.CHANNEL_OPEN_OK).channel == ch
        except (OSError, rawamqp.ConnectionClosedByPeer):
            pass  # the assertion below says why
        assert b.alive(), ("warren-server died (exit %r) after 40 content "
                           "headers of 128 MiB; log:\n%s"
                           % (b.process.poll(), b.log_tail(20)))
        broker_ok(b)
        c.close_socket()
    finally:
        conftest.stop_broker(b)


ACCEPT_FAILED = "accept failed"


def test_out_of_file_descriptors_does_not_spin_or_flood_the_log():
    """A broker limited to 64 file descriptors gets 80 TCP connections
    (nothing sent on them) and runs out (it logs "accept failed").  While
    it is out of descriptors it must not busy-loop on accept() or write a
    log line per failed attempt (RabbitMQ's acceptor sleeps 100 ms on
    emfile; Warren retries every 100 ms and warns at most once a second):
    sampled 200 times, its threads are runnable in under half of the
    samples (a spinning process is runnable all the time, however slow
    the machine), and the warnings come at most one per second of the time
    it has been out.  An established connection keeps working meanwhile,
    and new clients are served once the descriptors are freed."""
    import conftest
    if conftest.external_port() is not None:
        pytest.skip(conftest.PRIVATE_SKIP_REASON)
    b = fuzz_helpers.start_limited_warren(nofile=64)
    socks = []

    def warnings():
        return [line for line in b.log if ACCEPT_FAILED in line]

    try:
        established = pika.BlockingConnection(amqp_helpers.params(b.port))
        ech = established.channel()
        eq = ech.queue_declare("", exclusive=True).method.queue
        before_out = time.monotonic()
        for _ in range(80):
            socks.append(socket.create_connection((b.host, b.port),
                                                  timeout=30))
        assert amqp_helpers.wait_until(warnings, timeout=30), (
            "80 connections to a broker with 64 file descriptors, and no "
            "%r in its log" % ACCEPT_FAILED)
        ech.basic_publish("", eq, b"during")
        assert ech.basic_get(eq, auto_ack=True)[2] == b"during"
        share = fuzz_helpers.runnable_share(b.process.pid)
        # Still out of descriptors: nothing was closed, and the warnings go on.
        count = len(warnings())
        assert amqp_helpers.wait_until(lambda: len(warnings()) > count,
                                       timeout=30), "no warning after %d" % count
        out_for = time.monotonic() - before_out
        lines = warnings()
        assert_alive(b)
        assert share < 0.5, (
            "out of descriptors, the broker was runnable in %.0f %% of 200 "
            "samples: it spins (log: %r)" % (share * 100, lines[-1:]))
        assert len(lines) <= out_for + 2, (
            "%d %r warnings in %.1f s out of descriptors, e.g. %r"
            % (len(lines), ACCEPT_FAILED, out_for, lines[-1]))
        amqp_helpers.close_quietly(established)
    finally:
        for s in socks:
            s.close()
        try:
            # The next retry accepts again (the 80 are still in the backlog
            # or closed: either way the fresh connection gets its turn).
            broker_ok(b)
        finally:
            conftest.stop_broker(b)


def test_blocked_publisher_is_not_dropped_for_missed_heartbeats(
        warren_factory):
    """A publisher with heartbeat 1 s is blocked by the memory alarm (a
    4 MiB watermark, filled by another client) and keeps sending its
    heartbeats, which the broker does not read while it is blocked.  It
    must not be disconnected for 'missed heartbeats': RabbitMQ 3.10.8
    pauses the heartbeat monitor of a blocked connection (checked: still
    connected after 6 s).  Positive control: a connection with heartbeat
    1 s that sends nothing after its handshake (and is not blocked) is
    dropped meanwhile; the victim must still be there 3 s after that.
    Once the alarm clears, the victim works again."""
    b = warren_factory("--vm-memory-high-watermark-absolute", str(4 << 20))
    q = amqp_helpers.unique("alarm")
    filler = opened(b)
    filler.queue_declare(1, q, exclusive=False, auto_delete=False)

    def alarm():
        return any("memory alarm set" in line for line in b.log)

    for _ in range(400):
        filler.basic_publish(1, "", q, b"f" * 16384)
        if _ % 16 == 15 and amqp_helpers.wait_until(alarm, timeout=0.05):
            break
    assert amqp_helpers.wait_until(alarm, timeout=30), "memory alarm not set"
    victim = raw(b, timeout=30)
    silent = raw(b, timeout=30)
    try:
        victim.handshake(heartbeat=1)
        victim.channel_open(1)
        victim.basic_publish(1, "", q, b"victim")
        silent.handshake(heartbeat=1)
        victim.sock.setblocking(False)
        silent.sock.setblocking(False)
        dropped = None
        silent_dropped = None
        t0 = time.monotonic()
        while silent_dropped is None or time.monotonic() - silent_dropped < 3:
            assert time.monotonic() - t0 < 60, (
                "the control connection (heartbeat 1 s, silent) was not "
                "dropped within 60 s")
            try:
                victim.sock.send(rawamqp.heartbeat_frame())
                if victim.sock.recv(65536) == b"":
                    dropped = time.monotonic() - t0
                    break
            except BlockingIOError:
                pass
            except OSError:
                dropped = time.monotonic() - t0
                break
            if silent_dropped is None and _at_eof(silent):
                silent_dropped = time.monotonic()
            time.sleep(0.25)
        assert dropped is None, (
            "blocked publisher (sending heartbeats) dropped after %.1f s: %s"
            % (dropped, [line for line in b.log if "heartbeat" in line][-1:]))
        # drain: the alarm clears and the victim works again
        drainer = pika.BlockingConnection(amqp_helpers.params(b.port))
        try:
            drainer.channel().queue_purge(q)
        finally:
            amqp_helpers.close_quietly(drainer)
        victim.sock.setblocking(True)
        victim.sock.settimeout(30)
        victim.channel_open(2)
    finally:
        victim.close_socket()
        silent.close_socket()
        filler.close_socket()


def _at_eof(client):
    """Whether the broker closed a raw client's socket (non-blocking; what
    it sent meanwhile is read and dropped)."""
    blocking = client.sock.gettimeout()
    client.sock.setblocking(False)
    try:
        while True:
            if client.sock.recv(65536) == b"":
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        client.sock.settimeout(blocking)


def test_announced_but_unsent_bodies_do_not_block_other_publishers(
        warren_factory):
    """With a 4 MiB memory watermark, one client announces 128 MiB bodies
    on 8 channels (1 GiB) but sends one byte each.  No memory is used, so
    another client's publishes are confirmed with no connection.blocked
    before the last confirm (no memory alarm), and RSS stays small.
    Positive control: once a third client really fills 4 MiB, the same
    publisher gets connection.blocked for its next publish."""
    n = 8
    b = warren_factory("--vm-memory-high-watermark-absolute", str(4 << 20))
    c = raw(b, timeout=30)
    filler = None
    events = []
    conn = None
    try:
        c.handshake()
        out = []
        for ch in range(1, n + 1):
            out.append(method_frame(ch, CHANNEL_OPEN, shortstr("")))
            out.append(_publish_method(ch, "", "warren-it.nowhere"))
            out.append(content_header_frame(ch, MAX_MESSAGE))
            out.append(body_frame(ch, b"x"))
        # Its open-ok proves every header before it was handled.
        out.append(method_frame(n + 1, CHANNEL_OPEN, shortstr("")))
        c.send(b"".join(out))
        for ch in range(1, n + 2):
            assert c.read_method(rawamqp.CHANNEL_OPEN_OK).channel == ch
        conn = pika.BlockingConnection(amqp_helpers.params(
            b.port, blocked_connection_timeout=30))
        conn.add_on_connection_blocked_callback(
            lambda _conn, frame: events.append(frame.method.reason))
        ch = conn.channel()
        ch.confirm_delivery()
        q = ch.queue_declare("", exclusive=True).method.queue
        try:
            for i in range(5):
                ch.basic_publish("", q, b"innocent %d" % i)
        except pika.exceptions.ConnectionBlockedTimeout:
            raise AssertionError(
                "an innocent publisher was blocked (memory alarm?) after "
                "another client announced %d x 128 MiB and sent %d bytes; "
                "log:\n%s" % (n, n, b.log_tail(5)))
        # A connection.blocked would have come before the confirms.
        assert events == [], events
        assert amqp_helpers.queue_depth(ch, q) == 5
        assert rss_mb(b.process.pid) < RSS_LIMIT_MB

        # Positive control: real message bytes over the watermark.
        fq = amqp_helpers.unique("fill")
        filler = opened(b)
        filler.queue_declare(1, fq, exclusive=False, auto_delete=False)

        def alarm():
            return any("memory alarm set" in line for line in b.log)

        for i in range(400):
            filler.basic_publish(1, "", fq, b"f" * 16384)
            if i % 16 == 15 and amqp_helpers.wait_until(alarm, timeout=0.05):
                break
        assert amqp_helpers.wait_until(alarm, timeout=30), "no memory alarm"
        conn.channel().basic_publish("", q, b"after the alarm")
        assert amqp_helpers.wait_until(lambda: events, timeout=30,
                                       connection=conn), (
            "no connection.blocked after the memory alarm")
        # Let the alarm clear, so the blocked connection can be closed.
        drainer = pika.BlockingConnection(amqp_helpers.params(b.port))
        try:
            drainer.channel().queue_delete(fq)
        finally:
            amqp_helpers.close_quietly(drainer)
    finally:
        amqp_helpers.close_quietly(conn)
        if filler is not None:
            filler.close_socket()
        c.close_socket()
    assert_alive(b)


# ---------------------------------------------------------------------------
# 5. Slowloris


HANDSHAKE_TIMEOUT = 10.0  # RabbitMQ's handshake_timeout; Warren's too
EOF_WAIT = 60.0  # how long a client waits for the broker to drop it


class IdleClients(object):
    """Connections that stop at every point of the handshake, plus a crowd
    of 100 that sent only 'AMQ'.  Started when the module's broker starts,
    so that the ~10 s of waiting overlaps the other tests."""

    STAGES = ["nothing", "partial-header", "header", "start-ok", "tune-ok"]

    def __init__(self, broker):
        self.broker = broker
        self.results = {}
        self.threads = []
        self.crowd = []
        for stage in self.STAGES:
            self._watch(stage, self._connect(stage))
        for i in range(100):
            started = time.monotonic()
            c = raw(broker, timeout=20)
            c.started = started
            c.send(b"AMQ")
            self.crowd.append(c)
            self._watch("crowd-%d" % i, c)

    def _connect(self, stage):
        started = time.monotonic()  # before the broker can accept
        c = raw(self.broker, timeout=20)
        if stage != "nothing":
            c.send(b"AMQ")
        if stage in ("header", "start-ok", "tune-ok"):
            c.send(b"P\x00\x00\x09\x01")
            c.read_start()
        if stage in ("start-ok", "tune-ok"):
            c.send_start_ok()
            c.read_tune()
        if stage == "tune-ok":
            c.send_tune_ok(2047, 131072, 0)
        c.started = started
        return c

    def _watch(self, name, client):
        started = getattr(client, "started", time.monotonic())

        def wait():
            waited = client.wait_for_eof(EOF_WAIT)
            self.results[name] = (None if waited is None
                                  else time.monotonic() - started)
            client.close_socket()

        t = threading.Thread(target=wait, daemon=True)
        t.start()
        self.threads.append(t)

    def join(self):
        for t in self.threads:
            t.join(EOF_WAIT + 10)
        return self.results


@pytest.fixture(scope="module", autouse=True)
def idle_clients(rbroker):
    return IdleClients(rbroker)


def test_slowloris_crowd_does_not_block_others(robust):
    """While 100 clients sit on a partial protocol header, other clients
    connect, handshake and work normally: a pika round trip completes
    while all 100 are still connected (a broker that served the round trip
    only after dropping the crowd, at its handshake timeout, fails)."""
    crowd = []
    try:
        for _ in range(100):
            c = raw(robust, timeout=30)
            crowd.append(c)
            c.send(b"AMQ")
        fuzz_helpers.pika_roundtrip(robust.port)
        dropped = sum(1 for c in crowd if _at_eof(c))
        assert dropped == 0, (
            "%d of the 100 slow clients were dropped before the round trip "
            "was done" % dropped)
    finally:
        for c in crowd:
            c.close_socket()


def test_protocol_header_and_handshake_byte_by_byte(robust, uname):
    """A client that dribbles everything one byte at a time (protocol
    header, start-ok, tune-ok, open, channel.open, queue.declare, a
    publish, a get), 2 ms apart, is served normally."""
    q = uname("dribble")
    stream = (rawamqp.PROTOCOL_HEADER + _start_ok_frame() + _tune_ok_frame()
              + _open_frame()
              + method_frame(1, CHANNEL_OPEN, shortstr(""))
              + method_frame(1, rawamqp.QUEUE_DECLARE,
                             queue_declare_args(q))
              + b"".join(publish_frames(1, "", q, b"dribbled"))
              + method_frame(1, rawamqp.BASIC_GET, struct.pack(">H", 0)
                             + shortstr(q) + bits(True)))
    c = raw(robust)
    try:
        for i in range(len(stream)):
            c.send(stream[i:i + 1])
            time.sleep(0.002)
        c.read_start()
        c.read_tune()
        for expected in (rawamqp.CONNECTION_OPEN_OK, rawamqp.CHANNEL_OPEN_OK,
                         rawamqp.QUEUE_DECLARE_OK, rawamqp.BASIC_GET_OK):
            c.read_method(expected)
        c.read_frame()  # content header
        assert c.read_frame().payload == b"dribbled"
    finally:
        c.close()


def test_idle_and_half_open_connections_dropped_after_handshake_timeout(
        robust, idle_clients):
    """Connections that send nothing, part of the protocol header, or stop
    after the header / start-ok / tune-ok are closed by the broker, and
    not before the handshake timeout (RabbitMQ: 10 s; each client's clock
    starts before its TCP connect, so before the broker's).  The
    clients were started with the module, so this mostly waits for what
    remains of the 10 s."""
    results = idle_clients.join()
    for name in IdleClients.STAGES + ["crowd-%d" % i for i in range(100)]:
        waited = results.get(name)
        assert waited is not None, "%s: still open after %.0f s" % (
            name, EOF_WAIT)
        assert waited >= HANDSHAKE_TIMEOUT - 0.5, "%s: closed after %.1f s" % (
            name, waited)
