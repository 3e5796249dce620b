"""How received frames are validated, case by case as RabbitMQ 3.10.8 does it.

Every expectation here (reply code, exact reply text, class/method ids, a
connection.close or a bare socket close) was read in RabbitMQ's source
(rabbit_reader.erl, rabbit_command_assembler.erl, rabbit_binary_parser.erl
and the generated rabbit_framing_amqp_0_9_1.erl) and observed on a real
RabbitMQ 3.10.8 with the same raw frames (WARREN_TEST_AMQP_PORT runs this file
against one).  In short:

* a method's arguments must fill its frame exactly: bytes left over, or a
  short string whose length runs past the end, are 501 FRAME_ERROR
  "cannot decode <<bytes>>" with the method's ids;
* the short strings of methods without content must be UTF-8 (as Erlang's
  xmerl_ucs reads it): 501 "Malformed UTF-8 in shortstr";
* a heartbeat carries nothing and comes on channel 0;
* tune-ok may not raise frame_max or channel_max above connection.tune (nor
  set them to 0), and frame_max is at least 4096;
* channel_max limits how many channels are open, not their numbers;
* before the connection is open (start-ok to tune-ok) RabbitMQ answers errors
  by closing the socket without a connection.close (it pauses 3 s first;
  Warren does not, and these tests do not time it).

Reply texts longer than 255 bytes are cut to 252 bytes and "...".
"""

import struct

import pytest

import rawamqp
from rawamqp import (BASIC_ACK, BASIC_CONSUME, BASIC_PUBLISH, BASIC_QOS,
                     BASIC_QOS_OK, CHANNEL_CLOSE, CHANNEL_CLOSE_OK,
                     CHANNEL_OPEN, CONNECTION_CLOSE,
                     CONNECTION_CLOSE_OK, CONNECTION_OPEN, CONNECTION_OPEN_OK,
                     CONNECTION_START_OK, CONNECTION_TUNE, CONNECTION_TUNE_OK,
                     FRAME_BODY, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD,
                     QUEUE_DECLARE, QUEUE_DECLARE_OK, bits,
                     content_header_frame, frame, longstr, method_frame,
                     method_payload, shortstr, table)

EXCHANGE_DECLARE = (40, 10)
QUEUE_BIND = (50, 20)
BASIC_GET = (60, 70)
BASIC_GET_OK = (60, 71)
BASIC_RETURN = (60, 50)

# Generous: only keeps a broken broker from hanging the test.
DEADLINE = 30

QOS_ARGS = struct.pack(">IH", 0, 1) + bits(False)
MALFORMED_UTF8 = "FRAME_ERROR - Malformed UTF-8 in shortstr"


@pytest.fixture(autouse=True)
def _still_serving(broker_still_serves):
    """After each test a fresh pika connection must still work (conftest.broker_still_serves)."""


@pytest.fixture
def opened(raw_client):
    """A raw client with a finished handshake and channel 1 open."""
    c = raw_client()
    c.handshake()
    c.channel_open(1)
    return c


def start_to_tune(c):
    """Protocol header, start, start-ok; returns the offered tune values."""
    c.send_protocol_header()
    c.read_start()
    c.send_start_ok()
    return c.read_tune()


def start_to_open(c):
    """Up to a sent tune-ok with the offered values (state: opening)."""
    c.send_tune_ok(*start_to_tune(c)[:2], 0)


def close_fields(frm):
    """(code, reply text as bytes, (class, method)) of a connection.close or
    channel.close; the text stays bytes, it may quote bytes that are not
    UTF-8."""
    args = rawamqp.Reader(frm.payload[4:])
    code = args.short()
    text = args.take(args.octet())
    return code, text, (args.short(), args.short())


