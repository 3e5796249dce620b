"""MQTT 3.1.1 (and 3.1) as RabbitMQ's rabbitmq_mqtt plugin serves it, driven by paho-mqtt,
mosquitto_pub/sub and raw packets, with pika on the AMQP side of every interop case.

Behaviour checked against RabbitMQ 3.10.8 with rabbitmq_mqtt: queue names and arguments, the
x-mqtt-* headers, delivery modes, CONNACK codes, QoS 2 downgraded to 1."""

import os
import struct
import subprocess
import time

import pika
import pytest

import amqp_helpers
import mqtt_helpers
from mqtt_helpers import Client, RawClient
from test_warrenctl import ctl


@pytest.fixture
def uname():
    """Unique names without dots: a "." in an MQTT topic is a level separator on the AMQP side
    (RabbitMQ's mapping), so it would come back as "/"."""
    return lambda prefix="x": amqp_helpers.unique(prefix).replace(".", "-")


@pytest.fixture
def port(broker):
    return mqtt_helpers.mqtt_port(broker)


@pytest.fixture
def clients(port):
    made = []

    def make(**kwargs):
        c = Client(port, **kwargs)
        made.append(c)
        return c

    yield make
    for c in made:
        try:
            c.disconnect()
        except Exception:
            pass


def connected(make, **kwargs):
    c = make(**kwargs)
    assert c.connect() == 0
    return c


# ---- publish / subscribe


def test_qos0_and_qos1_publish_subscribe_with_wildcards(clients, uname):
    base = uname("t")
    sub = connected(clients)
    assert sub.subscribe([(base + "/+/temp", 1), (base + "/all/#", 0)]) == [1, 0]
    pub = connected(clients)
    payload = bytes(range(256)) * 3  # binary, NUL bytes included
    pub.publish(base + "/kitchen/temp", payload, qos=1)
    pub.publish(base + "/all/x/y", b"zero", qos=0)
    got = {m.topic: m for m in sub.expect(2)}
    assert got[base + "/kitchen/temp"].payload == payload
    assert got[base + "/kitchen/temp"].qos == 1
    assert got[base + "/all/x/y"].payload == b"zero"
    assert got[base + "/all/x/y"].qos == 0
    # "#" matches the parent level too; "+" one level only.
    pub.publish(base + "/all", b"parent", qos=1)
    pub.publish(base + "/a/b/temp", b"too deep", qos=1)
    [m] = sub.expect(1)
    assert (m.topic, m.payload) == (base + "/all", b"parent")
    sub.expect_none()


def test_qos2_is_downgraded_to_qos1(port, uname):
    topic = uname("q2")
    raw = RawClient(port)
    assert raw.connect(client_id=uname("c")) == (False, 0)
    raw.send(mqtt_helpers.subscribe_packet(1, [(topic, 2)]))
    ptype, _, body = raw.read_packet()
    assert ptype == mqtt_helpers.SUBACK and body == struct.pack("!H", 1) + b"\x01"
    raw.send(mqtt_helpers.publish_packet(topic, b"p", qos=2, packet_id=7))
    seen = {}
    while len(seen) < 2:
        ptype, flags, body = raw.read_packet()
        seen[ptype] = (flags, body)
    assert seen[mqtt_helpers.PUBACK][1] == struct.pack("!H", 7)  # PUBACK, not PUBREC
    topic_got, payload, qos, _, _, _ = mqtt_helpers.parse_publish(*seen[mqtt_helpers.PUBLISH])
    assert (topic_got, payload, qos) == (topic, b"p", 1)
    raw.close()


def test_unsubscribe_stops_deliveries(clients, uname):
    topic = uname("u")
    sub = connected(clients)
    sub.subscribe(topic, 1)
    pub = connected(clients)
    pub.publish(topic, b"1", qos=1)
    sub.expect(1)
    sub.unsubscribe(topic)
    pub.publish(topic, b"2", qos=1)
    sub.expect_none()


