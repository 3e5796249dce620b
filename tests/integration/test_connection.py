"""Connection level behaviour: authentication, vhosts, server properties,
tune negotiation and protocol header handling."""

import time

import pika
import pika.exceptions
import pytest

import amqp_helpers
import rawamqp

REQUIRED_CAPABILITIES = [
    "publisher_confirms",
    "exchange_exchange_bindings",
    "basic.nack",
    "consumer_cancel_notify",
    "connection.blocked",
    "authentication_failure_close",
    "per_consumer_qos",
    "direct_reply_to",
]


def test_guest_guest_can_connect_and_use_a_channel(connect):
    conn = connect()
    assert conn.is_open
    ch = conn.channel()
    assert ch.is_open
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"ping")
    method, _, body = ch.basic_get(q, auto_ack=True)
    assert body == b"ping"
    conn.close()
    assert conn.is_closed


def test_wrong_password_is_refused_with_403(amqp_port):
    params = amqp_helpers.params(
        amqp_port, credentials=pika.PlainCredentials("guest", "wrong"))
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as info:
        pika.BlockingConnection(params)
    assert "403" in str(info.value)
    assert "ACCESS_REFUSED" in str(info.value)


def test_unknown_user_is_refused_with_403(amqp_port):
    params = amqp_helpers.params(
        amqp_port, credentials=pika.PlainCredentials("no-such-user", "x"))
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as info:
        pika.BlockingConnection(params)
    assert "403" in str(info.value)
    assert "ACCESS_REFUSED" in str(info.value)


def test_wrong_password_raw_close_frame(raw_client):
    """With authentication_failure_close the broker sends connection.close
    403 ACCESS_REFUSED (class/method 0/0) and then closes the socket."""
    c = raw_client()
    c.send_protocol_header()
    c.read_start()
    c.send_start_ok("guest", "not-the-password")
    close = c.expect_connection_close()
    assert close.reply_code == 403
    assert close.reply_text.startswith("ACCESS_REFUSED - ")
    assert c.wait_for_eof(5) is not None


def test_unknown_vhost_is_refused_with_530(amqp_port):
    params = amqp_helpers.params(amqp_port,
                                 virtual_host=amqp_helpers.unique("vhost"))
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as info:
        pika.BlockingConnection(params)
    assert "530" in str(info.value)
    assert "NOT_ALLOWED" in str(info.value)


def test_unknown_vhost_raw_close_frame(raw_client):
    c = raw_client()
    c.send_protocol_header()
    c.read_start()
    c.send_start_ok()
    c.send_tune_ok(*c.read_tune())
    c.send_open("no-such-vhost")
    close = c.expect_connection_close()
    assert close.reply_code == 530
    assert close.reply_text.startswith("NOT_ALLOWED - ")
    assert "no-such-vhost" in close.reply_text
    assert (close.class_id, close.method_id) == rawamqp.CONNECTION_OPEN
    assert c.wait_for_eof(5) is not None


def test_server_properties_via_raw_handshake(raw_client):
    c = raw_client()
    c.send_protocol_header()
    c.read_start()
    assert c.version == (0, 9)
    props = c.server_properties
    for key in ("product", "version", "platform"):
        assert key in props, "server property %r missing" % key
        assert isinstance(props[key], bytes) and props[key], key
    caps = props.get("capabilities")
    assert isinstance(caps, dict)
    for cap in REQUIRED_CAPABILITIES:
        assert caps.get(cap) is True, "capability %r not True: %r" % (
            cap, caps.get(cap))
    assert b"PLAIN" in c.mechanisms.split()
    assert b"en_US" in c.locales.split()


def test_server_properties_seen_by_pika(connect):
    conn = connect()
    impl = conn._impl  # pika keeps the Connection.Start data here
    assert impl.server_properties.get("product")
    for cap in REQUIRED_CAPABILITIES:
        assert impl.server_capabilities.get(cap) is True, cap


def test_tune_proposes_rabbitmq_defaults(raw_client):
    """RabbitMQ 3.10 proposes channel_max 2047, frame_max 131072 and
    heartbeat 60 s."""
    c = raw_client()
    c.send_protocol_header()
    c.read_start()
    c.send_start_ok()
    assert c.read_tune() == (2047, 131072, 60)


def test_pika_works_with_lower_client_tune_values(connect):
    """pika asks for frame_max 8192, channel_max 10, heartbeat 7 (what pika then uses is its own
    choice, so it is not asserted; the raw tests below observe the broker honouring such
    values). The connection works, including a body that must be split into 8 KiB frames in
    both directions."""
    conn = connect(frame_max=8192, channel_max=10, heartbeat=7)
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    body = bytes(range(256)) * 400  # 102400 bytes
    ch.basic_publish("", q, body)
    method, _, got = ch.basic_get(q, auto_ack=True)
    assert got == body


def test_pika_accepts_server_values_when_unspecified(connect):
    conn = connect()
    p = conn._impl.params
    assert p.heartbeat == 60
    assert p.channel_max == 2047
    assert p.frame_max == 131072