def assert_next_is_close(c, code, text, class_method=(0, 0)):
    """The very next frame is connection.close with exactly these values;
    after our close-ok the socket closes."""
    frm = c.read_frame(timeout=DEADLINE)
    assert frm.type == FRAME_METHOD and frm.channel == 0 and \
        frm.class_method == CONNECTION_CLOSE, frm
    if isinstance(text, str):
        text = text.encode()
    assert close_fields(frm) == (code, text, class_method)
    c.send_method(0, CONNECTION_CLOSE_OK)
    assert c.wait_for_eof(DEADLINE) is not None, "socket not closed"


def assert_dropped_without_close(c):
    """No frame at all, then EOF: how RabbitMQ ends a connection that fails
    before connection.open."""
    try:
        frm = c.read_frame(timeout=DEADLINE)
    except rawamqp.ConnectionClosedByPeer:
        return
    pytest.fail("expected the socket to close without a frame, got %r" % frm)


def assert_still_open(c, channel=1):
    """A basic.qos round trip on the channel: the connection goes on."""
    c.send_method(channel, BASIC_QOS, QOS_ARGS)
    c.read_method(BASIC_QOS_OK, timeout=DEADLINE)


def queue_declare_args(name_bytes, passive=False, extra=b""):
    """queue.declare arguments with a raw (possibly invalid) name; exclusive
    so the queue goes with the connection."""
    return (struct.pack(">H", 0) + struct.pack(">B", len(name_bytes))
            + name_bytes + bits(passive, False, True, False, False)
            + table({}) + extra)


def publish_args(exchange=b"", routing_key=b"nowhere", mandatory=False):
    return (struct.pack(">H", 0) + struct.pack(">B", len(exchange)) + exchange
            + struct.pack(">B", len(routing_key)) + routing_key
            + bits(mandatory, False))


# ---------------------------------------------------------------------------
# 1. Bytes left over after a method's arguments


@pytest.mark.parametrize("class_method,args,text", [
    (BASIC_QOS, QOS_ARGS + b"x",
     "cannot decode <<0,0,0,0,0,1,0,120>>"),
    (BASIC_PUBLISH, publish_args(routing_key=b"q") + b"zz",
     "cannot decode <<0,0,0,1,113,0,122,122>>"),
    (BASIC_ACK, struct.pack(">Q", 0) + bits(False) + b"z",
     "cannot decode <<0,0,0,0,0,0,0,0,0,122>>"),
    (CHANNEL_CLOSE, struct.pack(">H", 200) + shortstr("ok")
     + struct.pack(">HH", 0, 0) + b"z",
     "cannot decode <<0,200,2,111,107,0,0,0,0,122>>"),
], ids=["basic.qos", "basic.publish", "basic.ack", "channel.close"])
def test_trailing_bytes_after_method_arguments(opened, class_method, args,
                                               text):
    opened.send(method_frame(1, class_method, args))
    assert_next_is_close(opened, 501, "FRAME_ERROR - " + text, class_method)


def test_same_methods_without_trailing_bytes_are_accepted(opened):
    """Positive control for the test above: the frames minus the extra
    bytes."""
    assert_still_open(opened)
    opened.send(method_frame(1, BASIC_PUBLISH, publish_args(routing_key=b"q")))
    opened.send(content_header_frame(1, 0))
    opened.send(method_frame(1, CHANNEL_CLOSE, struct.pack(">H", 200)
                             + shortstr("ok") + struct.pack(">HH", 0, 0)))
    opened.read_method(CHANNEL_CLOSE_OK, timeout=DEADLINE)


def test_trailing_bytes_in_channel_open(raw_client):
    c = raw_client()
    c.handshake()
    c.send(method_frame(1, CHANNEL_OPEN, shortstr("") + b"z"))
    assert_next_is_close(c, 501, "FRAME_ERROR - cannot decode <<0,122>>",
                         CHANNEL_OPEN)


def test_long_cannot_decode_text_is_cut_to_255_bytes(opened):
    opened.send(method_frame(1, BASIC_QOS, QOS_ARGS + b"y" * 300))
    frm = opened.read_frame(timeout=DEADLINE)
    assert frm.class_method == CONNECTION_CLOSE, frm
    code, text, ids = close_fields(frm)
    assert (code, ids) == (501, BASIC_QOS)
    expected = ("FRAME_ERROR - cannot decode <<0,0,0,0,0,1,0,"
                + "121," * 300)[:252] + "..."
    assert text == expected.encode()
    assert len(text) == 255