def test_mosquitto_command_line_clients(port, uname):
    topic = uname("cli") + "/x"
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(port), "-u", "guest", "-P", "guest",
                            "-t", topic, "-q", "1", "-C", "1", "-v", "-W", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # mosquitto_sub has no "subscribed" signal: publish until it has received one.
        deadline = time.monotonic() + 20
        while sub.poll() is None and time.monotonic() < deadline:
            subprocess.run(["mosquitto_pub", "-p", str(port), "-u", "guest", "-P", "guest",
                            "-t", topic, "-m", "hello cli", "-q", "1"], check=True, timeout=20)
            time.sleep(0.2)
        out, err = sub.communicate(timeout=20)
    finally:
        if sub.poll() is None:
            sub.kill()
    assert out.decode().strip() == topic + " hello cli", err


# ---- AMQP <-> MQTT


def test_amqp_publisher_reaches_mqtt_subscriber(clients, connection, uname):
    base = uname("amqp2mqtt")
    sub = connected(clients)
    sub.subscribe(base + "/+/state", 1)
    ch = connection.channel()
    body = b"\x00binary\xffbody"
    ch.basic_publish("amq.topic", base + ".lamp.state", body)
    [m] = sub.expect(1)
    assert (m.topic, m.payload, m.qos) == (base + "/lamp/state", body, 1)  # AMQP: QoS 1


def test_mqtt_publisher_reaches_amqp_consumer_with_rabbitmq_headers(clients, connection, uname):
    base = uname("mqtt2amqp")
    ch = connection.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "amq.topic", base + ".#")
    pub = connected(clients)
    pub.publish(base + "/dev/1", b"one", qos=1)
    pub.publish(base + "/dev/0", b"zero", qos=0)
    got = amqp_helpers.consume_n(ch, q, 2)
    by_key = {method.routing_key: (props, body) for method, props, body in got}
    props, body = by_key[base + ".dev.1"]
    assert body == b"one"
    assert props.delivery_mode == 2
    assert props.headers == {"x-mqtt-publish-qos": 1, "x-mqtt-dup": False}
    props, body = by_key[base + ".dev.0"]
    assert body == b"zero"
    assert props.delivery_mode == 1
    assert props.headers == {"x-mqtt-publish-qos": 0, "x-mqtt-dup": False}


def test_subscription_queues_are_named_and_declared_as_rabbitmq(broker, clients, connection,
                                                                  uname):
    cid = uname("cid")
    persistent = connected(clients, client_id=cid, clean_session=False)
    persistent.subscribe([("a/b", 1), ("c/d", 0)])
    ch = connection.channel()
    # Both exist (passive declare), with RabbitMQ's flags and arguments.
    ch.queue_declare(queue="mqtt-subscription-%sqos1" % cid, passive=True)
    ch.queue_declare(queue="mqtt-subscription-%sqos0" % cid, passive=True)
    code, out, err = ctl(broker, "list_queues", "name", "durable", "auto_delete", "arguments")
    assert code == 0, err
    rows = {r.split("\t")[0]: r.split("\t")[1:] for r in out.splitlines() if cid in r}
    assert rows["mqtt-subscription-%sqos1" % cid][:2] == ["true", "false"]
    assert "86400000" in rows["mqtt-subscription-%sqos1" % cid][2]  # x-expires, 24 h
    # A persistent session's QoS 0 queue is durable with the same x-expires (RabbitMQ 3.13;
    # 3.10 made it transient and auto-delete, losing QoS 0 subscriptions at a reconnect).
    assert rows["mqtt-subscription-%sqos0" % cid][:2] == ["true", "false"]
    assert "86400000" in rows["mqtt-subscription-%sqos0" % cid][2]
    code, out, err = ctl(broker, "list_bindings", "source_name", "destination_name",
                         "routing_key")
    assert "amq.topic\tmqtt-subscription-%sqos1\ta.b" % cid in out
    assert "amq.topic\tmqtt-subscription-%sqos0\tc.d" % cid in out
    persistent.disconnect()
    # Both stay while the session lasts.
    ch.queue_declare(queue="mqtt-subscription-%sqos1" % cid, passive=True)
    ch.queue_declare(queue="mqtt-subscription-%sqos0" % cid, passive=True)
    # A clean session with the same id removes them.
    clean = connected(clients, client_id=cid, clean_session=True)
    assert clean.session_present is False
    amqp_helpers.wait_until(lambda: cid + "qos1" not in ctl(broker, "list_queues", "name")[1]
                            and cid + "qos0" not in ctl(broker, "list_queues", "name")[1])
    # A clean session's QoS 0 queue is transient and auto-delete: it goes with the connection.
    clean.subscribe("e/f", 0)
    code, out, err = ctl(broker, "list_queues", "name", "durable", "auto_delete")
    assert "mqtt-subscription-%sqos0\tfalse\ttrue" % cid in out.splitlines()
    clean.disconnect()
    amqp_helpers.wait_until(lambda: cid + "qos0" not in ctl(broker, "list_queues", "name")[1])


