"""MQTT 5.0 as RabbitMQ 3.13's rabbitmq_mqtt plugin serves it, driven by paho-mqtt (MQTTv5),
mosquitto_pub/sub -V mqttv5 and raw v5 packets (mqtt_helpers.RawClient5: exact reason codes,
CONNACK properties, topic aliases), with pika on the AMQP side of every interop case.

What is checked: CONNACK properties and v5 refusal codes, session expiry (the queue's x-expires,
clean start, DISCONNECT with Session Expiry Interval 0), PUBLISH properties to and from AMQP
0-9-1 (content_type, correlation_id or x-correlation-id, x-reply-to-topic, headers, expiration),
message expiry, topic aliases both ways, subscription identifiers and options (No Local,
Retain As Published, Retain Handling), SUBACK/UNSUBACK/PUBACK reason codes, server-sent
DISCONNECTs, will delay, Receive Maximum, Maximum Packet Size, malformed properties, the
connection listings, mosquitto's v5 clients and 3.1.1/5.0 interop."""

import struct
import subprocess
import time
import urllib.parse

import pika
import pika.exceptions
import pytest

import amqp_helpers
import mqtt_helpers as mh
from mqtt_helpers import Client, Client5, Properties, PacketTypes, RawClient5, SubscribeOptions
from test_warrenctl import ctl

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def uname():
    """Unique names without dots (a "." in an MQTT topic is a level separator on the AMQP
    side)."""
    return lambda prefix="x": amqp_helpers.unique(prefix).replace(".", "-")


@pytest.fixture
def port(broker):
    return mh.mqtt_port(broker)


def _factory(make_one):
    made = []

    def make(**kwargs):
        c = make_one(**kwargs)
        made.append(c)
        return c

    return made, make


def _disconnect_all(made):
    for c in made:
        try:
            c.disconnect()
        except Exception:
            pass


@pytest.fixture
def clients5(port):
    """``clients5(**Client5 kwargs)`` -> an MQTT 5.0 paho client (disconnected at teardown)."""
    made, make = _factory(lambda **kw: Client5(port, **kw))
    yield make
    _disconnect_all(made)


@pytest.fixture
def clients(port):
    """``clients(**Client kwargs)`` -> an MQTT 3.1.1 paho client."""
    made, make = _factory(lambda **kw: Client(port, **kw))
    yield make
    _disconnect_all(made)


@pytest.fixture
def raws(port):
    """``raws()`` -> a RawClient5 socket to the MQTT port (closed at teardown)."""
    made, make = _factory(lambda timeout=5.0: RawClient5(port, timeout=timeout))
    yield make
    for r in made:
        r.close()


def connected(make, **kwargs):
    c = make(**kwargs)
    rc = c.connect()
    assert rc == 0, "CONNACK reason 0x%02x" % rc if isinstance(rc, int) else rc
    return c


def raw_connected(raws, **kwargs):
    raw = raws()
    sp, rc, props = raw.connect5(**kwargs)
    assert rc == 0, "CONNACK reason 0x%02x %r" % (rc, props)
    return raw, sp, props


