"""Malformed or out-of-order frames sent by a hand-written client.

Each test opens a connection with rawamqp.RawClient, misbehaves, and checks
the connection.close the broker answers with (reply code, the RabbitMQ style
"CODE_NAME - text" reply text, class/method ids).  Afterwards a normal pika
connection must still work: the broker keeps serving other clients.
"""

import struct

import pytest

import amqp_helpers
import rawamqp
from rawamqp import (BASIC_PUBLISH, BASIC_QOS, CHANNEL_OPEN, bits,
                     body_frame, content_header_frame, frame, method_frame,
                     method_payload, shortstr)


@pytest.fixture
def opened(raw_client):
    """A raw client with a finished handshake and channel 1 open."""
    c = raw_client()
    c.handshake()
    c.channel_open(1)
    return c


@pytest.fixture(autouse=True)
def _still_serving(broker_still_serves):
    """After each test a fresh pika connection must still work (conftest.broker_still_serves)."""


def publish_method(channel=1, exchange="", routing_key="nowhere"):
    return method_frame(channel, BASIC_PUBLISH,
                        struct.pack(">H", 0) + shortstr(exchange)
                        + shortstr(routing_key) + bits(False, False))


def qos_method(channel=1):
    return method_frame(channel, BASIC_QOS,
                        struct.pack(">IH", 0, 1) + bits(False))


def assert_closed_with(client, code, name, class_method=None):
    close = client.expect_connection_close()
    assert close.channel == 0
    assert close.reply_code == code, close
    assert close.reply_text.startswith(name + " - "), close
    if class_method is not None:
        assert (close.class_id, close.method_id) == class_method, close
    # the broker then closes the socket (RabbitMQ may take ~3 s when it had
    # stopped parsing the stream)
    assert client.wait_for_eof(6) is not None, "socket not closed"
    return close


def test_method_frame_larger_than_frame_max_is_frame_error(opened):
    payload = method_payload(BASIC_QOS) + b"x" * 140000  # > 131072
    opened.send(frame(rawamqp.FRAME_METHOD, 1, payload))
    assert_closed_with(opened, 501, "FRAME_ERROR")


def test_body_frame_larger_than_frame_max_is_frame_error(opened):
    opened.send(publish_method())
    opened.send(content_header_frame(1, 200000))
    opened.send(body_frame(1, b"y" * 140000))
    assert_closed_with(opened, 501, "FRAME_ERROR")


def test_frame_larger_than_client_negotiated_frame_max(raw_client):
    """frame_max 4096 negotiated by the client binds the client too."""
    c = raw_client()
    c.handshake(frame_max=4096)
    c.channel_open(1)
    c.send(publish_method())
    c.send(content_header_frame(1, 10000))
    c.send(body_frame(1, b"z" * 10000))
    assert_closed_with(c, 501, "FRAME_ERROR")


@pytest.mark.parametrize("frame_type", [4, 5, 9, 200])
def test_unknown_frame_type_is_frame_error(opened, frame_type):
    opened.send(frame(frame_type, 1, b"abc"))
    assert_closed_with(opened, 501, "FRAME_ERROR")


def test_bad_frame_end_octet_is_frame_error(opened):
    payload = method_payload(BASIC_QOS, struct.pack(">IH", 0, 1)
                             + bits(False))
    opened.send(frame(rawamqp.FRAME_METHOD, 1, payload, frame_end=0x00))
    assert_closed_with(opened, 501, "FRAME_ERROR")


def test_truncated_method_arguments_are_frame_error(opened):
    opened.send(frame(rawamqp.FRAME_METHOD, 1,
                      method_payload(BASIC_QOS, b"\x00")))
    assert_closed_with(opened, 501, "FRAME_ERROR", BASIC_QOS)


def test_method_on_never_opened_channel_is_channel_error(raw_client):
    c = raw_client()
    c.handshake()
    c.send(qos_method(channel=3))
    close = assert_closed_with(c, 504, "CHANNEL_ERROR", BASIC_QOS)
    assert "channel.open" in close.reply_text