def test_persistent_session_keeps_qos0_subscriptions(clients, uname):
    cid, topic = uname("ps0"), uname("ps0-topic")
    c = connected(clients, client_id=cid, clean_session=False)
    assert c.subscribe(topic, 0) == [0]
    c.disconnect()
    connected(clients).publish(topic, b"while away", qos=0)
    back = connected(clients, client_id=cid, clean_session=False)
    assert back.session_present is True
    [m] = back.expect(1)
    assert (m.payload, m.qos) == (b"while away", 0)
    # The subscription came back with the session: UNSUBSCRIBE ends it.
    back.unsubscribe(topic)
    connected(clients).publish(topic, b"after unsubscribe", qos=0)
    back.expect_none()
    back.disconnect()
    connected(clients, client_id=cid, clean_session=True).disconnect()


def test_management_lists_mqtt_connections(broker, clients, uname):
    from test_management_api import call
    cid = uname("mgmt")
    connected(clients, client_id=cid)

    def mqtt_rows():
        status, body, _ = call(broker, "GET", "/api/connections")
        assert status == 200
        return [c for c in body if c.get("protocol") == "MQTT 3.1.1"]

    amqp_helpers.wait_until(lambda: any(c["client_properties"].get("client_id") == cid
                                        for c in mqtt_rows()))
    row = [c for c in mqtt_rows() if c["client_properties"]["client_id"] == cid][0]
    assert row["user"] == "guest" and row["vhost"] == "/"
    assert row["client_properties"]["product"] == "MQTT client"


def test_warrenctl_lists_mqtt_connections(broker, clients, uname):
    cid = uname("ctl")
    c = connected(clients, client_id=cid)
    code, out, err = ctl(broker, "list_mqtt_connections")
    assert code == 0, err
    assert out.splitlines()[0] == "Listing MQTT connections ..."
    assert out.splitlines()[1] == "client_id\tconn_name"
    row = [line.split("\t") for line in out.splitlines() if line.startswith(cid)][0]
    assert row[1].startswith("127.0.0.1:") and " -> 127.0.0.1:" in row[1]
    code, out, err = ctl(broker, "list_mqtt_connections", "client_id", "user", "vhost",
                         "protocol", "-q")
    assert "%s\tguest\t/\tMQTT 3.1.1" % cid in out.splitlines()
    c.disconnect()