def queue_exists(conn, name):
    """A passive declare on a fresh channel (an exclusive queue of another connection counts as
    existing: 405 RESOURCE_LOCKED)."""
    ch = conn.channel()
    try:
        ch.queue_declare(name, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 405:
            return True
        assert exc.reply_code == 404, exc
        return False
    ch.close()
    return True


def management_queue(broker, name, vhost="/"):
    from test_management_api import call
    status, body, _ = call(broker, "GET", "/api/queues/%s/%s" % (
        urllib.parse.quote(vhost, safe=""), urllib.parse.quote(name, safe="")))
    return body if status == 200 else None


def disconnect_reasons(packets):
    return [mh.parse_disconnect5(body)[0] for ptype, _, body in packets
            if ptype == mh.DISCONNECT]


def expect_disconnect(raw, reason, timeout=5.0):
    """The broker sends DISCONNECT with this reason code, then closes the connection."""
    packets = raw.packets_until_closed(timeout)
    got = disconnect_reasons(packets)
    assert got and got[-1] == reason, (
        "expected DISCONNECT 0x%02x then close; got %s"
        % (reason, [mh.describe_packet(p) for p in packets] or "a close without DISCONNECT"))


def sub_options(**kw):
    return SubscribeOptions(**kw)


# ---- 1. CONNECT / CONNACK


def test_connack_carries_the_server_limits_and_session_expiry(raws, uname):
    raw, sp, props = raw_connected(raws, client_id=uname("c"))
    assert sp is False
    assert props.get(mh.MAXIMUM_QOS) == 1, props
    assert props.get(mh.TOPIC_ALIAS_MAXIMUM) == 16, props
    assert props.get(mh.MAXIMUM_PACKET_SIZE) == 268435455, props
    assert props.get(mh.SHARED_SUBSCRIPTION_AVAILABLE) == 0, props
    assert props.get(mh.SESSION_EXPIRY_INTERVAL) == 0, props  # absent in CONNECT: 0
    assert mh.ASSIGNED_CLIENT_IDENTIFIER not in props, props
    assert len(set(props.ids())) == len(props.ids()), "a property given twice: %r" % props
    raw.send(mh.disconnect5_packet())
    # The effective Session Expiry Interval: the requested one, at most 86400 s (one day);
    # 0xFFFFFFFF (never expires) becomes 86400 too.
    for requested, effective in ((300, 300), (86400, 86400), (86401, 86400),
                                 (0xFFFFFFFF, 86400)):
        raw, _, props = raw_connected(raws, client_id=uname("sei"),
                                      properties=[(mh.SESSION_EXPIRY_INTERVAL, requested)])
        assert props.get(mh.SESSION_EXPIRY_INTERVAL) == effective, (requested, props)
        raw.send(mh.disconnect5_packet())


def test_empty_client_id_is_assigned_one_even_without_clean_start(raws):
    assigned = []
    for clean in (True, False):
        raw, sp, props = raw_connected(raws, client_id="", clean=clean)
        assert sp is False
        cid = props.get(mh.ASSIGNED_CLIENT_IDENTIFIER)
        assert cid, "no Assigned Client Identifier in %r" % props
        assigned.append(cid)
        raw.send(mh.disconnect5_packet())
    assert assigned[0] != assigned[1]


def test_paho_v5_client_connects_publishes_and_subscribes(clients5, uname):
    topic = uname("paho5")
    sub = connected(clients5, client_id=uname("sub"))
    assert sub.session_present is False
    p = sub.connack_properties
    assert (p.MaximumQoS, p.TopicAliasMaximum, p.SharedSubscriptionAvailable) == (1, 16, 0)
    # QoS 2 is granted as QoS 1 (Maximum QoS 1).
    assert sub.subscribe([(topic + "/0", sub_options(qos=0)), (topic + "/1", sub_options(qos=1)),
                          (topic + "/2", sub_options(qos=2))]) == [0, 1, 1]
    pub = connected(clients5)
    pub.publish(topic + "/1", b"one", qos=1)
    pub.publish(topic + "/0", b"zero", qos=0)
    got = {m.topic: m for m in sub.expect(2)}
    assert (got[topic + "/1"].payload, got[topic + "/1"].qos) == (b"one", 1)
    assert (got[topic + "/0"].payload, got[topic + "/0"].qos) == (b"zero", 0)


# ---- 2. CONNACK refusals with v5 reason codes


raws_last_connack = [None]  # the last CONNACK refused() read, for failure messages


def refused(raws, **kwargs):
    """CONNECTs; returns what is wrong with the refusal ([] if nothing): the CONNACK's reason
    code (returned too), session present 0, and the connection closed right after."""
    raw = raws()
    raw.send(mh.connect5_packet(**kwargs))
    p = raw.read_packet()
    assert p[0] == mh.CONNACK, mh.describe_packet(p)
    body = p[2]
    sp, rc, _ = mh.parse_connack5(body)
    raws_last_connack[0] = mh.describe_packet(p)
    problems = []
    if sp:
        problems.append("session present on a refusal (CONNACK %s)" % body.hex())
    try:
        more = raw.packets_until_closed(timeout=3)
        if more:
            problems.append("more after the CONNACK: %s" % [mh.describe_packet(p) for p in more])
    except AssertionError as exc:
        problems.append("CONNACK %s, then %s" % (body.hex(), exc))
    return rc, problems


REFUSALS = {
    # A level this server does not speak gets 3.1.1's CONNACK with return code 1 (unacceptable
    # protocol version), as RabbitMQ 3.13 answers it: there is no 5.0 session to speak 5.0 in.
    "protocol-level-6": (dict(level=6), 0x01),
    "wrong-password": (dict(username="guest", password="wrong"),
                       mh.RC_BAD_USER_NAME_OR_PASSWORD),
    "password-without-user-name": (dict(username=None, password="guest"),
                                   mh.RC_BAD_USER_NAME_OR_PASSWORD),
    "no-access-to-the-vhost": (None, mh.RC_NOT_AUTHORIZED),  # a user without permissions
    "authentication-method": (dict(properties=[(mh.AUTHENTICATION_METHOD, "SCRAM-SHA-1")]),
                              mh.RC_BAD_AUTHENTICATION_METHOD),
    "will-qos-2": (dict(will=("w/x", b"x", 2, False)), mh.RC_QOS_NOT_SUPPORTED),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_connack_refusal_uses_v5_reason_code(broker, raws, uname, case):
    kwargs, expected = REFUSALS[case]
    if kwargs is None:
        user = uname("noaccess")
        code, _, err = ctl(broker, "add_user", user, "pw")  # no permissions anywhere
        assert code == 0, err
        kwargs = dict(username=user, password="pw")
    rc, problems = refused(raws, client_id=uname("r"), **kwargs)
    if rc != expected:
        problems.insert(0, "CONNACK reason 0x%02x, expected 0x%02x (the broker sent %s)"
                        % (rc, expected, raws_last_connack[0]))
    assert not problems, "\n".join(problems)


# ---- 3. Session expiry


def test_clean_start_without_session_expiry_is_a_clean_session(connection, clients5, uname):
    cid = uname("cs")
    q = "mqtt-subscription-%sqos1" % cid
    c = connected(clients5, client_id=cid, clean_start=True)
    assert c.connack_properties.SessionExpiryInterval == 0
    c.subscribe(uname("t"), 1)
    assert queue_exists(connection, q)
    c.disconnect()
    assert amqp_helpers.wait_until(lambda: not queue_exists(connection, q), timeout=5), \
        "%s still exists after the disconnect of a session with expiry 0" % q


def test_session_expiry_keeps_the_queue_and_messages_while_away(broker, clients5, uname):
    cid, topic = uname("sei"), uname("sei-t")
    q = "mqtt-subscription-%sqos1" % cid
    c = connected(clients5, client_id=cid, clean_start=False, session_expiry=300)
    assert c.session_present is False
    assert c.connack_properties.SessionExpiryInterval == 300
    c.subscribe(topic, 1)
    c.disconnect()
    info = management_queue(broker, q)
    assert info is not None, "%s is gone after the disconnect" % q
    assert info["arguments"].get("x-expires") == 300000, info["arguments"]
    pub = connected(clients5)
    for i in range(3):
        pub.publish(topic, b"m%d" % i, qos=1)
    again = connected(clients5, client_id=cid, clean_start=False, session_expiry=300)
    assert again.session_present is True
    assert [m.payload for m in again.expect(3, timeout=5)] == [b"m0", b"m1", b"m2"]
    # The subscription came back with the session: new messages still arrive.
    pub.publish(topic, b"live", qos=1)
    [m] = again.expect(1, timeout=5)
    assert m.payload == b"live"
    again.disconnect(properties=_disconnect_expiry(0))


def test_a_resumed_session_and_disconnect_change_the_session_expiry(broker, clients5, uname):
    # As RabbitMQ 3.13: the session's queues take the interval of the latest CONNECT, and of a
    # DISCONNECT that names one; both of them, QoS 0 and QoS 1.
    cid = uname("seic")
    queues = ["mqtt-subscription-%sqos%d" % (cid, qos) for qos in (0, 1)]

    def expires():
        return [management_queue(broker, q)["arguments"].get("x-expires") for q in queues]

    c = connected(clients5, client_id=cid, clean_start=False, session_expiry=300)
    c.subscribe(uname("t0"), 0)
    c.subscribe(uname("t1"), 1)
    c.disconnect()
    assert expires() == [300000, 300000]
    again = connected(clients5, client_id=cid, clean_start=False, session_expiry=600)
    assert again.session_present is True
    assert expires() == [600000, 600000]
    again.disconnect(properties=_disconnect_expiry(120))
    assert amqp_helpers.wait_until(lambda: expires() == [120000, 120000], timeout=5), expires()
    # The cap applies to the new interval too.
    last = connected(clients5, client_id=cid, clean_start=False, session_expiry=0xFFFFFFFF)
    assert expires() == [86400000, 86400000]
    last.disconnect(properties=_disconnect_expiry(0))


def test_clean_start_drops_an_existing_session(connection, clients5, uname):
    cid, topic = uname("drop"), uname("drop-t")
    q = "mqtt-subscription-%sqos1" % cid
    c = connected(clients5, client_id=cid, clean_start=False, session_expiry=300)
    c.subscribe(topic, 1)
    c.disconnect()
    connected(clients5).publish(topic, b"old", qos=1)
    clean = connected(clients5, client_id=cid, clean_start=True, session_expiry=300)
    assert clean.session_present is False
    assert amqp_helpers.wait_until(lambda: not queue_exists(connection, q), timeout=5), \
        "clean start kept the old session's queue %s" % q
    clean.subscribe(topic, 1)
    clean.expect_none(0.5)  # "old" went with the old session
    clean.disconnect(properties=_disconnect_expiry(0))


def _disconnect_expiry(seconds):
    p = Properties(PacketTypes.DISCONNECT)
    p.SessionExpiryInterval = seconds
    return p


def test_disconnect_with_session_expiry_zero_ends_the_session(connection, clients5, uname):
    cid = uname("end")
    q = "mqtt-subscription-%sqos1" % cid
    c = connected(clients5, client_id=cid, clean_start=False, session_expiry=300)
    c.subscribe(uname("t"), 1)
    assert queue_exists(connection, q)
    c.disconnect(reason=0, properties=_disconnect_expiry(0))
    assert amqp_helpers.wait_until(lambda: not queue_exists(connection, q), timeout=5), \
        "%s survived a DISCONNECT with Session Expiry Interval 0" % q


# ---- 4-6. PUBLISH properties across protocols


def test_mqtt5_properties_reach_an_amqp_consumer(connection, clients5, uname):
    base = uname("m2a")
    ch = connection.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "amq.topic", base + ".#")
    pub = connected(clients5)
    pub.publish(base + "/full", b"full", qos=1, ContentType="application/json",
                CorrelationData=b"corr-1", ResponseTopic="a/b",
                UserProperty=[("k", "v"), ("k", "second"), ("other", "x")],
                MessageExpiryInterval=30)
    pub.publish(base + "/binary", b"bin", qos=1, CorrelationData=b"\xff\xfe\x00binary")
    pub.publish(base + "/long", b"long", qos=1, CorrelationData=b"c" * 256)
    pub.publish(base + "/short", b"short", qos=1, CorrelationData=b"s" * 255)
    got = {m.routing_key: (p, body) for m, p, body in amqp_helpers.consume_n(ch, q, 4,
                                                                              timeout=5)}
    assert len(got) == 4, sorted(got)
    props, body = got[base + ".full"]
    assert body == b"full"
    assert props.content_type == "application/json"
    assert props.correlation_id == "corr-1"
    assert props.expiration == "30000"
    h = props.headers or {}
    assert h.get("x-reply-to-topic") == "a.b", h
    assert h.get("k") == "v", h  # the first of duplicate keys
    assert h.get("other") == "x", h
    props, _ = got[base + ".binary"]
    assert props.correlation_id is None
    assert (props.headers or {}).get("x-correlation-id") == b"\xff\xfe\x00binary", props.headers
    props, _ = got[base + ".long"]  # valid UTF-8 but over 255 bytes: no shortstr
    assert props.correlation_id is None
    value = (props.headers or {}).get("x-correlation-id")
    assert (value.encode() if isinstance(value, str) else value) == b"c" * 256, props.headers
    props, _ = got[base + ".short"]
    assert props.correlation_id == "s" * 255
    assert "x-correlation-id" not in (props.headers or {})


def test_amqp_properties_reach_an_mqtt5_subscriber(connection, clients5, uname):
    base = uname("a2m")
    sub = connected(clients5)
    sub.subscribe(base + "/a/b", 1)
    ch = connection.channel()
    ch.basic_publish("amq.topic", base + ".a.b", b"from amqp", pika.BasicProperties(
        content_type="text/plain", correlation_id="corr-9", expiration="60000",
        headers={"x-reply-to-topic": "reply.to", "k": "v", "n": 5}))
    [m] = sub.expect(1, timeout=5)
    assert (m.topic, m.payload) == (base + "/a/b", b"from amqp")
    p = mh.message_properties(m)
    assert p.get("ContentType") == "text/plain", p
    assert p.get("CorrelationData") == b"corr-9", p
    assert p.get("ResponseTopic") == "reply/to", p
    user = p.get("UserProperty", [])
    assert ("k", "v") in user and ("n", "5") in user, user
    assert "x-reply-to-topic" not in [k for k, _ in user], user
    assert 0 < p.get("MessageExpiryInterval", 0) <= 60, p


def test_mqtt5_properties_reach_an_mqtt5_subscriber(clients5, uname):
    topic = uname("m2m")
    sub = connected(clients5)
    sub.subscribe(topic, 1)
    pub = connected(clients5)
    pub.publish(topic, "text ü".encode(), qos=1, ContentType="text/plain; charset=utf-8",
                CorrelationData=b"\x00\xff\x80 not utf-8", ResponseTopic=topic + "/reply",
                UserProperty=[("a", "1"), ("b", "2")], PayloadFormatIndicator=1,
                MessageExpiryInterval=100)
    [m] = sub.expect(1, timeout=5)
    assert m.payload == "text ü".encode()
    p = mh.message_properties(m)
    assert p.get("ContentType") == "text/plain; charset=utf-8", p
    assert p.get("CorrelationData") == b"\x00\xff\x80 not utf-8", p
    assert p.get("ResponseTopic") == topic + "/reply", p
    assert p.get("PayloadFormatIndicator") == 1, p
    assert [u for u in p.get("UserProperty", []) if u[0] in ("a", "b")] == [("a", "1"),
                                                                             ("b", "2")], p
    assert 0 < p.get("MessageExpiryInterval", 0) <= 100, p


# ---- 7. Message expiry


def test_expired_messages_are_not_delivered_to_a_returning_session(clients5, uname):
    cid, topic = uname("exp"), uname("exp-t")
    c = connected(clients5, client_id=cid, clean_start=False, session_expiry=60)
    c.subscribe(topic, 1)
    c.disconnect()
    pub = connected(clients5)
    pub.publish(topic, b"short", qos=1, MessageExpiryInterval=1)
    pub.publish(topic, b"long", qos=1, MessageExpiryInterval=60)
    time.sleep(2.2)
    again = connected(clients5, client_id=cid, clean_start=False, session_expiry=60)
    assert again.session_present is True
    [m] = again.expect(1, timeout=5)
    assert m.payload == b"long"
    assert 0 < mh.message_properties(m).get("MessageExpiryInterval", 0) <= 59
    again.expect_none(0.3)
    again.disconnect(properties=_disconnect_expiry(0))


# ---- 8-9. Topic aliases


def test_inbound_topic_alias(raws, clients5, uname):
    topic = uname("alias") + "/1"
    sub = connected(clients5)
    sub.subscribe(topic, 1)
    raw, _, _ = raw_connected(raws, client_id=uname("a"))
    raw.send(mh.publish5_packet(topic, b"a", qos=1, packet_id=1,
                                properties=[(mh.TOPIC_ALIAS, 1)]))
    _, body = raw.expect(mh.PUBACK)
    assert mh.parse_ack5(body)[:2] == (1, 0)
    raw.send(mh.publish5_packet("", b"b", qos=1, packet_id=2, properties=[(mh.TOPIC_ALIAS, 1)]))
    _, body = raw.expect(mh.PUBACK)
    assert mh.parse_ack5(body)[:2] == (2, 0)
    got = sub.expect(2, timeout=5)
    assert [(m.topic, m.payload) for m in got] == [(topic, b"a"), (topic, b"b")]


@pytest.mark.parametrize("topic,alias,reason", [
    ("t/1", 0, mh.RC_TOPIC_ALIAS_INVALID),
    ("t/1", 17, mh.RC_TOPIC_ALIAS_INVALID),  # over the Topic Alias Maximum (16)
    ("", 3, mh.RC_PROTOCOL_ERROR),  # an empty topic with an alias never set
], ids=["alias-0", "alias-17", "unknown-alias"])
def test_invalid_inbound_topic_alias_disconnects(raws, topic, alias, reason, uname):
    raw, _, _ = raw_connected(raws, client_id=uname("bad-alias"))
    raw.send(mh.publish5_packet(topic, b"x", qos=1, packet_id=1,
                                properties=[(mh.TOPIC_ALIAS, alias)]))
    expect_disconnect(raw, reason)


def test_outbound_topic_alias(raws, clients5, uname):
    topic = uname("oalias") + "/x/y"
    raw, _, _ = raw_connected(raws, client_id=uname("o"),
                              properties=[(mh.TOPIC_ALIAS_MAXIMUM, 5)])
    assert raw.subscribe5(1, [(topic, 1)]) == [1]
    plain, _, _ = raw_connected(raws, client_id=uname("p"))  # no Topic Alias Maximum
    assert plain.subscribe5(1, [(topic, 0)]) == [0]
    pub = connected(clients5)
    for i in range(3):
        pub.publish(topic, b"m%d" % i, qos=1)
    got = []
    for _ in range(3):
        p = raw.next_publish()
        assert p is not None, "got %r" % got
        raw.send(mh.puback5_packet(p.packet_id))
        got.append(p)
    assert [p.payload for p in got] == [b"m0", b"m1", b"m2"]
    assert (got[0].topic, got[0].properties.get(mh.TOPIC_ALIAS)) == (topic, 1), got[0]
    for p in got[1:]:
        assert (p.topic, p.properties.get(mh.TOPIC_ALIAS)) == ("", 1), p
    for i in range(3):
        p = plain.next_publish()
        assert p is not None
        assert (p.topic, p.payload) == (topic, b"m%d" % i)
        assert mh.TOPIC_ALIAS not in p.properties, p


# ---- 10-13. Subscription identifiers and options


def test_subscription_identifiers(clients5, uname):
    base = uname("sid")
    single = connected(clients5)
    single.subscribe(base + "/one", 1, subscription_id=42)
    sub = connected(clients5)
    sub.subscribe(base + "/+", 1, subscription_id=1)
    sub.subscribe(base + "/b", 1, subscription_id=2)
    pub = connected(clients5)
    pub.publish(base + "/one", b"1", qos=1)
    [m] = single.expect(1, timeout=5)
    assert mh.message_properties(m).get("SubscriptionIdentifier") == [42]
    [m] = sub.expect(1, timeout=5)  # base/one, through base/+ only
    assert mh.message_properties(m).get("SubscriptionIdentifier") == [1]
    pub.publish(base + "/b", b"2", qos=1)
    [m] = sub.expect(1, timeout=5)
    assert m.payload == b"2"
    assert sorted(mh.message_properties(m).get("SubscriptionIdentifier", [])) == [1, 2]
    sub.expect_none(0.3)  # one delivery for both subscriptions


def test_no_local(clients5, uname):
    topic = uname("nl")
    me = connected(clients5)
    assert me.subscribe(topic, options=sub_options(qos=1, noLocal=True)) == [1]
    me.publish(topic, b"mine", qos=1)
    connected(clients5).publish(topic, b"theirs", qos=1)
    [m] = me.expect(1, timeout=5)
    assert m.payload == b"theirs"
    me.expect_none(0.3)


def test_retain_as_published(clients5, uname):
    topic = uname("rap")
    rap = connected(clients5)
    rap.subscribe(topic, options=sub_options(qos=1, retainAsPublished=True))
    plain = connected(clients5)
    plain.subscribe(topic, options=sub_options(qos=1, retainAsPublished=False))
    pub = connected(clients5)
    try:
        pub.publish(topic, b"live", qos=1, retain=True)
        [m] = rap.expect(1, timeout=5)
        assert (m.payload, m.retain) == (b"live", True)
        [m] = plain.expect(1, timeout=5)
        assert (m.payload, m.retain) == (b"live", False)
        # Sent because of the subscription: always flagged retained.
        for flag in (False, True):
            late = connected(clients5)
            late.subscribe(topic, options=sub_options(qos=1, retainAsPublished=flag))
            [m] = late.expect(1, timeout=5)
            assert (m.payload, m.retain) == (b"live", True), flag
    finally:
        pub.publish(topic, b"", qos=1, retain=True)


def test_retain_handling(clients5, uname):
    topic = uname("rh")
    pub = connected(clients5)
    pub.publish(topic, b"kept", qos=1, retain=True)
    try:
        always = connected(clients5)
        for _ in range(2):  # 0: at every SUBSCRIBE
            always.subscribe(topic, options=sub_options(qos=1, retainHandling=0))
            [m] = always.expect(1, timeout=5)
            assert (m.payload, m.retain) == (b"kept", True)
        if_new = connected(clients5)
        if_new.subscribe(topic, options=sub_options(qos=1, retainHandling=1))
        [m] = if_new.expect(1, timeout=5)
        assert m.payload == b"kept"
        if_new.subscribe(topic, options=sub_options(qos=1, retainHandling=1))  # exists already
        if_new.expect_none(0.5)
        never = connected(clients5)
        never.subscribe(topic, options=sub_options(qos=1, retainHandling=2))
        never.expect_none(0.5)
    finally:
        pub.publish(topic, b"", qos=1, retain=True)


# ---- 14-16. SUBACK, UNSUBACK and PUBACK reason codes


def test_suback_reason_codes(broker, raws, uname):
    base = uname("suback")
    raw, _, _ = raw_connected(raws, client_id=uname("s"))
    codes = raw.subscribe5(1, [(base + "/0", 0), (base + "/1", 1), (base + "/2", 2),
                               ("a/#/b", 1)])
    assert codes == [0x00, 0x01, 0x01, mh.RC_TOPIC_FILTER_INVALID], [hex(c) for c in codes]
    codes = raw.subscribe5(2, [("$share/g/" + base, 1)])
    assert codes == [mh.RC_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED], [hex(c) for c in codes]
    raw.send(mh.packet(mh.PINGREQ, 0, b""))  # still connected
    raw.expect(mh.PINGRESP)
    # Without read permission on amq.topic, or without write permission on the queue (binding).
    failures = []
    cases = (("no read on amq.topic", ("^mqtt-.*", "^mqtt-.*", "^mqtt-.*")),
             ("no write on the queue", ("^mqtt-.*", "^amq\\.topic$", ".*")))
    for what, (conf, write, read) in cases:
        user = uname("perm")
        for args in (["add_user", user, "pw"],
                     ["set_permissions", "-p", "/", user, conf, write, read]):
            code, _, err = ctl(broker, *args)
            assert code == 0, err
        raw, _, _ = raw_connected(raws, client_id=uname("s"), username=user, password="pw")
        codes = raw.subscribe5(1, [(base + "/x", 1)])
        if codes != [mh.RC_NOT_AUTHORIZED]:
            failures.append("%s: SUBACK %s" % (what, [hex(c) for c in codes]))
    assert not failures, failures


def test_unsuback_has_a_reason_code_per_filter(raws, uname):
    base = uname("unsub")
    raw, _, _ = raw_connected(raws, client_id=uname("u"))
    assert raw.subscribe5(1, [(base + "/a", 1)]) == [1]
    codes = raw.unsubscribe5(2, [base + "/a", base + "/never"])
    assert codes == [mh.RC_SUCCESS, mh.RC_NO_SUBSCRIPTION_EXISTED], [hex(c) for c in codes]


def test_puback_reports_no_matching_subscribers(raws, clients5, uname):
    base = uname("puback")
    sub = connected(clients5)
    sub.subscribe(base + "/yes", 1)
    raw, _, _ = raw_connected(raws, client_id=uname("p"))
    raw.send(mh.publish5_packet(base + "/yes", b"routed", qos=1, packet_id=1))
    _, body = raw.expect(mh.PUBACK)
    assert mh.parse_ack5(body)[:2] == (1, mh.RC_SUCCESS), body.hex()
    raw.send(mh.publish5_packet(base + "/nobody", b"lost", qos=1, packet_id=2))
    _, body = raw.expect(mh.PUBACK)
    assert mh.parse_ack5(body)[:2] == (2, mh.RC_NO_MATCHING_SUBSCRIBERS), body.hex()
    [m] = sub.expect(1, timeout=5)
    assert m.payload == b"routed"


# ---- 17-19. DISCONNECT


def test_qos2_publish_disconnects_with_qos_not_supported(raws, uname):
    raw, _, _ = raw_connected(raws, client_id=uname("q2"))
    raw.send(mh.publish5_packet(uname("t"), b"x", qos=2, packet_id=1))
    expect_disconnect(raw, mh.RC_QOS_NOT_SUPPORTED)


def test_disconnect_with_will_message(raws, clients5, uname):
    topic = uname("will")
    watcher = connected(clients5)
    watcher.subscribe(topic, 1)
    polite, _, _ = raw_connected(raws, client_id=uname("w0"), will=(topic, b"normal", 1, False))
    polite.send(mh.disconnect5_packet(mh.RC_SUCCESS))
    assert polite.packets_until_closed() == []
    watcher.expect_none(0.5)
    leaving, _, _ = raw_connected(raws, client_id=uname("w4"),
                                  will=(topic, b"with will", 1, False))
    leaving.send(mh.disconnect5_packet(mh.RC_DISCONNECT_WITH_WILL))
    leaving.packets_until_closed()
    [m] = watcher.expect(1, timeout=5)
    assert (m.topic, m.payload) == (topic, b"with will")


def test_session_taken_over_is_told_with_disconnect(raws, uname):
    cid = uname("take")
    first, _, _ = raw_connected(raws, client_id=cid)
    second, _, _ = raw_connected(raws, client_id=cid)
    expect_disconnect(first, mh.RC_SESSION_TAKEN_OVER)
    second.send(mh.packet(mh.PINGREQ, 0, b""))
    second.expect(mh.PINGRESP)


def test_keep_alive_timeout_is_told_with_disconnect(raws, uname):
    raw = raws()
    started = time.monotonic()
    sp, rc, _ = raw.connect5(client_id=uname("ka"), keepalive=1)
    assert rc == 0
    expect_disconnect(raw, mh.RC_KEEP_ALIVE_TIMEOUT, timeout=5)
    assert time.monotonic() - started >= 1.4  # 1.5 keep-alive intervals


# ---- 20. Will Delay Interval


def _connect_with_delayed_will(raws, cid, topic, payload):
    raw, _, _ = raw_connected(raws, client_id=cid,
                              properties=[(mh.SESSION_EXPIRY_INTERVAL, 30)],
                              will=(topic, payload, 1, False),
                              will_properties=[(mh.WILL_DELAY_INTERVAL, 2)])
    return raw


def test_will_delay_interval(connection, raws, clients5, uname):
    cid, topic = uname("wd"), uname("wd-t")
    watcher = connected(clients5)
    watcher.subscribe(topic, 1)
    raw = _connect_with_delayed_will(raws, cid, topic, b"late")
    raw.drop()
    dropped = time.monotonic()
    assert amqp_helpers.wait_until(lambda: queue_exists(connection, "mqtt-will-" + cid),
                                   timeout=0.8), "no queue mqtt-will-%s during the delay" % cid
    watcher.expect_none(max(0.0, dropped + 1.0 - time.monotonic()))
    [m] = watcher.expect(1, timeout=4)
    elapsed = time.monotonic() - dropped
    assert (m.topic, m.payload) == (topic, b"late")
    assert 1.5 <= elapsed <= 4.0, elapsed
    # The session (Session Expiry Interval 30) is still there; end it.
    raw, _, _ = raw_connected(raws, client_id=cid, clean=True)
    raw.send(mh.disconnect5_packet())


def test_delayed_will_survives_a_broker_restart(restartable_broker, uname):
    # The will waits in a durable queue as a persistent message: a broker killed during the
    # delay still sends it after it comes back (the delay counts again from the restart).
    b = restartable_broker.start()
    cid, topic = uname("wdr"), uname("wdr-t")
    raw = RawClient5(mh.mqtt_port(b))
    sp, rc, _ = raw.connect5(client_id=cid, properties=[(mh.SESSION_EXPIRY_INTERVAL, 30)],
                             will=(topic, b"after restart", 1, False),
                             will_properties=[(mh.WILL_DELAY_INTERVAL, 2)])
    assert rc == 0
    raw.drop()
    time.sleep(0.3)  # the will is in its queue (a durable declare and a persistent publish)
    b = restartable_broker.restart(kill=True)
    watcher = Client5(mh.mqtt_port(b))
    assert watcher.connect() == 0
    watcher.subscribe(topic, 1)
    [m] = watcher.expect(1, timeout=6)
    assert (m.topic, m.payload) == (topic, b"after restart")
    watcher.disconnect()


def test_reconnecting_within_the_will_delay_cancels_the_will(raws, clients5, uname):
    cid, topic = uname("wdc"), uname("wdc-t")
    watcher = connected(clients5)
    watcher.subscribe(topic, 1)
    raw = _connect_with_delayed_will(raws, cid, topic, b"never")
    raw.drop()
    time.sleep(0.3)
    back, _, _ = raw_connected(raws, client_id=cid, clean=False,
                               properties=[(mh.SESSION_EXPIRY_INTERVAL, 30)])
    watcher.expect_none(3.0)
    back.send(mh.disconnect5_packet(0, [(mh.SESSION_EXPIRY_INTERVAL, 0)]))


# ---- 21-22. Receive Maximum, Maximum Packet Size


def test_receive_maximum_limits_unacknowledged_deliveries(raws, clients5, uname):
    topic = uname("rm")
    raw, _, _ = raw_connected(raws, client_id=uname("rm"), properties=[(mh.RECEIVE_MAXIMUM, 2)])
    assert raw.subscribe5(1, [(topic, 1)]) == [1]
    pub = connected(clients5)
    for i in range(5):
        pub.publish(topic, b"m%d" % i, qos=1)
    first = [raw.next_publish() for _ in range(2)]
    assert None not in first, first
    extra = raw.next_publish(timeout=0.5)
    assert extra is None, "a third delivery with Receive Maximum 2: %r" % extra
    for p in first:
        raw.send(mh.puback5_packet(p.packet_id))
    rest = []
    while len(rest) < 3:
        p = raw.next_publish()
        assert p is not None, "after the PUBACKs got only %r" % rest
        raw.send(mh.puback5_packet(p.packet_id))
        rest.append(p)
    assert [p.payload for p in first + rest] == [b"m%d" % i for i in range(5)]
    assert all(p.qos == 1 for p in first + rest)


def test_puback_with_an_error_reason_discards_the_message(broker, channel, raws, clients5,
                                                          uname):
    # "If PUBACK ... is received containing a Reason Code of 0x80 or greater the corresponding
    # PUBLISH packet is treated as acknowledged, and MUST NOT be retransmitted" [MQTT-4.4.0-2]:
    # discarded as RabbitMQ 3.13 does, so a dead-letter exchange on the queue gets it; a
    # delivery left without PUBACK comes again after a reconnect to the same session.
    cid, topic, dlx = uname("nak"), uname("nak"), uname("nak-dlx")
    channel.exchange_declare(dlx, "fanout", auto_delete=True)
    dead = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(dead, dlx)
    code, _, err = ctl(broker, "set_policy", cid, "^mqtt-subscription-%s" % cid,
                       '{"dead-letter-exchange": "%s"}' % dlx, "--apply-to", "queues")
    assert code == 0, err
    try:
        raw, _, _ = raw_connected(raws, client_id=cid, clean=False,
                                  properties=[(mh.SESSION_EXPIRY_INTERVAL, 60)])
        assert raw.subscribe5(1, [(topic, 1)]) == [1]
        pub = connected(clients5)
        pub.publish(topic, b"refused", qos=1)
        pub.publish(topic, b"taken", qos=1)
        refused, taken = raw.next_publish(), raw.next_publish()
        assert refused.payload == b"refused" and taken.payload == b"taken"
        raw.send(mh.puback5_packet(refused.packet_id, reason=0x80))
        assert amqp_helpers.wait_until(
            lambda: channel.queue_declare(dead, passive=True).method.message_count == 1,
            timeout=5), "the refused message was not dead-lettered"
        _, _, body = channel.basic_get(dead, auto_ack=True)
        assert body == b"refused"
        raw.drop()  # gone without PUBACKing the second: that one comes again
        again, session_present, _ = raw_connected(raws, client_id=cid, clean=False,
                                                  properties=[(mh.SESSION_EXPIRY_INTERVAL, 60)])
        assert session_present
        p = again.next_publish()
        assert p is not None and p.payload == b"taken" and p.dup, p
        again.send(mh.puback5_packet(p.packet_id))
        assert again.next_publish(timeout=0.5) is None
        again.send(mh.disconnect5_packet(properties=[(mh.SESSION_EXPIRY_INTERVAL, 0)]))
    finally:
        ctl(broker, "clear_policy", cid)


def test_client_maximum_packet_size_drops_bigger_messages(clients5, uname):
    topic = uname("mps")
    props = Properties(PacketTypes.CONNECT)
    props.MaximumPacketSize = 100
    small = connected(clients5, connect_properties=props)
    small.subscribe(topic, 1)
    pub = connected(clients5)
    pub.publish(topic, b"x" * 500, qos=1)
    pub.publish(topic, b"y" * 10, qos=1)
    [m] = small.expect(1, timeout=5)
    assert m.payload == b"y" * 10
    small.expect_none(0.3)
    assert not small.disconnected.is_set()


# ---- 23. Request / response with AMQP


def test_request_response_between_mqtt5_and_amqp(connection, clients5, uname):
    base = uname("rpc")
    ch = connection.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "amq.topic", base + ".rpc.req")
    requester = connected(clients5)
    requester.subscribe(base + "/rpc/resp/1", 1)
    requester.publish(base + "/rpc/req", b"2+2", qos=1, ResponseTopic=base + "/rpc/resp/1",
                      CorrelationData=b"abc")
    [(method, props, body)] = amqp_helpers.consume_n(ch, q, 1, timeout=5)
    assert body == b"2+2"
    reply_to = (props.headers or {}).get("x-reply-to-topic")
    assert reply_to == base + ".rpc.resp.1", props.headers
    assert props.correlation_id == "abc"
    ch.basic_publish("amq.topic", reply_to, b"4",
                     pika.BasicProperties(correlation_id=props.correlation_id))
    [m] = requester.expect(1, timeout=5)
    assert (m.topic, m.payload) == (base + "/rpc/resp/1", b"4")
    assert mh.message_properties(m).get("CorrelationData") == b"abc"