def test_trailing_bytes_on_a_channel_being_closed(opened, uname):
    """RabbitMQ decodes every method as it arrives, also on a channel that
    waits for the client's close-ok."""
    opened.send(method_frame(1, QUEUE_DECLARE, queue_declare_args(
        uname("missing").encode(), passive=True)))
    frm = opened.read_frame(timeout=DEADLINE)
    assert frm.class_method == CHANNEL_CLOSE and close_fields(frm)[0] == 404
    opened.send(method_frame(1, BASIC_QOS, QOS_ARGS + b"z"))
    assert_next_is_close(opened, 501,
                         "FRAME_ERROR - cannot decode <<0,0,0,0,0,1,0,122>>",
                         BASIC_QOS)


def test_trailing_bytes_in_connection_close_are_internal_error(raw_client):
    """RabbitMQ's reader does not catch its decoder's error for connection
    methods: a bare 541 with no text after the name."""
    c = raw_client()
    c.handshake()
    c.send(method_frame(0, CONNECTION_CLOSE, struct.pack(">H", 200)
                        + shortstr("bye") + struct.pack(">HH", 0, 0) + b"z"))
    assert_next_is_close(c, 541, "INTERNAL_ERROR")


@pytest.mark.parametrize("stage", ["start-ok", "tune-ok", "connection.open"])
def test_trailing_bytes_during_the_handshake_drop_the_socket(raw_client,
                                                             stage):
    c = raw_client()
    c.send_protocol_header()
    c.read_start()
    start_ok = (table({"product": "warren-tests"}) + shortstr("PLAIN")
                + longstr(b"\x00guest\x00guest") + shortstr("en_US"))
    if stage == "start-ok":
        c.send_method(0, CONNECTION_START_OK, start_ok + b"z")
    else:
        c.send_method(0, CONNECTION_START_OK, start_ok)
        channel_max, frame_max, _ = c.read_tune()
        tune_ok = struct.pack(">HIH", channel_max, frame_max, 0)
        if stage == "tune-ok":
            c.send_method(0, CONNECTION_TUNE_OK, tune_ok + b"z")
            c.send_open()
        else:
            c.send_method(0, CONNECTION_TUNE_OK, tune_ok)
            c.send_method(0, CONNECTION_OPEN, shortstr("/") + shortstr("")
                          + bits(False) + b"z")
    assert_dropped_without_close(c)


# ---------------------------------------------------------------------------
# 2. Heartbeat frames


@pytest.mark.parametrize("channel", [0, 1, 7])
@pytest.mark.parametrize("payload,shown", [
    (b"abc", '<<"abc">>'),
    (b"\x00\x01", "<<0,1>>"),
    (b"a\tb\"", '<<"a\\tb\\"">>'),
], ids=["printable", "binary", "escaped"])
def test_heartbeat_with_payload_is_frame_error(opened, channel, payload,
                                               shown):
    """On any channel: RabbitMQ cannot read the frame before it looks at the
    channel.  The bytes are shown as Erlang's ~p prints them."""
    opened.send(frame(FRAME_HEARTBEAT, channel, payload))
    assert_next_is_close(
        opened, 501,
        "FRAME_ERROR - type 8, all octets = %s: unknown_frame" % shown)


def test_heartbeat_payload_over_16_bytes_shows_the_first_16(opened):
    opened.send(frame(FRAME_HEARTBEAT, 0, b"0123456789abcdefXYZ"))
    assert_next_is_close(
        opened, 501, 'FRAME_ERROR - type 8, first 16 octets = '
        '<<"0123456789abcdef">>: unknown_frame')


@pytest.mark.parametrize("channel", [1, 5, 65535],
                         ids=["open", "never-opened", "highest"])