def test_port_to_vhost_mapping(warren_factory, uname):
    # The global parameter mqtt_port_to_vhost_mapping picks the vhost of a login whose user name
    # names none, by the port the client connected to (RabbitMQ's port to vhost mapping); a
    # "vhost:user" name still wins.
    b = warren_factory()
    port = mqtt_helpers.mqtt_port(b)
    for args in (("add_vhost", "devices"),
                 ("set_permissions", "-p", "devices", "guest", ".*", ".*", ".*"),
                 ("set_global_parameter", "mqtt_port_to_vhost_mapping",
                  '{"%d": "devices", "1": "elsewhere"}' % port)):
        code, _, err = ctl(b, *args)
        assert code == 0, err

    def vhost_of(cid, **credentials):
        c = Client(port, client_id=cid, **credentials)
        assert c.connect() == 0
        code, out, err = ctl(b, "list_mqtt_connections", "client_id", "vhost", "-q")
        c.disconnect()
        return [line.split("\t")[1] for line in out.splitlines() if line.startswith(cid + "\t")]

    assert vhost_of(uname("mapped")) == ["devices"]
    assert vhost_of(uname("named"), username="/:guest", password="guest") == ["/"]
    code, _, err = ctl(b, "clear_global_parameter", "mqtt_port_to_vhost_mapping")
    assert code == 0, err
    assert vhost_of(uname("default")) == ["/"]


# ---- sessions


def test_persistent_session_keeps_qos1_messages_while_away(clients, uname):
    cid, topic = uname("ps"), uname("ps-topic")
    c = connected(clients, client_id=cid, clean_session=False)
    assert c.session_present is False
    c.subscribe(topic, 1)
    c.disconnect()
    pub = connected(clients)
    for i in range(3):
        pub.publish(topic, b"m%d" % i, qos=1)
    again = connected(clients, client_id=cid, clean_session=False)
    assert again.session_present is True
    assert [m.payload for m in again.expect(3)] == [b"m0", b"m1", b"m2"]
    # The subscription was recovered: UNSUBSCRIBE works after the reconnect.
    again.unsubscribe(topic)
    pub.publish(topic, b"after", qos=1)
    again.expect_none()


def test_unacknowledged_qos1_delivery_comes_back_with_dup(port, clients, uname):
    cid, topic = uname("dup"), uname("dup-topic")
    raw = RawClient(port)
    assert raw.connect(client_id=cid, clean=False) == (False, 0)
    raw.send(mqtt_helpers.subscribe_packet(1, [(topic, 1)]))
    assert raw.read_packet()[0] == mqtt_helpers.SUBACK
    connected(clients).publish(topic, b"once", qos=1)
    ptype, flags, body = raw.read_packet()
    assert ptype == mqtt_helpers.PUBLISH
    t, payload, qos, pid, dup, _ = mqtt_helpers.parse_publish(flags, body)
    assert (t, payload, qos, dup) == (topic, b"once", 1, False)
    raw.close()  # no PUBACK
    raw = RawClient(port)
    assert raw.connect(client_id=cid, clean=False) == (True, 0)
    ptype, flags, body = raw.read_packet()
    t, payload, qos, pid, dup, _ = mqtt_helpers.parse_publish(flags, body)
    assert (t, payload, qos, dup) == (topic, b"once", 1, True)
    raw.send(mqtt_helpers.puback_packet(pid))
    raw.send(mqtt_helpers.packet(mqtt_helpers.DISCONNECT, 0, b""))
    raw.close()
    # Acknowledged: not delivered again.
    last = connected(clients, client_id=cid, clean_session=False)
    last.expect_none()


def test_persistent_session_survives_broker_restart(restartable_broker, uname):
    b = restartable_broker.start()
    cid, topic = uname("restart"), uname("restart-topic")
    c = Client(mqtt_helpers.mqtt_port(b), client_id=cid, clean_session=False)
    assert c.connect() == 0
    c.subscribe(topic, 1)
    c.disconnect()
    p = Client(mqtt_helpers.mqtt_port(b))
    assert p.connect() == 0
    p.publish(topic, b"kept", qos=1)  # PUBACK: the broker has it on disk
    p.publish("retained/" + topic, b"still here", qos=1, retain=True)
    p.disconnect()
    b = restartable_broker.restart(kill=True)
    c = Client(mqtt_helpers.mqtt_port(b), client_id=cid, clean_session=False)
    assert c.connect() == 0
    assert c.session_present is True
    [m] = c.expect(1)
    assert m.payload == b"kept"
    c.subscribe("retained/#", 0)
    [m] = c.expect(1)
    assert (m.topic, m.payload, m.retain) == ("retained/" + topic, b"still here", True)
    c.disconnect()