# ---- 24. Malformed properties


def _publish_with_raw_properties(topic, block, packet_id=1):
    body = mh._utf8(topic) + struct.pack("!H", packet_id) + block + b"payload"
    return mh.packet(mh.PUBLISH, 0x02, body)


def test_malformed_properties_close_only_that_connection(raws, clients5, broker_still_serves,
                                                         uname):
    topic = uname("malformed")
    bystander = connected(clients5)
    bystander.subscribe(topic, 1)
    after_connect = {
        "repeated Content Type": mh.publish5_packet(
            topic, b"x", qos=1, packet_id=1,
            properties=[(mh.CONTENT_TYPE, "a"), (mh.CONTENT_TYPE, "b")]),
        "unknown property 0x05": mh.publish5_packet(
            topic, b"x", qos=1, packet_id=1, properties=[(0x05, b"\x00")]),
        "Session Expiry Interval in PUBLISH": mh.publish5_packet(
            topic, b"x", qos=1, packet_id=1, properties=[(mh.SESSION_EXPIRY_INTERVAL, 10)]),
        "Topic Alias in SUBSCRIBE": mh.subscribe5_packet(
            1, [(topic, 1)], properties=[(mh.TOPIC_ALIAS, 1)]),
        "property length past the packet": _publish_with_raw_properties(topic, b"\x7f"),
    }
    failures = []
    for what, data in after_connect.items():
        raw, _, _ = raw_connected(raws, client_id=uname("m"))
        raw.send(data)
        try:
            packets = raw.packets_until_closed()
        except AssertionError as exc:
            failures.append("%s: %s" % (what, exc))
            continue
        bad = [mh.describe_packet(p) for p in packets
               if p[0] != mh.DISCONNECT
               or mh.parse_disconnect5(p[2])[0] not in (mh.RC_MALFORMED_PACKET,
                                                         mh.RC_PROTOCOL_ERROR)]
        if bad:
            failures.append("%s: got %s before the close" % (what, bad))
    in_connect = {
        "Topic Alias in CONNECT": [(mh.TOPIC_ALIAS, 1)],
        "repeated Session Expiry Interval": [(mh.SESSION_EXPIRY_INTERVAL, 10),
                                             (mh.SESSION_EXPIRY_INTERVAL, 20)],
    }
    for what, props in in_connect.items():
        raw = raws()
        raw.send(mh.connect5_packet(client_id=uname("m"), properties=props))
        try:
            packets = raw.packets_until_closed()
        except AssertionError as exc:
            failures.append("%s: %s" % (what, exc))
            continue
        bad = [mh.describe_packet(p) for p in packets
               if p[0] not in (mh.CONNACK, mh.DISCONNECT)
               or (p[0] == mh.CONNACK and mh.parse_connack5(p[2])[1] not in (
                   mh.RC_MALFORMED_PACKET, mh.RC_PROTOCOL_ERROR))
               or (p[0] == mh.DISCONNECT and mh.parse_disconnect5(p[2])[0] not in (
                   mh.RC_MALFORMED_PACKET, mh.RC_PROTOCOL_ERROR))]
        if bad:
            failures.append("%s: got %s before the close" % (what, bad))
    assert not failures, failures
    connected(clients5).publish(topic, b"still fine", qos=1)
    [m] = bystander.expect(1, timeout=5)
    assert m.payload == b"still fine"  # none of the malformed publishes got through


