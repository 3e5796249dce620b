"""STOMP 1.0-1.2 as RabbitMQ's rabbitmq_stomp plugin speaks it: stomp.py and raw sockets against
the STOMP listener, pika on the AMQP side. Expected texts (ERROR message headers and bodies,
MESSAGE headers, queue names) were taken from RabbitMQ 3.10.8.

Against an external broker set WARREN_TEST_STOMP_PORT as well as WARREN_TEST_AMQP_PORT (the
tests then also run against a real RabbitMQ with rabbitmq_stomp enabled)."""

import os
import socket
import subprocess
import time
import uuid

import pika
import pytest

import warren_process

# Under CI=true a missing stomp.py is a failure (scripts/install-deps.sh installs it).
stomp = __import__("stomp") if os.environ.get("CI") else pytest.importorskip("stomp")

DEADLINE = 10.0


@pytest.fixture
def stomp_port(broker):
    port = os.environ.get("WARREN_TEST_STOMP_PORT")
    if port:
        return int(port)
    if getattr(broker, "external", False):
        pytest.skip("external broker without WARREN_TEST_STOMP_PORT")
    return broker.listener_port("STOMP")


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


class RawStomp(object):
    """A STOMP client over a plain socket: frames in, frames out, nothing hidden."""

    def __init__(self, port, connect=True, version="1.2", login="guest", passcode="guest",
                 extra=""):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.buf = b""
        self.closed = False
        if connect:
            self.send_frame("CONNECT", [("accept-version", version), ("host", "/"),
                                        ("login", login), ("passcode", passcode)], extra=extra)
            self.connected = self.frame()
            assert self.connected[0] == "CONNECTED", self.connected

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, command, headers=(), body=b"", extra=""):
        head = command + "\n" + "".join("%s:%s\n" % h for h in headers) + extra + "\n"
        self.send_raw(head.encode("utf-8") + body + b"\0")

    def _fill(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        if not data:
            self.closed = True
            return False
        self.buf += data
        return True

    def frame(self, timeout=DEADLINE):
        """The next frame as (command, [(name, value)], body); None when the socket closed or
        nothing came in time. Heart-beat EOLs are skipped; headers are left escaped."""
        deadline = time.monotonic() + timeout
        while True:
            self.buf = self.buf.lstrip(b"\n")
            end = self.buf.find(b"\n\n")
            if end >= 0:
                head = self.buf[:end].decode("utf-8").split("\n")
                headers = [tuple(line.split(":", 1)) for line in head[1:]]
                length = dict(headers).get("content-length")
                start = end + 2
                if length is not None:
                    stop = start + int(length)
                    if len(self.buf) > stop:
                        body, self.buf = self.buf[start:stop], self.buf[stop + 1:]
                        return head[0], headers, body
                else:
                    nul = self.buf.find(b"\0", start)
                    if nul >= 0:
                        body, self.buf = self.buf[start:nul], self.buf[nul + 1:]
                        return head[0], headers, body
            if self.closed or time.monotonic() > deadline or not self._fill(deadline):
                if self.closed or time.monotonic() > deadline:
                    return None

    def wait_closed(self, timeout=DEADLINE):
        """True once the server closed the socket (frames before that are discarded)."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self._fill(deadline)
        return self.closed

    def close(self):
        self.sock.close()


def headers_of(frame):
    return dict(frame[1])


@pytest.fixture
def raw(stomp_port):
    clients = []

    def make(**kwargs):
        c = RawStomp(stomp_port, **kwargs)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def amqp(conn_params):
    c = pika.BlockingConnection(conn_params)
    yield c.channel()
    if c.is_open:
        c.close()


class Collector(stomp.ConnectionListener):
    def __init__(self):
        self.messages = []
        self.errors = []
        self.receipts = []

    def on_message(self, frame):
        self.messages.append(frame)

    def on_error(self, frame):
        self.errors.append(frame)

    def on_receipt(self, frame):
        self.receipts.append(frame.headers["receipt-id"])


def wait_for(condition, what, timeout=DEADLINE):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


@pytest.fixture
def stomp_client(stomp_port):
    made = []

    def make(version="1.2"):
        cls = {"1.0": stomp.Connection10, "1.1": stomp.Connection11}.get(version, stomp.Connection12)
        # stomp.py sends the server's host name as the host header, which RabbitMQ (and Warren)
        # take as the vhost: name it.
        c = cls([("127.0.0.1", stomp_port)], vhost="/")
        listener = Collector()
        c.set_listener("collector", listener)
        c.connect("guest", "guest", wait=True)
        made.append(c)
        return c, listener

    yield make
    for c in made:
        if c.is_connected():
            c.disconnect()


# ---- connecting ----

def test_connect_negotiates_the_highest_common_version(raw):
    c = raw(version="1.0,1.1")
    h = headers_of(c.connected)
    assert h["version"] == "1.1"
    assert h["session"].startswith("session-")
    assert h["heart-beat"] == "0,0"
    assert "server" in h
    assert headers_of(raw(version="1.2,1.0").connected)["version"] == "1.2"


def test_no_common_version_is_an_error_and_the_connection_stays(raw):
    c = raw(connect=False)
    c.send_frame("CONNECT", [("accept-version", "2.0"), ("login", "guest"),
                             ("passcode", "guest")])
    f = c.frame()
    assert f[0] == "ERROR"
    assert headers_of(f)["message"] == "Version mismatch"
    assert headers_of(f)["version"] == "1.0,1.1,1.2"
    assert f[2] == b"Supported versions are 1.0,1.1,1.2\n"
    c.send_frame("CONNECT", [("accept-version", "1.2"), ("login", "guest"),
                             ("passcode", "guest")])
    assert c.frame()[0] == "CONNECTED"


def test_bad_login_and_frames_before_connect(raw):
    c = raw(connect=False)
    c.send_frame("CONNECT", [("accept-version", "1.2"), ("login", "guest"),
                             ("passcode", "wrong")])
    f = c.frame()
    assert (f[0], headers_of(f)["message"], f[2]) == (
        "ERROR", "Bad CONNECT", b"Access refused for user 'guest'\n")
    c.send_frame("SEND", [("destination", "/queue/x")], b"x")
    f = c.frame()
    assert (headers_of(f)["message"], f[2]) == (
        "Illegal command", b"You must log in using CONNECT first")
    c.send_frame("CONNECT", [("accept-version", "1.2"), ("host", "no-such-vhost"),
                             ("login", "guest"), ("passcode", "guest")])
    f = c.frame()
    assert f[2] == b"Virtual host 'no-such-vhost' access denied"


def test_connect_without_login_uses_the_default_user(raw):
    c = raw(connect=False)
    c.send_frame("CONNECT", [("accept-version", "1.2")])
    assert c.frame()[0] == "CONNECTED"


def test_heart_beats_are_negotiated_sent_and_enforced(raw):
    # The client offers to send every 1000 ms and wants one every 1000 ms.
    c = raw(extra="heart-beat:1000,1000\n")
    assert headers_of(c.connected)["heart-beat"] == "1000,1000"
    # Server heart-beats arrive as EOLs; then, as the client sends nothing, it is dropped after
    # two to three intervals.
    deadline = time.monotonic() + DEADLINE
    while not c.closed and time.monotonic() < deadline:
        c._fill(deadline)
    assert c.closed, "missed heart-beats did not close the connection"
    assert b"\n" in c.buf
    # A client that keeps sending EOLs stays.
    d = raw(extra="heart-beat:1000,0\n")
    assert headers_of(d.connected)["heart-beat"] == "0,1000"
    for _ in range(6):
        d.send_raw(b"\n")
        time.sleep(0.5)
    d.send_frame("SUBSCRIBE", [("destination", "/queue/" + unique("hb")), ("id", "1"),
                               ("receipt", "alive")])
    f = d.frame()
    assert f is not None and f[0] == "RECEIPT"


# ---- send and subscribe ----

def test_send_and_subscribe_with_stomp_py(stomp_client):
    c, listener = stomp_client()
    q = "/queue/" + unique("sp")
    c.subscribe(q, id="s1", ack="auto")
    c.send(q, "hello", headers={"x-custom": "v"}, receipt="r1")
    wait_for(lambda: listener.messages and "r1" in listener.receipts, "message and receipt")
    m = listener.messages[0]
    assert m.body == "hello"
    assert m.headers["destination"] == q
    assert m.headers["subscription"] == "s1"
    assert m.headers["x-custom"] == "v"
    assert m.headers["receipt"] == "r1"  # as RabbitMQ: other headers travel as AMQP headers
    assert m.headers["message-id"].startswith("T_s1@@session-")


def test_headers_are_escaped_both_ways(raw):
    c = raw()
    q = "/queue/" + unique("esc")
    c.send_frame("SUBSCRIBE", [("destination", q), ("id", "1")])
    c.send_frame("SEND", [("destination", q), ("receipt", "r")],
                 extra="a\\cb:c\\\\d\\ne\\rf:g\n", body=b"x")
    seen = {}
    for _ in range(2):
        f = c.frame()
        seen[f[0]] = f
    assert ("a\\cb", "c\\\\d\\ne\\rf\\cg") in seen["MESSAGE"][1]


def test_stomp_1_0_values_are_left_trimmed_and_still_escaped(raw):
    c = raw(version="1.0")
    q = "/queue/" + unique("v10")
    c.send_frame("SUBSCRIBE", [("destination", q)])
    c.send_frame("SEND", [("destination", q), ("k", "  a\\cb:c")], b"x")
    f = c.frame()
    assert f[0] == "MESSAGE"
    assert ("k", "a\\cb\\cc") in f[1]
    assert "subscription" not in headers_of(f)
    assert headers_of(f)["message-id"].startswith("Q_" + q + "@@")


def test_body_with_nul_bytes_needs_content_length(raw):
    c = raw()
    q = "/queue/" + unique("nul")
    c.send_frame("SUBSCRIBE", [("destination", q), ("id", "1")])
    body = b"a\0b\0\0c"
    c.send_frame("SEND", [("destination", q), ("content-length", str(len(body)))], body)
    f = c.frame()
    assert f[2] == body
    assert headers_of(f)["content-length"] == str(len(body))


def test_amqp_publisher_to_stomp_subscriber(raw, amqp):
    q = unique("interop")
    amqp.queue_declare(q, durable=True)
    props = pika.BasicProperties(
        content_type="a/b", content_encoding="enc", delivery_mode=1, priority=4,
        correlation_id="cid", reply_to="plainq", expiration="50000", message_id="mid",
        timestamp=99, type="ty", user_id="guest", app_id="ai",
        headers={"h1": "v1", "h2": 5, "h3": True, "content-length": "999", "a:b": "c\nd"})
    amqp.basic_publish("", q, b"x\0y", props)
    c = raw()
    c.send_frame("SUBSCRIBE", [("destination", "/queue/" + q), ("id", "s1"), ("ack", "client")])
    f = c.frame()
    mid = "T_s1@@%s@@1" % headers_of(c.connected)["session"]
    # Exactly what RabbitMQ 3.10.8 sends: booleans are dropped, delivery mode 1 is "1", a plain
    # reply-to becomes a /reply-queue/ destination, the body's own length replaces the header's.
    assert f[1] == [
        ("subscription", "s1"), ("destination", "/queue/" + q), ("message-id", mid),
        ("redelivered", "false"), ("ack", mid), ("h1", "v1"), ("h2", "5"), ("a\\cb", "c\\nd"),
        ("app-id", "ai"), ("user-id", "guest"), ("type", "ty"), ("timestamp", "99"),
        ("amqp-message-id", "mid"), ("expiration", "50000"), ("reply-to", "/reply-queue/plainq"),
        ("correlation-id", "cid"), ("priority", "4"), ("persistent", "1"),
        ("content-encoding", "enc"), ("content-type", "a/b"), ("content-length", "3")]
    assert f[2] == b"x\0y"


def test_stomp_publisher_to_amqp_consumer(raw, amqp):
    q = unique("toamqp")
    c = raw()
    c.send_raw(b"SEND\ndestination:/queue/" + q.encode() +
               b"\ncontent-type:text/x\ncontent-encoding:gzip\npersistent:true\npriority:3\n"
               b"expiration:60000\nreply-to:/queue/rq\ncorrelation-id:c1\namqp-message-id:m1\n"
               b"app-id:app\ntype:t\nuser-id:guest\ntimestamp:1234\nx-custom:v\n"
               b"content-length:3\nreceipt:r1\n\na\0b\0")
    assert c.frame()[0] == "RECEIPT"
    method, p, body = amqp.basic_get(q, auto_ack=True)
    assert body == b"a\0b"
    assert (method.exchange, method.routing_key) == ("", q)
    assert (p.content_type, p.content_encoding, p.delivery_mode, p.priority) == (
        "text/x", "gzip", 2, 3)
    assert (p.expiration, p.reply_to, p.correlation_id, p.message_id) == (
        "60000", "/queue/rq", "c1", "m1")
    assert (p.app_id, p.type, p.user_id, p.timestamp) == ("app", "t", "guest", 1234)
    # Every other header, in reverse frame order, as long strings.
    assert list(p.headers.items()) == [("receipt", "r1"), ("content-length", "3"),
                                       ("x-custom", "v")]
    # /queue/ destinations are declared durable.
    assert amqp.queue_declare(q, passive=True).method.queue == q


def test_send_receipt_waits_for_the_confirm_of_a_persistent_message(raw, amqp):
    q = unique("durable")
    c = raw()
    c.send_frame("SEND", [("destination", "/queue/" + q), ("persistent", "true"),
                          ("receipt", "stored")], b"keep me")
    f = c.frame()
    assert (f[0], headers_of(f)["receipt-id"]) == ("RECEIPT", "stored")
    assert amqp.queue_declare(q, passive=True).method.message_count == 1


# ---- acknowledgements ----

def test_client_individual_ack_and_nack(raw, amqp):
    q = unique("ack")
    c = raw()
    for i in range(3):
        c.send_frame("SEND", [("destination", "/queue/" + q)], b"m%d" % i)
    c.send_frame("SUBSCRIBE", [("destination", "/queue/" + q), ("id", "k"),
                               ("ack", "client-individual")])
    frames = [c.frame() for _ in range(3)]
    acks = [headers_of(f)["ack"] for f in frames]
    c.send_frame("ACK", [("id", acks[1])])
    c.send_frame("NACK", [("id", acks[0]), ("requeue", "false")])
    c.send_frame("NACK", [("id", acks[2]), ("receipt", "n")])  # requeued by default
    f = c.frame()
    while f[0] != "MESSAGE":
        f = c.frame()
    assert f[2] == b"m2" and headers_of(f)["redelivered"] == "true"
    c.send_frame("ACK", [("id", headers_of(f)["ack"]), ("receipt", "done")])
    while headers_of(c.frame()).get("receipt-id") != "done":
        pass
    assert amqp.queue_declare(q, passive=True).method.message_count == 0


def test_client_ack_is_cumulative_and_prefetch_limits_deliveries(raw, amqp):
    q = unique("cum")
    c = raw()
    for i in range(5):
        c.send_frame("SEND", [("destination", "/queue/" + q)], b"m%d" % i)
    c.send_frame("SUBSCRIBE", [("destination", "/queue/" + q), ("id", "k"), ("ack", "client"),
                               ("prefetch-count", "2")])
    first = [c.frame(), c.frame()]
    assert [f[2] for f in first] == [b"m0", b"m1"]
    assert c.frame(timeout=0.5) is None  # prefetch 2: no third delivery before an ack
    c.send_frame("ACK", [("id", headers_of(first[1])["ack"])])  # acks m0 and m1
    more = [c.frame(), c.frame()]
    assert [f[2] for f in more] == [b"m2", b"m3"]
    c.send_frame("DISCONNECT", [("receipt", "bye")])
    assert headers_of(c.frame())["receipt-id"] == "bye"
    assert c.wait_closed()
    # m2 and m3 were unacked: back in the queue with m4.
    wait_for(lambda: amqp.queue_declare(q, passive=True).method.message_count == 3,
             "unacked messages requeued")


def test_ack_of_an_unknown_delivery_tag_closes_with_precondition_failed(raw):
    c = raw()
    c.send_frame("SUBSCRIBE", [("destination", "/queue/" + unique("a1")), ("id", "x"),
                               ("ack", "client")])
    c.send_frame("ACK", [("id", "T_x@@s@@99")])
    f = c.frame()
    assert (headers_of(f)["message"], f[2]) == (
        "precondition_failed", b"PRECONDITION_FAILED - unknown delivery tag 99")
    assert c.wait_closed()


# ---- transactions ----

def test_transaction_applies_sends_and_acks_at_commit(raw):
    q = "/queue/" + unique("tx")
    c = raw()
    c.send_frame("SUBSCRIBE", [("destination", q), ("id", "q"), ("ack", "client")])
    c.send_frame("BEGIN", [("transaction", "t1")])
    c.send_frame("SEND", [("destination", q), ("transaction", "t1")], b"inside")
    c.send_frame("SEND", [("destination", q), ("transaction", "t1")], b"inside2")
    assert c.frame(timeout=0.5) is None
    c.send_frame("COMMIT", [("transaction", "t1"), ("receipt", "c")])
    got = []
    while len(got) < 2:
        f = c.frame()
        if f[0] == "MESSAGE":
            got.append(f)
    assert [f[2] for f in got] == [b"inside", b"inside2"]
    c.send_frame("BEGIN", [("transaction", "t2")])
    c.send_frame("ACK", [("id", headers_of(got[1])["ack"]), ("transaction", "t2")])
    c.send_frame("SEND", [("destination", q), ("transaction", "t2")], b"aborted")
    c.send_frame("ABORT", [("transaction", "t2"), ("receipt", "ab")])
    f = c.frame()
    assert headers_of(f) == {"receipt-id": "ab"}
    c.send_frame("COMMIT", [("transaction", "t2")])
    f = c.frame()
    assert (headers_of(f)["message"], f[2]) == (
        "Bad transaction", b'Invalid transaction identifier: "t2"\n')


# ---- destinations ----

def test_topic_and_exchange_destinations(raw):
    c = raw()
    c.send_frame("SUBSCRIBE", [("destination", "/topic/a.b"), ("id", "1")])
    c.send_frame("SUBSCRIBE", [("destination", "/exchange/amq.direct/k%2Fz"), ("id", "2")])
    c.send_frame("SUBSCRIBE", [("destination", "/exchange/amq.fanout"), ("id", "3"),
                               ("receipt", "subscribed")])
    assert c.frame()[0] == "RECEIPT"
    c.send_frame("SEND", [("destination", "/topic/a.b")], b"t1")
    c.send_frame("SEND", [("destination", "/exchange/amq.direct/k%2Fz")], b"t2")
    c.send_frame("SEND", [("destination", "/exchange/amq.fanout")], b"t3")
    got = {}
    for _ in range(3):
        f = c.frame()
        got[f[2]] = (headers_of(f)["subscription"], headers_of(f)["destination"])
    assert got == {b"t1": ("1", "/topic/a.b"),
                   b"t2": ("2", "/exchange/amq.direct/k%2Fz"),
                   b"t3": ("3", "/exchange/amq.fanout")}


def test_durable_topic_subscription_queue_is_named_as_rabbitmq_names_it(raw, amqp):
    c = raw()
    c.send_frame("SUBSCRIBE", [("destination", "/topic/dur.key"), ("id", "dsub"),
                               ("durable", "true"), ("auto-delete", "false"),
                               ("receipt", "s")])
    assert c.frame()[0] == "RECEIPT"
    name = "stomp-subscription-kpmeopwk5V2EZOdCUKop5A"  # RabbitMQ 3.10.8's name for it
    c.close()
    # It outlives the connection and keeps collecting messages.
    amqp.basic_publish("amq.topic", "dur.key", b"while away")
    wait_for(lambda: amqp.queue_declare(name, passive=True).method.message_count == 1,
             "a message in the durable subscription queue")
    d = raw()
    d.send_frame("SUBSCRIBE", [("destination", "/topic/dur.key"), ("id", "dsub"),
                               ("durable", "true"), ("auto-delete", "false")])
    assert d.frame()[2] == b"while away"
    # UNSUBSCRIBE with durable:true deletes it.
    d.send_frame("UNSUBSCRIBE", [("id", "dsub"), ("durable", "true"), ("receipt", "gone")])
    assert headers_of(d.frame())["receipt-id"] == "gone"
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        amqp.queue_declare(name, passive=True)


def test_temp_queue_reply_to(raw):
    requester, responder = raw(), raw()
    q = "/queue/" + unique("rpc")
    responder.send_frame("SUBSCRIBE", [("destination", q), ("id", "s")])
    requester.send_frame("SEND", [("destination", q), ("reply-to", "/temp-queue/foo")], b"req")
    req = responder.frame()
    reply_to = headers_of(req)["reply-to"]
    assert reply_to.startswith("/reply-queue/amq.gen-")
    responder.send_frame("SEND", [("destination", reply_to)], b"resp")
    resp = requester.frame()
    assert resp[2] == b"resp"
    assert headers_of(resp)["subscription"] == "/temp-queue/foo"
    assert headers_of(resp)["destination"] == "/queue/" + reply_to[len("/reply-queue/"):]


def test_missing_queue_or_exchange_is_not_found_and_closes(raw):
    c = raw()
    c.send_frame("SUBSCRIBE", [("destination", "/amq/queue/" + unique("nope")), ("id", "1")])
    f = c.frame()
    assert headers_of(f)["message"] == "not_found"
    assert f[2].startswith(b"NOT_FOUND - no queue 'nope-")
    assert c.wait_closed()
    d = raw()
    d.send_frame("SEND", [("destination", "/exchange/no-such-exchange/k")], b"x")
    f = d.frame()
    assert (headers_of(f)["message"], f[2]) == (
        "not_found", b"NOT_FOUND - no exchange 'no-such-exchange' in vhost '/'")
    assert d.wait_closed()


@pytest.mark.parametrize("frame, message, detail", [
    (("SEND", [("destination", "/bogus/x")]), "Unknown destination",
     b"'/bogus/x' is not a valid destination.\nValid destination types are: /temp-queue, "
     b"/exchange, /topic, /queue, /amq/queue, /reply-queue/.\n"),
    (("SEND", []), "Missing destination", b"\"SEND\" must include a 'destination' header\n"),
    (("SEND", [("destination", "/temp-queue/foo")]), "Invalid destination",
     b"'/temp-queue/foo' is not a valid destination for 'SEND'\n"),
    (("SEND", [("destination", "/queue/x"), ("message-id", "1")]), "Invalid header",
     b"'message-id' is not allowed on 'SEND'.\n"),
    (("FOO", []), "Bad command", b'Could not interpret command "FOO"\n'),
    (("UNSUBSCRIBE", [("id", "nope")]), "No subscription found",
     b"UNSUBSCRIBE must refer to an existing subscription.\n"
     b"Subscription to \"id='nope'\" not found.\n"),
    (("SUBSCRIBE", [("destination", "/topic/t"), ("durable", "true")]), "Missing Header",
     b"Header 'id' is required for durable subscriptions"),
    (("ACK", []), "Missing header", b'"ACK" must include the "id" header\n'),
    (("ACK", [("id", "T_x@@s@@1")]), "Subscription not found",
     b'Message with id "T_x@@s@@1" has no subscription'),
    (("BEGIN", []), "Missing transaction", b"\"BEGIN\" must include a 'transaction' header\n"),
])
def test_errors_have_rabbitmq_texts_and_leave_the_connection_open(raw, frame, message, detail):
    c = raw()
    c.send_frame(frame[0], frame[1] + [("receipt", "no-receipt-on-error")], b"x")
    f = c.frame()
    assert f[0] == "ERROR"
    assert f[1][:3] == [("message", message), ("content-type", "text/plain"),
                        ("version", "1.0,1.1,1.2")]
    assert f[2] == detail
    c.send_frame("SUBSCRIBE", [("destination", "/queue/" + unique("ok")), ("id", "1"),
                               ("receipt", "still-open")])
    assert headers_of(c.frame()) == {"receipt-id": "still-open"}


@pytest.mark.parametrize("data", [
    b"SEND\ndestination:/queue/x\nno-colon-header\n\nx\0",
    b"SEND\ndestination:/queue/x\na:b\\tc\n\nx\0",
    b"SEND\rX\n\n\0",
    b"SEND\ncontent-length:1\n\nab\0",
])
def test_malformed_frame_closes_that_connection_only(raw, data):
    bystander = raw()
    c = raw()
    c.send_raw(data)
    # As RabbitMQ: the parse error is logged and the socket closed, without an ERROR frame.
    assert c.wait_closed()
    assert b"ERROR" not in c.buf
    bystander.send_frame("SUBSCRIBE", [("destination", "/queue/" + unique("b")), ("id", "1"),
                                       ("receipt", "fine")])
    assert headers_of(bystander.frame()) == {"receipt-id": "fine"}


def test_second_connect_closes_the_connection(raw):
    c = raw()
    c.send_frame("CONNECT", [("accept-version", "1.2")])
    assert c.wait_closed()


def test_frame_over_max_frame_size_closes_the_connection(warren_factory, tmp_path):
    conf = tmp_path / "rabbitmq.conf"
    conf.write_text("stomp.max_frame_size = 10000\n")
    b = warren_factory("--config", str(conf))
    port = b.listener_port("STOMP")
    small = RawStomp(port)
    small.send_frame("SEND", [("destination", "/queue/small"), ("receipt", "r")], b"x" * 5000)
    assert small.frame()[0] == "RECEIPT"
    big = RawStomp(port)
    big.send_raw(b"SEND\ndestination:/queue/big\ncontent-length:20000\n\n" + b"x" * 20000 + b"\0")
    assert big.wait_closed()
    small.close()
    big.close()


def test_implicit_connect_logs_in_with_the_first_frame(warren_factory, tmp_path):
    # Off by default: a frame before CONNECT is an error.
    conf = tmp_path / "rabbitmq.conf"
    conf.write_text("stomp.implicit_connect = true\n")
    b = warren_factory("--config", str(conf))
    port = b.listener_port("STOMP")
    q = unique("implicit")
    c = RawStomp(port, connect=False)
    # No CONNECT: the SUBSCRIBE logs in as the default user (guest) and no CONNECTED comes.
    c.send_frame("SUBSCRIBE", [("destination", "/queue/" + q), ("id", "0"), ("receipt", "s")])
    assert c.frame()[0] == "RECEIPT"
    c.send_frame("SEND", [("destination", "/queue/" + q)], b"implicit")
    f = c.frame()
    assert f[0] == "MESSAGE" and f[2] == b"implicit", f
    c.close()
    # A default user that cannot log in: ERROR, and the connection closes.
    conf.write_text("stomp.implicit_connect = true\nstomp.default_pass = wrong\n")
    b2 = warren_factory("--config", str(conf))
    bad = RawStomp(b2.listener_port("STOMP"), connect=False)
    bad.send_frame("SEND", [("destination", "/queue/" + q)], b"x")
    f = bad.frame()
    assert f[0] == "ERROR" and headers_of(f)["message"] == "Bad CONNECT", f
    assert bad.wait_closed()
    bad.close()


def test_stomp_connections_are_listed_and_closed_on_vhost_deletion(warren_factory):
    b = warren_factory()
    port = b.listener_port("STOMP")
    ch = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", b.port)).channel()
    c = RawStomp(port)
    ch.connection.close()
    ctl = os.path.join(os.path.dirname(warren_process.server_binary()), "warrenctl")
    out = subprocess.run([ctl, "--data-dir", b.data_dir, "list_connections", "user", "vhost"],
                         capture_output=True, text=True, timeout=30).stdout
    assert "guest\t/" in out
    subprocess.run([ctl, "--data-dir", b.data_dir, "delete_vhost", "/"],
                   capture_output=True, text=True, timeout=30)
    f = c.frame()
    assert headers_of(f)["message"] == "connection_forced"
    assert c.wait_closed()
    c.close()


def test_permissions_are_checked_as_for_amqp(warren_factory):
    b = warren_factory()
    ctl = os.path.join(os.path.dirname(warren_process.server_binary()), "warrenctl")
    for args in (["add_user", "lim", "lim"], ["set_permissions", "-p", "/", "lim", "^$", ".*", "^$"]):
        done = subprocess.run([ctl, "--data-dir", b.data_dir] + args, capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, done.stderr
    c = RawStomp(b.listener_port("STOMP"), login="lim", passcode="lim")
    c.send_frame("SUBSCRIBE", [("destination", "/queue/permq"), ("id", "1")])
    f = c.frame()
    assert (headers_of(f)["message"], f[2]) == (
        "access_refused",
        b"ACCESS_REFUSED - access to queue 'permq' in vhost '/' refused for user 'lim'")
    assert c.wait_closed()
    c.close()