def test_same_client_id_takes_the_session_over(clients, uname):
    cid, topic = uname("take"), uname("take-topic")
    first = connected(clients, client_id=cid)
    first.subscribe(topic, 1)
    second = connected(clients, client_id=cid)
    assert first.disconnected.wait(10), "the first connection was not closed"
    second.subscribe(topic, 1)
    connected(clients).publish(topic, b"to the second", qos=1)
    [m] = second.expect(1)
    assert m.payload == b"to the second"


def test_empty_client_id_gets_one_unless_the_session_is_persistent(port):
    raw = RawClient(port)
    assert raw.connect(client_id="", clean=True) == (False, 0)
    raw.close()
    raw = RawClient(port)
    assert raw.connect(client_id="", clean=False) == (False, 2)  # identifier rejected
    assert raw.closed_by_broker()
    raw.close()


# ---- will, retained, keep-alive


def test_will_is_published_when_the_client_drops_not_on_disconnect(clients, uname):
    topic = uname("will")
    watcher = connected(clients)
    watcher.subscribe(topic, 1)
    polite = connected(clients, will=(topic, b"polite", 1, False))
    polite.disconnect()
    watcher.expect_none()
    rude = connected(clients, will=(topic, b"gone", 1, False))
    rude.drop()
    [m] = watcher.expect(1)
    assert (m.topic, m.payload) == (topic, b"gone")


def test_retained_messages_wildcards_and_clearing(clients, uname):
    base = uname("ret")
    pub = connected(clients)
    pub.publish(base + "/a", b"A", qos=1, retain=True)
    pub.publish(base + "/b", b"B", qos=0, retain=True)
    sub = connected(clients)
    assert sub.subscribe(base + "/+", 1) == [1]
    got = {m.topic: m for m in sub.expect(2)}
    assert got[base + "/a"].payload == b"A" and got[base + "/a"].retain
    assert got[base + "/a"].qos == 1
    assert got[base + "/b"].qos == 0  # the lower of the message's and the subscription's
    # A live delivery of a retained publish is not flagged retained.
    pub.publish(base + "/a", b"A2", qos=1, retain=True)
    [m] = sub.expect(1)
    assert (m.payload, m.retain) == (b"A2", False)
    # An empty retained payload clears the topic.
    pub.publish(base + "/a", b"", qos=1, retain=True)
    sub.expect(1)
    late = connected(clients)
    late.subscribe(base + "/#", 0)
    [m] = late.expect(1)
    assert m.topic == base + "/b"
    late.expect_none()


def test_keepalive_timeout_closes_a_silent_client_and_sends_its_will(port, clients, uname):
    topic = uname("ka")
    watcher = connected(clients)
    watcher.subscribe(topic, 0)
    raw = RawClient(port)
    started = time.monotonic()
    assert raw.connect(client_id=uname("ka"), keepalive=1, will=(topic, "timed out", 0, False)) \
        == (False, 0)
    assert raw.closed_by_broker(timeout=10)
    assert time.monotonic() - started >= 1.4  # 1.5 keep-alive intervals
    [m] = watcher.expect(1)
    assert m.payload == b"timed out"


def test_pingreq_is_answered(port):
    raw = RawClient(port)
    raw.connect(client_id="", keepalive=60)
    raw.send(mqtt_helpers.packet(mqtt_helpers.PINGREQ, 0, b""))
    assert raw.read_packet() == (mqtt_helpers.PINGRESP, 0, b"")
    raw.close()


