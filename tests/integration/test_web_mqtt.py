"""MQTT over WebSocket (RabbitMQ's rabbitmq_web_mqtt: port 15675, path /ws, subprotocol mqtt),
driven by paho-mqtt's websockets transport and websocket-client, interoperating with MQTT over
TCP and AMQP (pika)."""

import socket

import pytest
import websocket  # python3-websocket (websocket-client)

import amqp_helpers
import mqtt_helpers
from mqtt_helpers import Client, Client5, PacketTypes, Properties


@pytest.fixture
def ws_port(broker):
    return mqtt_helpers.web_mqtt_port(broker)


def name(prefix):
    return amqp_helpers.unique(prefix).replace(".", "-")


def test_websocket_subscriber_gets_tcp_mqtt_and_amqp_publishes(broker, ws_port, connection):
    topic = name("ws")
    sub = Client(ws_port, websocket_path="/ws")
    pub = Client(mqtt_helpers.mqtt_port(broker))
    try:
        assert sub.connect() == 0
        assert sub.subscribe(topic + "/#", 1) == [1]
        assert pub.connect() == 0
        pub.publish(topic + "/tcp", b"from tcp\x00", qos=1)
        connection.channel().basic_publish("amq.topic", topic + ".amqp", b"from amqp")
        got = {m.topic: m.payload for m in sub.expect(2)}
        assert got == {topic + "/tcp": b"from tcp\x00", topic + "/amqp": b"from amqp"}
        # And back: a WebSocket publisher reaches the TCP client.
        pub.subscribe(topic + "/back", 0)
        sub.publish(topic + "/back", b"over ws", qos=1)
        [m] = pub.expect(1)
        assert m.payload == b"over ws"
    finally:
        sub.disconnect()
        pub.disconnect()


def test_mqtt5_over_websocket(broker, ws_port):
    # The same connection class serves MQTT 5.0 over WebSocket: properties both ways, and the
    # listing says "Web MQTT 5.0".
    from test_management_api import call
    cid, topic = name("ws5"), name("ws5")
    sub = Client5(ws_port, client_id=cid, websocket_path="/ws")
    pub = Client5(mqtt_helpers.mqtt_port(broker))
    try:
        assert sub.connect() == 0
        assert sub.connack_properties.MaximumQoS == 1
        assert sub.subscribe(topic, 1, subscription_id=7) == [1]
        assert pub.connect() == 0
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "text/plain"
        props.UserProperty = [("k", "v")]
        pub.publish(topic, b"five", qos=1, properties=props)
        [m] = sub.expect(1)
        assert m.payload == b"five"
        assert m.properties.ContentType == "text/plain"
        assert m.properties.UserProperty == [("k", "v")]
        assert m.properties.SubscriptionIdentifier == [7]
        status, body, _ = call(broker, "GET", "/api/connections")
        mine = [x for x in body if x["client_properties"].get("client_id") == cid]
        assert mine and mine[0]["protocol"] == "Web MQTT 5.0"
    finally:
        sub.disconnect()
        pub.disconnect()


def test_websocket_connection_is_listed_as_web_mqtt(broker, ws_port):
    from test_management_api import call
    cid = name("wsc")
    c = Client(ws_port, client_id=cid, websocket_path="/ws")
    try:
        assert c.connect() == 0

        def listed():
            status, body, _ = call(broker, "GET", "/api/connections")
            return [x for x in body if x["client_properties"].get("client_id") == cid]

        amqp_helpers.wait_until(lambda: listed())
        assert listed()[0]["protocol"] == "Web MQTT 3.1.1"
    finally:
        c.disconnect()


def test_wrong_path_is_refused_and_any_subprotocol_accepted(ws_port):
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        websocket.create_connection("ws://127.0.0.1:%d/other" % ws_port, subprotocols=["mqtt"],
                                    timeout=10)
    assert e.value.status_code == 404
    # As RabbitMQ 3.10.8's web MQTT: another subprotocol is echoed, and MQTT works over it.
    ws = websocket.create_connection("ws://127.0.0.1:%d/ws" % ws_port, subprotocols=["foo"],
                                     timeout=10)
    assert ws.getsubprotocol() == "foo"
    ws.send_binary(mqtt_helpers.connect_packet(client_id=name("foo")))
    assert ws.recv() == b"\x20\x02\x00\x00"
    ws.close()
    # Plain MQTT bytes on the WebSocket port are not an upgrade: the socket closes.
    s = socket.create_connection(("127.0.0.1", ws_port), timeout=10)
    s.sendall(mqtt_helpers.connect_packet())
    s.settimeout(10)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    assert not data.startswith(b"\x20")  # no CONNACK
    s.close()


def test_raw_websocket_frames_carry_mqtt_packets(ws_port):
    ws = websocket.create_connection("ws://127.0.0.1:%d/ws" % ws_port, subprotocols=["mqtt"],
                                     timeout=10)
    try:
        assert ws.getsubprotocol() == "mqtt"
        # CONNECT split over two WebSocket messages: the bytes form one stream.
        packet = mqtt_helpers.connect_packet(client_id=name("raw"))
        ws.send_binary(packet[:5])
        ws.send_binary(packet[5:])
        reply = ws.recv()
        assert reply == b"\x20\x02\x00\x00"
    finally:
        ws.close()
