"""STOMP over WebSocket (RabbitMQ's rabbitmq_web_stomp: port 15674, path /ws, subprotocols
v10.stomp, v11.stomp, v12.stomp, text frames) with websocket-client, interoperating with AMQP
(pika)."""

import pytest
import websocket  # python3-websocket (websocket-client)

import amqp_helpers


@pytest.fixture
def ws_url(broker):
    return "ws://127.0.0.1:%d/ws" % broker.listener_port("web STOMP")


def frame(command, headers, body=""):
    lines = [command] + ["%s:%s" % kv for kv in headers.items()]
    return "\n".join(lines) + "\n\n" + body + "\x00"


def parse(text):
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    headers = dict(line.split(":", 1) for line in lines[1:] if line)
    return lines[0], headers, body.rstrip("\x00")


class FrameReader(object):
    """Frames from a WebSocket: a message may hold several frames (replies are batched) and
    heart-beat newlines, so the messages are read as one stream split at NUL."""

    def __init__(self, ws):
        self.ws = ws
        self.buf = ""

    def next(self):
        while True:
            self.buf = self.buf.lstrip("\r\n")
            if "\x00" in self.buf:
                text, _, self.buf = self.buf.partition("\x00")
                return parse(text)
            data = self.ws.recv()
            self.buf += data.decode() if isinstance(data, bytes) else data


def test_stomp_over_websocket_to_and_from_amqp(ws_url, connection):
    q = amqp_helpers.unique("wsq")
    ws = websocket.create_connection(ws_url, subprotocols=["v12.stomp"], timeout=10)
    reader = FrameReader(ws)
    try:
        assert ws.getsubprotocol() == "v12.stomp"
        ws.send(frame("CONNECT", {"accept-version": "1.2", "host": "/", "login": "guest",
                                  "passcode": "guest"}))
        command, headers, _ = reader.next()
        assert command == "CONNECTED" and headers["version"] == "1.2"
        ws.send(frame("SUBSCRIBE", {"id": "s1", "destination": "/queue/" + q, "ack": "auto"}))
        ws.send(frame("SEND", {"destination": "/queue/" + q, "receipt": "r1"}, "over websocket"))
        seen = {}
        while len(seen) < 2:
            command, headers, body = reader.next()
            seen[command] = (headers, body)
        assert seen["RECEIPT"][0]["receipt-id"] == "r1"
        assert seen["MESSAGE"][1] == "over websocket"
        # An AMQP publish reaches the WebSocket subscriber.
        connection.channel().basic_publish("", q, b"from amqp")
        command, headers, body = reader.next()
        assert (command, body) == ("MESSAGE", "from amqp")
        assert headers["destination"] == "/queue/" + q
    finally:
        ws.close()


def test_web_stomp_refuses_other_paths_and_subprotocols(ws_url):
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        websocket.create_connection(ws_url.replace("/ws", "/stomp"), timeout=10)
    assert e.value.status_code == 404
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        websocket.create_connection(ws_url, subprotocols=["mqtt"], timeout=10)
    assert e.value.status_code == 400