# ---- 25. Connection listings


def test_connections_are_listed_as_mqtt_5(broker, clients5, uname):
    from test_management_api import call
    cid = uname("list5")
    c = connected(clients5, client_id=cid)

    def row():
        status, body, _ = call(broker, "GET", "/api/connections")
        assert status == 200
        rows = [r for r in body if (r.get("client_properties") or {}).get("client_id") == cid]
        return rows[0] if rows else None

    r = amqp_helpers.wait_until(row, timeout=5)
    assert r is not None, "connection %s not listed" % cid
    assert r["protocol"] == "MQTT 5.0", r["protocol"]
    code, out, err = ctl(broker, "list_mqtt_connections", "client_id", "protocol", "-q")
    assert code == 0, err
    assert "%s\tMQTT 5.0" % cid in out.splitlines(), out
    c.disconnect()


# ---- 26-27. Command line clients, 3.1.1 interop


def test_mosquitto_v5_command_line_clients(port, uname):
    topic = uname("cli5") + "/x"
    sub = subprocess.Popen(["mosquitto_sub", "-V", "mqttv5", "-p", str(port), "-u", "guest",
                            "-P", "guest", "-t", topic,
                            "-q", "1", "-C", "1", "-F", "%t|%p|%P", "-W", "10"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # mosquitto_sub has no "subscribed" signal: publish until it has received one.
        deadline = time.monotonic() + 10
        while sub.poll() is None and time.monotonic() < deadline:
            subprocess.run(["mosquitto_pub", "-V", "mqttv5", "-p", str(port), "-u", "guest",
                            "-P", "guest", "-t", topic,
                            "-m", "hello v5", "-q", "1", "-D", "publish", "user-property", "k",
                            "v"], check=True, timeout=10)
            time.sleep(0.2)
        out, err = sub.communicate(timeout=10)
    finally:
        if sub.poll() is None:
            sub.kill()
    assert out.decode().strip() == "%s|hello v5|k:v" % topic, (out, err)


def test_mqtt311_and_mqtt5_clients_interoperate(clients, clients5, uname):
    topic = uname("interop")
    v3 = connected(clients)
    v3.subscribe(topic, 1)
    v5 = connected(clients5)
    v5.subscribe(topic, 1)
    v5.publish(topic, b"from v5", qos=1, ContentType="text/plain",
               UserProperty=[("k", "v")], ResponseTopic=topic + "/r")
    [m] = v3.expect(1, timeout=5)
    assert (m.topic, m.payload, m.qos) == (topic, b"from v5", 1)
    [m] = v5.expect(1, timeout=5)
    assert m.payload == b"from v5"
    v3.publish(topic, b"from v3", qos=1)
    got = v5.expect(1, timeout=5) + v3.expect(1, timeout=5)
    assert [(m.topic, m.payload) for m in got] == [(topic, b"from v3")] * 2