def test_empty_heartbeat_on_a_channel_is_unexpected_frame(opened, channel):
    opened.send(frame(FRAME_HEARTBEAT, channel, b""))
    assert_next_is_close(opened, 505,
                         "UNEXPECTED_FRAME - type 8, all octets = <<>>")


def test_empty_heartbeat_on_channel_zero_is_fine(opened):
    """Positive control: the heartbeat the spec defines."""
    opened.send(frame(FRAME_HEARTBEAT, 0, b""))
    assert_still_open(opened)


@pytest.mark.parametrize("channel,payload", [(0, b"abc"), (1, b"")],
                         ids=["payload", "channel-1"])
def test_bad_heartbeat_before_start_ok_drops_the_socket(raw_client, channel,
                                                        payload):
    c = raw_client()
    c.send_protocol_header()
    c.read_start()
    c.send(frame(FRAME_HEARTBEAT, channel, payload))
    assert_dropped_without_close(c)


def test_bad_heartbeat_after_tune_ok_is_answered(raw_client):
    """From tune-ok on (RabbitMQ's "opening" state) errors get a
    connection.close."""
    c = raw_client()
    start_to_open(c)
    c.send(frame(FRAME_HEARTBEAT, 0, b"ab"))
    assert_next_is_close(
        c, 501, 'FRAME_ERROR - type 8, all octets = <<"ab">>: unknown_frame')


# ---------------------------------------------------------------------------
# 3. Short strings: lengths past the frame end, and UTF-8


def test_shortstr_length_past_frame_end_is_frame_error(opened):
    """A short string cannot be longer than 255 bytes on the wire (its length
    is one octet), but the octet may promise more bytes than the frame has."""
    opened.send(method_frame(1, QUEUE_DECLARE,
                             struct.pack(">H", 0) + b"\xff" + b"abc"))
    assert_next_is_close(opened, 501,
                         "FRAME_ERROR - cannot decode <<0,0,255,97,98,99>>",
                         QUEUE_DECLARE)


def test_shortstr_length_past_frame_end_in_publish(opened):
    opened.send(method_frame(1, BASIC_PUBLISH,
                             struct.pack(">H", 0) + b"\x00" + b"\xc8abc"))
    assert_next_is_close(opened, 501,
                         "FRAME_ERROR - cannot decode <<0,0,0,200,97,98,99>>",
                         BASIC_PUBLISH)


def test_shortstr_length_past_frame_end_in_connection_open(raw_client):
    c = raw_client()
    start_to_open(c)
    c.send_method(0, CONNECTION_OPEN, b"\xf0/")
    assert_dropped_without_close(c)


def test_255_byte_queue_name_is_accepted(opened, uname):
    """Positive control: the longest short string."""
    name = uname("long").encode().ljust(255, b"q")
    opened.send(method_frame(1, QUEUE_DECLARE, queue_declare_args(name)))
    frm = opened.read_method(QUEUE_DECLARE_OK, timeout=DEADLINE)
    assert frm.args.take(frm.args.octet()) == name


INVALID_UTF8 = [b"bad\xff\xfe", b"\xc0\xaf", b"ab\xe2\x82", b"\x80",
                b"\xf8\x88\x80\x80\x80"]
INVALID_IDS = ["ff-fe", "overlong", "truncated", "lone-continuation",
               "five-bytes"]


@pytest.mark.parametrize("name", INVALID_UTF8, ids=INVALID_IDS)
def test_queue_name_not_utf8_is_frame_error(opened, name):
    """RabbitMQ names no method in this close (ids 0/0)."""
    opened.send(method_frame(1, QUEUE_DECLARE, queue_declare_args(name)))
    assert_next_is_close(opened, 501, MALFORMED_UTF8)