# ---- authentication and permissions


def test_credentials_vhost_in_user_name_and_connack_codes(broker, port, clients, uname):
    vhost, user = uname("mqtt-vh"), uname("mqtt-user")
    for args in (["add_vhost", vhost], ["add_user", user, "s3cret"],
                 ["set_permissions", "-p", vhost, user, ".*", ".*", ".*"]):
        code, _, err = ctl(broker, *args)
        assert code == 0, err
    ok = connected(clients, username="%s:%s" % (vhost, user), password="s3cret")
    ok.subscribe("x/y", 1)
    code, out, _ = ctl(broker, "list_queues", "-p", vhost, "name")
    assert "qos1" in out
    assert clients(username=user, password="wrong").connect() == 4
    assert clients(username="no-such-vhost:" + user, password="s3cret").connect() == 4
    assert clients(username=user, password="s3cret").connect() == 5  # no access to "/"
    raw = RawClient(port)
    assert raw.connect(client_id="", username=user) == (False, 4)  # user name without password
    raw.close()


def test_publish_without_write_permission_closes_and_subscribe_is_refused(broker, clients,
                                                                          uname):
    user = uname("ro")
    for args in (["add_user", user, "pw"],
                 ["set_permissions", "-p", "/", user, "^mqtt-subscription-.*", "^mqtt-.*",
                  "^(mqtt-.*|amq\\.topic)$"]):
        code, _, err = ctl(broker, *args)
        assert code == 0, err
    c = connected(clients, username=user, password="pw")
    # Read on amq.topic and configure/write on its queues: subscribing works.
    assert c.subscribe("ok/topic", 1) == [1]
    code, _, err = ctl(broker, "set_permissions", "-p", "/", user, "^mqtt-subscription-.*",
                       "^mqtt-.*", "^mqtt-.*")
    assert code == 0, err
    assert c.subscribe("other/topic", 1) == [0x80]  # no read on amq.topic: refused
    c.c.publish("any/topic", b"x", 0)  # no write on amq.topic: the connection closes
    assert c.disconnected.wait(10)


def test_first_publish_without_write_permission_closes(broker, clients, uname):
    user = uname("nowrite")
    for args in (["add_user", user, "pw"], ["set_permissions", "-p", "/", user, ".*", "", ".*"]):
        code, _, err = ctl(broker, *args)
        assert code == 0, err
    c = connected(clients, username=user, password="pw")
    c.c.publish("any/topic", b"x", 1)
    assert c.disconnected.wait(10), "a publish without write permission was accepted"


def test_configured_exchange_and_default_vhost(warren_factory, tmp_path):
    conf = tmp_path / "rabbitmq.conf"
    conf.write_text("mqtt.exchange = iot.topic\nmqtt.vhost = iot\n")
    b = warren_factory("--config", str(conf))
    for args in (["add_vhost", "iot"], ["set_permissions", "-p", "iot", "guest", ".*", ".*", ".*"]):
        code, _, err = ctl(b, *args)
        assert code == 0, err
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", b.port, "iot"))
    try:
        ch = conn.channel()
        ch.exchange_declare("iot.topic", "topic", durable=True)
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(q, "iot.topic", "sensors.#")
        c = Client(mqtt_helpers.mqtt_port(b))  # guest, no vhost in the name: mqtt.vhost
        assert c.connect() == 0
        assert c.subscribe("sensors/+", 1) == [1]
        c.publish("sensors/t1", b"21.5", qos=1)
        [m] = c.expect(1)
        assert m.payload == b"21.5"
        method, _, body = amqp_helpers.consume_n(ch, q, 1)[0]
        assert (method.exchange, method.routing_key, body) == ("iot.topic", "sensors.t1", b"21.5")
        c.disconnect()
    finally:
        conn.close()