def test_channel_method_on_channel_zero_is_channel_error(raw_client):
    c = raw_client()
    c.handshake()
    c.send(qos_method(channel=0))
    assert_closed_with(c, 504, "CHANNEL_ERROR", BASIC_QOS)


def test_second_channel_open_is_channel_error(opened):
    opened.send(method_frame(1, CHANNEL_OPEN, shortstr("")))
    close = assert_closed_with(opened, 504, "CHANNEL_ERROR", CHANNEL_OPEN)
    assert "channel.open" in close.reply_text


def test_content_header_without_publish_is_unexpected_frame(opened):
    opened.send(content_header_frame(1, 5))
    assert_closed_with(opened, 505, "UNEXPECTED_FRAME")


def test_body_frame_without_publish_is_unexpected_frame(opened):
    opened.send(body_frame(1, b"hello"))
    assert_closed_with(opened, 505, "UNEXPECTED_FRAME")


def test_body_frame_when_header_expected_is_unexpected_frame(opened):
    opened.send(publish_method())
    opened.send(body_frame(1, b"hello"))
    assert_closed_with(opened, 505, "UNEXPECTED_FRAME", BASIC_PUBLISH)


def test_method_frame_when_body_expected_is_unexpected_frame(opened):
    opened.send(publish_method())
    opened.send(content_header_frame(1, 5))
    opened.send(qos_method())
    assert_closed_with(opened, 505, "UNEXPECTED_FRAME", BASIC_PUBLISH)


def test_content_header_for_wrong_class_is_unexpected_frame(opened):
    opened.send(publish_method())
    opened.send(content_header_frame(1, 5, class_id=50))
    assert_closed_with(opened, 505, "UNEXPECTED_FRAME", BASIC_PUBLISH)


def test_heartbeat_on_nonzero_channel_is_unexpected_frame(opened):
    opened.send(frame(rawamqp.FRAME_HEARTBEAT, 1, b""))
    assert_closed_with(opened, 505, "UNEXPECTED_FRAME")


def test_connection_method_on_channel_is_command_invalid(opened):
    opened.send(method_frame(1, rawamqp.CONNECTION_OPEN,
                             shortstr("/") + shortstr("") + bits(False)))
    assert_closed_with(opened, 503, "COMMAND_INVALID",
                       rawamqp.CONNECTION_OPEN)


@pytest.mark.parametrize("channel,class_method", [
    (1, (99, 10)),   # unknown class
    (1, (60, 99)),   # unknown method of a known class
    (0, (10, 99)),   # unknown connection method
], ids=["unknown-class", "unknown-basic-method", "unknown-connection-method"])
def test_unknown_class_or_method_terminates_connection(opened, channel,
                                                       class_method):
    """RabbitMQ 3.10 answers an unknown class/method id by dropping the TCP
    connection without sending connection.close (its reader process exits
    with unknown_method_id).  A connection.close with 540 NOT_IMPLEMENTED or
    503 COMMAND_INVALID before the socket closes is accepted as well."""
    opened.send(method_frame(channel, class_method))
    try:
        frm = opened.read_frame(timeout=5)
    except rawamqp.ConnectionClosedByPeer:
        return
    assert frm.type == rawamqp.FRAME_METHOD and \
        frm.class_method == rawamqp.CONNECTION_CLOSE, frm
    close = rawamqp.Close(frm)
    assert close.reply_code in (540, 503), close
    opened.send_method(0, rawamqp.CONNECTION_CLOSE_OK)
    assert opened.wait_for_eof(6) is not None


def test_publish_on_good_channel_after_errors_elsewhere(opened, connect):
    """Sanity check of the raw client itself: a well-formed publish split
    into several body frames arrives intact."""
    conn = connect()
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    body = bytes(range(256)) * 1200  # 307200 bytes, > 2 frames
    opened.basic_publish(1, "", q, body)
    assert amqp_helpers.wait_until(lambda: amqp_helpers.queue_depth(ch, q))
    method, _, got = ch.basic_get(q, auto_ack=True)
    assert got == body