@pytest.mark.parametrize("suffix", [
    "-\u00e9-\u20ac-\U0001F600".encode(),
    b"-\xed\xa0\x80",                # a surrogate, U+D800
    b"-\xf4\x90\x80\x80",            # above U+10FFFF
    b"-\xef\xbf\xbe",                # U+FFFE
    b"-\x00-",
], ids=["utf-8", "surrogate", "above-10ffff", "u+fffe", "nul"])
def test_queue_names_rabbitmq_accepts(opened, uname, suffix):
    """Erlang's xmerl_ucs (which RabbitMQ asks) lets these through."""
    name = uname("utf8").encode() + suffix
    opened.send(method_frame(1, QUEUE_DECLARE, queue_declare_args(name)))
    frm = opened.read_method(QUEUE_DECLARE_OK, timeout=DEADLINE)
    assert frm.args.take(frm.args.octet()) == name


def test_exchange_name_not_utf8_is_frame_error(opened):
    opened.send(method_frame(1, EXCHANGE_DECLARE, struct.pack(">H", 0)
                             + b"\x03x\xffy" + shortstr("direct")
                             + bits(False, False, True, False, False)
                             + table({})))
    assert_next_is_close(opened, 501, MALFORMED_UTF8)


def test_binding_key_not_utf8_is_frame_error(opened, uname):
    queue = uname("bind").encode()
    opened.send(method_frame(1, QUEUE_DECLARE, queue_declare_args(queue)))
    opened.read_method(QUEUE_DECLARE_OK, timeout=DEADLINE)
    opened.send(method_frame(1, QUEUE_BIND, struct.pack(">H", 0)
                             + shortstr(queue) + shortstr("amq.direct")
                             + b"\x01\xff" + bits(False) + table({})))
    assert_next_is_close(opened, 501, MALFORMED_UTF8)


def test_consumer_tag_not_utf8_is_frame_error(opened, uname):
    queue = uname("ctag").encode()
    opened.send(method_frame(1, QUEUE_DECLARE, queue_declare_args(queue)))
    opened.read_method(QUEUE_DECLARE_OK, timeout=DEADLINE)
    opened.send(method_frame(1, BASIC_CONSUME, struct.pack(">H", 0)
                             + shortstr(queue) + b"\x02\xff\xff"
                             + bits(False, True, False, False) + table({})))
    assert_next_is_close(opened, 501, MALFORMED_UTF8)


def test_channel_close_reply_text_not_utf8_is_frame_error(opened):
    opened.send(method_frame(1, CHANNEL_CLOSE, struct.pack(">H", 200)
                             + b"\x02\xff\xff" + struct.pack(">HH", 0, 0)))
    assert_next_is_close(opened, 501, MALFORMED_UTF8)


def test_reserved_shortstr_of_channel_open_is_checked_too(raw_client):
    c = raw_client()
    c.handshake()
    c.send(method_frame(2, CHANNEL_OPEN, b"\x01\xff"))
    assert_next_is_close(c, 501, MALFORMED_UTF8)


def test_bad_utf8_with_trailing_bytes_is_cannot_decode(opened):
    """The binary pattern fails before any string is checked."""
    opened.send(method_frame(1, QUEUE_DECLARE,
                             queue_declare_args(b"\xff", extra=b"zz")))
    assert_next_is_close(
        opened, 501,
        "FRAME_ERROR - cannot decode <<0,0,1,255,4,0,0,0,0,122,122>>",
        QUEUE_DECLARE)


def test_vhost_not_utf8_is_frame_error_naming_connection_open(raw_client):
    """On channel 0 RabbitMQ names the method."""
    c = raw_client()
    start_to_open(c)
    c.send_method(0, CONNECTION_OPEN, b"\x02\xff/" + shortstr("")
                  + bits(False))
    assert_next_is_close(c, 501, MALFORMED_UTF8, CONNECTION_OPEN)


def test_connection_close_text_not_utf8_is_frame_error(raw_client):
    c = raw_client()
    c.handshake()
    c.send(method_frame(0, CONNECTION_CLOSE, struct.pack(">H", 200)
                        + b"\x02\xff\xff" + struct.pack(">HH", 0, 0)))
    assert_next_is_close(c, 501, MALFORMED_UTF8, CONNECTION_CLOSE)