def test_anonymous_login_only_when_configured(port, warren_factory, tmp_path):
    # Off by default: a CONNECT without credentials is refused (bad user name or password).
    raw = RawClient(port)
    assert raw.connect(client_id="", username=None, password=None) == (False, 4)
    raw.close()
    # mqtt.allow_anonymous = true logs such a client in as mqtt.default_user.
    conf = tmp_path / "rabbitmq.conf"
    conf.write_text("mqtt.allow_anonymous = true\nmqtt.default_user = guest\n"
                    "mqtt.default_pass = guest\n")
    b = warren_factory("--config", str(conf))
    c = Client(mqtt_helpers.mqtt_port(b), username=None, password=None)
    assert c.connect() == 0
    c.disconnect()
    raw = RawClient(mqtt_helpers.mqtt_port(b))
    assert raw.connect(client_id="", username=None, password=None) == (False, 0)
    raw.close()


# ---- bad input


def test_malformed_and_unsupported_packets_close_only_that_connection(port, clients,
                                                                       broker_still_serves,
                                                                       uname):
    topic = uname("bad")
    bystander = connected(clients)
    bystander.subscribe(topic, 1)
    cases = [
        mqtt_helpers.publish_packet("a", b"x"),  # not CONNECT first
        b"\x10\xff\xff\xff\xff\x7f",  # a fifth remaining-length byte
        mqtt_helpers.connect_packet(flags_extra=0x01),  # reserved flag
        mqtt_helpers.packet(mqtt_helpers.CONNECT, 0, b"\x00\x04MQTT\x04"),  # truncated
        b"\x10" + mqtt_helpers.remaining_length(70000) + b"\x00" * 70000,  # over 64 KiB unauth.
    ]
    for data in cases:
        raw = RawClient(port)
        raw.send(data)
        assert raw.closed_by_broker(), data[:16]
        raw.close()
    # Unknown levels: CONNACK 1 (unacceptable protocol version), as RabbitMQ.
    for level in (6, 2):
        raw = RawClient(port)
        assert raw.connect(client_id="x", level=level) == (False, 1)
        assert raw.closed_by_broker()
        raw.close()
    # A 3.1.1-shaped CONNECT that says level 5 lacks 5.0's property length: the 5.0 CONNACK
    # says malformed packet (0x81).
    raw = RawClient(port)
    assert raw.connect(client_id="x", level=5) == (False, 0x81)
    assert raw.closed_by_broker()
    raw.close()
    # After CONNECT: a malformed PUBLISH (QoS 3), a wildcard topic, a second CONNECT.
    for data in (b"\x36\x03\x00\x01a", mqtt_helpers.publish_packet("a/+", b"x"),
                 mqtt_helpers.connect_packet()):
        raw = RawClient(port)
        assert raw.connect(client_id="") == (False, 0)
        raw.send(data)
        assert raw.closed_by_broker()
        raw.close()
    connected(clients).publish(topic, b"still fine", qos=1)
    [m] = bystander.expect(1)
    assert m.payload == b"still fine"


def test_mqtt_31_mqisdp_clients_connect(port):
    raw = RawClient(port)
    assert raw.connect(client_id="old-client", name="MQIsdp", level=3) == (False, 0)
    raw.close()


def test_invalid_subscription_filter_is_refused_in_suback(port):
    raw = RawClient(port)
    raw.connect(client_id="")
    raw.send(mqtt_helpers.subscribe_packet(3, [("a/#/b", 0), ("ok/#", 1)]))
    ptype, _, body = raw.read_packet()
    assert ptype == mqtt_helpers.SUBACK
    assert body == struct.pack("!H", 3) + b"\x80\x01"
    raw.close()


def test_large_payload_after_login(clients, uname):
    topic = uname("big")
    sub = connected(clients)
    sub.subscribe(topic, 1)
    payload = os.urandom(3 * 1024 * 1024)
    connected(clients).publish(topic, payload, qos=1, timeout=60)
    [m] = sub.expect(1, timeout=60)
    assert m.payload == payload