def test_broker_honours_client_frame_max(raw_client):
    """After tune-ok frame_max=4096 every frame the broker sends is at most
    4096 octets (7 header + payload + 1 end)."""
    c = raw_client()
    c.handshake(frame_max=4096)
    c.channel_open(1)
    q, _, _ = c.queue_declare(1, "", exclusive=True)
    body = bytes(range(256)) * 80  # 20480 bytes
    c.basic_publish(1, "", q, body)
    c.basic_consume(1, q, no_ack=True)
    deliver, frames, got = c.read_delivery()
    assert got == body
    assert len(frames) >= 5
    for frm in frames:
        assert len(frm.payload) + 8 <= 4096
    c.close()


def test_broker_sends_heartbeats_at_negotiated_rate(raw_client):
    """Client lowers heartbeat to 1 s; the broker must then send heartbeat
    frames (RabbitMQ sends them every half interval)."""
    c = raw_client()
    c.handshake(heartbeat=1)
    # A generous bound, but far below the 60 s default: heartbeats at the default rate (the
    # negotiation ignored) would not arrive within it.
    deadline = time.monotonic() + 20
    heartbeats = 0
    while time.monotonic() < deadline:
        frm = c.read_frame(timeout=max(0.01, deadline - time.monotonic()), skip_heartbeats=False)
        if frm.type == rawamqp.FRAME_HEARTBEAT:
            assert frm.channel == 0
            heartbeats += 1
            c.send(rawamqp.heartbeat_frame())
            if heartbeats >= 2:
                break
    assert heartbeats >= 2
    c.close()


def test_channel_max_is_enforced(raw_client):
    """channel_max limits how many channels are open, not their numbers (as
    RabbitMQ): with channel_max 2, channels 1 and 3 open, and a third channel
    is a 530 connection error."""
    c = raw_client()
    c.handshake(channel_max=2)
    c.channel_open(1)
    c.channel_open(3)
    c.send_method(2, rawamqp.CHANNEL_OPEN, rawamqp.shortstr(""))
    close = c.expect_connection_close()
    assert close.reply_code == 530
    assert close.reply_text == ("NOT_ALLOWED - number of channels opened (2) "
                                "has reached the negotiated channel_max (2)")


@pytest.mark.parametrize("tune", [
    (2047, 131072 * 2, 0),   # frame_max above the server's maximum
    (2047, 1024, 0),         # frame_max below the 4096 minimum
    (4000, 131072, 0),       # channel_max above the server's maximum
], ids=["frame_max-too-high", "frame_max-too-low", "channel_max-too-high"])
def test_tune_ok_outside_limits_is_refused(raw_client, tune):
    """RabbitMQ refuses such a tune-ok: the connection never opens and the
    socket is closed (RabbitMQ closes it without a close frame)."""
    c = raw_client()
    c.send_protocol_header()
    c.read_start()
    c.send_start_ok()
    c.read_tune()
    c.send_tune_ok(*tune)
    c.send_open("/")
    try:
        frm = c.read_frame(timeout=6)
    except rawamqp.ConnectionClosedByPeer:
        return
    assert frm.class_method == rawamqp.CONNECTION_CLOSE, (
        "connection opened despite tune-ok %r: %r" % (tune, frm))
    assert rawamqp.Close(frm).reply_code in (501, 503, 530)


@pytest.mark.parametrize("header", [
    b"AMQP\x00\x00\x09\x00",
    b"HTTP/1.1",
    b"GET / HTTP/1.1\r\n\r\n",
    b"AMQP\x00\x00\x08\x00",
], ids=["amqp-0-9-0", "http", "http-get", "amqp-0-8-0"])
def test_bad_protocol_header_gets_supported_header_back(raw_client, header):
    c = raw_client()
    c.send(header)
    data = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        chunk = c.recv_raw(timeout=max(0.01, deadline - time.monotonic()))
        if not chunk:
            break
        data += chunk
    else:
        pytest.fail("broker did not close the socket; got %r" % data)
    assert data == b"AMQP\x00\x00\x09\x01"


def test_connection_close_is_acknowledged(raw_client):
    c = raw_client()
    c.handshake()
    c.send_method(0, rawamqp.CONNECTION_CLOSE,
                  b"\x00\xc8" + rawamqp.shortstr("bye") + b"\x00\x00\x00\x00")
    frm = c.read_method(rawamqp.CONNECTION_CLOSE_OK)
    assert frm.channel == 0
    # (RabbitMQ leaves closing the socket to the client after close-ok)


def test_many_channels_on_one_connection(connect):
    conn = connect()
    channels = [conn.channel() for _ in range(20)]
    assert len({ch.channel_number for ch in channels}) == 20
    q = channels[0].queue_declare("", exclusive=True).method.queue
    for i, ch in enumerate(channels):
        ch.basic_publish("", q, str(i).encode())
    assert amqp_helpers.wait_until(
        lambda: amqp_helpers.queue_depth(channels[-1], q) == 20)
    got = amqp_helpers.get_all(channels[-1], q)
    assert sorted(int(b) for b in amqp_helpers.bodies(got)) == list(range(20))
    for ch in channels[::2]:
        ch.close()
    assert all(ch.is_open for ch in channels[1::2])
    assert channels[1].queue_declare(q, passive=True).method.queue == q