def test_publish_is_not_checked_for_utf8(opened):
    """RabbitMQ skips the check for methods with content: a routing key
    that is not UTF-8 is routed (here: returned unroutable, echoed as is),
    and an exchange name that is not UTF-8 is looked up (and not found)."""
    opened.send(method_frame(1, BASIC_PUBLISH,
                             publish_args(routing_key=b"x\xffy",
                                          mandatory=True)))
    opened.send(content_header_frame(1, 1))
    opened.send(frame(FRAME_BODY, 1, b"a"))
    ret = opened.read_method(BASIC_RETURN, timeout=DEADLINE)
    assert ret.args.short() == 312
    ret.args.take(ret.args.octet())            # reply text
    assert ret.args.take(ret.args.octet()) == b""          # exchange
    assert ret.args.take(ret.args.octet()) == b"x\xffy"    # routing key

    opened.send(method_frame(1, BASIC_PUBLISH,
                             publish_args(exchange=b"x\xffy")))
    opened.send(content_header_frame(1, 1))
    opened.send(frame(FRAME_BODY, 1, b"a"))
    frm = opened.read_frame(timeout=DEADLINE)
    while frm.type != FRAME_METHOD:     # the returned message's content
        frm = opened.read_frame(timeout=DEADLINE)
    assert frm.class_method == CHANNEL_CLOSE and frm.channel == 1, frm
    assert close_fields(frm) == (
        404, b"NOT_FOUND - no exchange 'x\xffy' in vhost '/'", BASIC_PUBLISH)


# ---------------------------------------------------------------------------
# 4. tune-ok against what connection.tune offered


@pytest.mark.parametrize("tune", [
    ("frame_max", "above"), ("frame_max", 4095), ("frame_max", 1024),
    ("frame_max", 0), ("channel_max", "above"), ("channel_max", 0),
], ids=["frame_max-above-offer", "frame_max-4095", "frame_max-1024",
        "frame_max-0", "channel_max-above-offer", "channel_max-0"])
def test_tune_ok_outside_the_offer_drops_the_socket(raw_client, tune):
    """RabbitMQ refuses it with 530 NOT_ALLOWED internally, but at this
    point of the handshake it sends no connection.close: the connection never
    opens and the socket closes."""
    c = raw_client()
    channel_max, frame_max, _ = start_to_tune(c)
    field, value = tune
    if field == "frame_max":
        frame_max = frame_max * 2 if value == "above" else value
    else:
        channel_max = channel_max + 1 if value == "above" else value
    c.send_tune_ok(channel_max, frame_max, 0)
    c.send_open()
    assert_dropped_without_close(c)


@pytest.mark.parametrize("channel_max,frame_max,heartbeat", [
    (None, 4096, 0),        # the smallest frame_max
    (1, None, 0),           # the smallest channel_max
    (None, None, 600),      # a heartbeat above the offer: the client's choice
    (None, None, 65535),
], ids=["frame_max-4096", "channel_max-1", "heartbeat-600",
        "heartbeat-65535"])
def test_tune_ok_inside_the_offer_opens(raw_client, channel_max, frame_max,
                                        heartbeat):
    c = raw_client()
    offered_channels, offered_frame_max, _ = start_to_tune(c)
    c.send_tune_ok(channel_max or offered_channels,
                   frame_max or offered_frame_max, heartbeat)
    c.send_open()
    c.read_method(CONNECTION_OPEN_OK, timeout=DEADLINE)
    c.channel_open(1)


# ---------------------------------------------------------------------------
# 5. channel_max: how many channels, not which numbers


def test_channel_numbers_above_channel_max_can_be_opened(raw_client):
    c = raw_client()
    c.handshake(channel_max=2)
    c.channel_open(3)
    c.channel_open(65535)
    assert_still_open(c, channel=65535)
    c.send_method(1, CHANNEL_OPEN, shortstr(""))
    assert_next_is_close(
        c, 530, "NOT_ALLOWED - number of channels opened (2) has reached "
        "the negotiated channel_max (2)")


def test_channel_65535_with_the_default_channel_max(raw_client, uname):
    """As aiormq's test suite does."""
    c = raw_client()
    c.handshake()
    c.channel_open(65535)
    c.send_method(65535, QUEUE_DECLARE,
                  queue_declare_args(uname("ch65535").encode()))
    assert c.read_method(QUEUE_DECLARE_OK, timeout=DEADLINE).channel == 65535


def test_a_closed_channel_frees_its_place(raw_client):
    c = raw_client()
    c.handshake(channel_max=2)
    c.channel_open(7)
    c.channel_open(9)
    c.send_method(7, CHANNEL_CLOSE, struct.pack(">H", 200) + shortstr("")
                  + struct.pack(">HH", 0, 0))
    c.read_method(CHANNEL_CLOSE_OK, timeout=DEADLINE)
    c.channel_open(11)
    # Any frame for a channel that is not open counts as opening one.
    c.send_method(12, BASIC_QOS, QOS_ARGS)
    assert_next_is_close(
        c, 530, "NOT_ALLOWED - number of channels opened (2) has reached "
        "the negotiated channel_max (2)")


def test_a_channel_awaiting_close_ok_still_counts(raw_client, uname):
    c = raw_client()
    c.handshake(channel_max=1)
    c.channel_open(1)
    c.send_method(1, QUEUE_DECLARE,
                  queue_declare_args(uname("missing").encode(), passive=True))
    frm = c.read_frame(timeout=DEADLINE)
    assert frm.class_method == CHANNEL_CLOSE and close_fields(frm)[0] == 404
    c.send_method(2, CHANNEL_OPEN, shortstr(""))
    assert_next_is_close(
        c, 530, "NOT_ALLOWED - number of channels opened (1) has reached "
        "the negotiated channel_max (1)")


def test_after_close_ok_a_new_channel_fits_again(raw_client, uname):
    """Positive control for the test above."""
    c = raw_client()
    c.handshake(channel_max=1)
    c.channel_open(1)
    c.send_method(1, QUEUE_DECLARE,
                  queue_declare_args(uname("missing").encode(), passive=True))
    frm = c.read_frame(timeout=DEADLINE)
    assert frm.class_method == CHANNEL_CLOSE and close_fields(frm)[0] == 404
    c.send_method(1, CHANNEL_CLOSE_OK)
    c.channel_open(2)
    assert_still_open(c, channel=2)


def test_content_frame_for_a_channel_not_open(raw_client):
    c = raw_client()
    c.handshake()
    c.send(content_header_frame(2, 5))
    assert_next_is_close(c, 505, "UNEXPECTED_FRAME - expected method frame, "
                         "got non method frame instead")


# ---------------------------------------------------------------------------
# Frame-level checks that come with these (RabbitMQ's analyze_frame and
# handle_input)


def test_method_frame_shorter_than_its_ids(opened):
    opened.send(frame(FRAME_METHOD, 1, b"\x00\x3c"))
    assert_next_is_close(
        opened, 501, "FRAME_ERROR - type 1, all octets = <<0,60>>: "
        "unknown_frame")


def test_content_header_shorter_than_12_bytes(opened):
    opened.send(method_frame(1, BASIC_PUBLISH, publish_args()))
    opened.send(frame(FRAME_HEADER, 1, b"\x00\x3c\x00\x00\x00\x00"))
    assert_next_is_close(
        opened, 501, "FRAME_ERROR - type 2, all octets = <<0,60,0,0,0,0>>: "
        "unknown_frame")


@pytest.mark.parametrize("data,text", [
    (content_header_frame(0, 5), "type 2, all octets = "
     "<<0,60,0,0,0,0,0,0,0,0,0,5,0,0>>"),
    (frame(FRAME_BODY, 0, b"hello"), 'type 3, all octets = <<"hello">>'),
], ids=["header", "body"])
def test_content_on_channel_zero(opened, data, text):
    opened.send(data)
    assert_next_is_close(opened, 505, "UNEXPECTED_FRAME - " + text)


def test_unknown_frame_type_text(opened):
    opened.send(frame(4, 1, b"abc"))
    assert_next_is_close(
        opened, 501,
        'FRAME_ERROR - type 4, all octets = <<"abc">>: unknown_frame')


def test_bad_frame_end_text(opened):
    opened.send(frame(FRAME_METHOD, 1, method_payload(BASIC_QOS, QOS_ARGS),
                      frame_end=0))
    frm = opened.read_frame(timeout=DEADLINE)
    assert close_fields(frm) == (
        501, b"FRAME_ERROR - type 1, all octets = <<0,60,0,10,0,0,0,0,0,1,0>>"
        b": {invalid_frame_end_marker,0}", (0, 0))
    # RabbitMQ reads nothing more (not even the close-ok) and closes.
    assert opened.wait_for_eof(DEADLINE) is not None


def test_payload_may_be_as_large_as_frame_max(raw_client, uname):
    """RabbitMQ forgives the 8 bytes of frame overhead: with frame_max 4096 a
    4096-byte body frame arrives whole; 4097 bytes are too many."""
    c = raw_client()
    c.handshake(frame_max=4096)
    c.channel_open(1)
    queue = uname("fudge").encode()
    c.send_method(1, QUEUE_DECLARE, queue_declare_args(queue))
    c.read_method(QUEUE_DECLARE_OK, timeout=DEADLINE)
    c.send(method_frame(1, BASIC_PUBLISH, publish_args(routing_key=queue)))
    c.send(content_header_frame(1, 4096))
    c.send(frame(FRAME_BODY, 1, b"a" * 4096))
    c.send_method(1, BASIC_GET, struct.pack(">H", 0) + shortstr(queue)
                  + bits(True))
    c.read_method(BASIC_GET_OK, timeout=DEADLINE)
    c.read_frame(timeout=DEADLINE)  # content header
    body = b""
    while len(body) < 4096:
        body += c.read_frame(timeout=DEADLINE).payload
    assert body == b"a" * 4096

    c.send(method_frame(1, BASIC_PUBLISH, publish_args(routing_key=queue)))
    c.send(content_header_frame(1, 4097))
    c.send(frame(FRAME_BODY, 1, b"a" * 4097))
    frm = c.read_frame(timeout=DEADLINE)
    assert close_fields(frm) == (
        501, b"FRAME_ERROR - type 3, all octets = <<>>: "
        b"{frame_too_large,4097,4088}", (0, 0))
    assert c.wait_for_eof(DEADLINE) is not None


@pytest.mark.parametrize("size,accepted", [(4096, True), (4097, False)])
def test_frames_before_tune_ok_are_at_most_4096_bytes(raw_client, size,
                                                      accepted):
    """RabbitMQ's initial_frame_max until tune-ok sets the real one."""
    c = raw_client()
    c.send_protocol_header()
    c.read_start()
    fixed = method_payload(CONNECTION_START_OK, table({"product": "x",
                                                       "pad": ""})
                           + shortstr("PLAIN") + longstr(b"\x00guest\x00guest")
                           + shortstr("en_US"))
    c.send_start_ok(client_properties={"product": "x",
                                       "pad": "p" * (size - len(fixed))})
    if accepted:
        c.read_method(CONNECTION_TUNE, timeout=DEADLINE)
    else:
        assert_dropped_without_close(c)


def test_channel_frame_before_connection_open(raw_client):
    """After tune-ok: 505 with a connection.close; before start-ok: dropped
    without one."""
    c = raw_client()
    start_to_open(c)
    c.send(method_frame(1, CHANNEL_OPEN, shortstr("")))
    assert_next_is_close(c, 505, "UNEXPECTED_FRAME - type 1, all octets = "
                         "<<0,20,0,10,0>>")
    early = raw_client()
    early.send_protocol_header()
    early.read_start()
    early.send(method_frame(1, CHANNEL_OPEN, shortstr("")))
    assert_dropped_without_close(early)
