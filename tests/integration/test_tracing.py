"""The firehose tracer (RabbitMQ's rabbit_trace): warrenctl trace_on / trace_off, the
amq.rabbitmq.trace exchange, and the trace messages of publishes, deliveries and basic.get with
RabbitMQ 3.10.8's routing keys, headers (names, order, AMQP types) and bodies, as a pika/raw
consumer of a real 3.10.8 node saw them side by side."""

import re

import pika
import pytest

from amqp_helpers import expect_channel_closed, wait_until
from mqtt_helpers import Client, mqtt_port
from test_management_api import call as api
from test_warrenctl import RABBITMQCTL_LINK, ctl, rows
from tracing_helpers import FirehoseReader

PUBLISH_HEADERS = ["exchange_name", "routing_keys", "properties", "node", "vhost",
                   "connection", "channel", "user", "routed_queues"]
PUBLISH_TYPES = ["S", "A", "F", "S", "S", "S", "I", "S", "A"]
DELIVER_HEADERS = ["exchange_name", "routing_keys", "properties", "node", "redelivered",
                   "vhost", "connection", "channel", "user"]
DELIVER_TYPES = ["S", "A", "F", "S", "I", "S", "S", "I", "S"]
CONNECTION_NAME = re.compile(r"^127\.0\.0\.1:\d+ -> 127\.0\.0\.1:(\d+)$")

FULL_PROPERTIES = dict(
    content_type="text/plain", content_encoding="gzip",
    headers={"h-int": 7, "h-str": "v", "h-list": [1, "two"], "h-table": {"x": 1}},
    delivery_mode=2, priority=3, correlation_id="corr", reply_to="rt", expiration="60000",
    message_id="mid", timestamp=1700000000, type="ty", user_id="guest", app_id="app",
    cluster_id="cl")
# rabbit_trace's properties table: the properties set, in reverse spec order, integers as
# signedint ('I'), the headers as a table ('F'), the rest long strings.
FULL_PROPERTIES_TABLE = [
    ("cluster_id", "S", "cl"), ("app_id", "S", "app"), ("user_id", "S", "guest"),
    ("type", "S", "ty"), ("timestamp", "I", 1700000000), ("message_id", "S", "mid"),
    ("expiration", "S", "60000"), ("reply_to", "S", "rt"), ("correlation_id", "S", "corr"),
    ("priority", "I", 3), ("delivery_mode", "I", 2), ("headers", "F", None),
    ("content_encoding", "S", "gzip"), ("content_type", "S", "text/plain")]


@pytest.fixture
def server(warren_factory):
    return warren_factory()


def connect(b, vhost="/"):
    return pika.BlockingConnection(pika.ConnectionParameters(
        host=b.host, port=b.port, virtual_host=vhost))


def trace_on(b, vhost="/"):
    rc, out, err = ctl(b, "trace_on", "-p", vhost)
    assert rc == 0, (out, err)


def trace_off(b, vhost="/"):
    rc, out, err = ctl(b, "trace_off", "-p", vhost)
    assert rc == 0, (out, err)


def add_vhost(b, vhost):
    assert ctl(b, "add_vhost", vhost)[0] == 0
    assert ctl(b, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")[0] == 0


def typed_properties(t):
    """The trace's properties table as (name, type, value) with the headers' value left out."""
    code, entries = dict(t.typed)["properties"]
    assert code == "F"
    out = []
    for name, (kind, value) in entries:
        if isinstance(value, bytes):
            value = value.decode()
        out.append((name, kind, None if kind == "F" else value))
    return out


def check_common(t, b, exchange, routing_keys):
    assert t.exchange == "amq.rabbitmq.trace"
    assert t.flags == 0x2000, "a trace message carries its headers and no other property"
    assert t["exchange_name"] == exchange
    assert t["routing_keys"] == routing_keys
    assert t["node"].startswith("warren@")
    assert t["vhost"] == "/"
    assert t["user"] == "guest"
    m = CONNECTION_NAME.match(t["connection"])
    assert m and int(m.group(1)) == b.port, t["connection"]


# -- warrenctl ---------------------------------------------------------------------------------

def test_trace_on_and_off_print_rabbitmqctls_lines(server):
    rc, out, err = ctl(server, "trace_on")
    assert (rc, out, err) == (0, 'Starting tracing for vhost "/" ...\nTrace enabled for vhost /\n', "")
    rc, out, _ = ctl(server, "list_vhosts", "name", "tracing", "-q")
    assert rows(out) == [["name", "tracing"], ["/", "true"]]
    # again: still fine, as rabbit_trace:start of a traced vhost
    assert ctl(server, "trace_on", "-p", "/")[:2] == (
        0, 'Starting tracing for vhost "/" ...\nTrace enabled for vhost /\n')
    rc, out, err = ctl(server, "trace_off", binary=RABBITMQCTL_LINK)
    assert (rc, out, err) == (0, 'Stopping tracing for vhost "/" ...\nTrace disabled for vhost /\n', "")
    rc, out, _ = ctl(server, "list_vhosts", "name", "tracing", "-q")
    assert rows(out) == [["name", "tracing"], ["/", "false"]]
    # -q drops the banner only
    assert ctl(server, "trace_off", "-q")[:2] == (0, "Trace disabled for vhost /\n")
    # a positional argument is a usage error
    assert ctl(server, "trace_on", "extra")[0] == 64


def test_trace_exchange_is_declared_internal_in_every_vhost(server):
    add_vhost(server, "other")
    for vhost in ("/", "other"):
        rc, out, _ = ctl(server, "list_exchanges", "-p", vhost, "name", "type", "durable",
                         "auto_delete", "internal", "-q")
        assert ["amq.rabbitmq.trace", "topic", "true", "false", "true"] in rows(out)
    c = connect(server)
    ch = c.channel()
    e = expect_channel_closed(ch, c, ch.basic_publish, "amq.rabbitmq.trace", "publish.x",
                              b"forged")
    assert e.reply_code == 403
    assert "cannot publish to internal exchange 'amq.rabbitmq.trace'" in e.reply_text
    c.close()


# -- what is traced ----------------------------------------------------------------------------

def test_publishes_are_traced_with_rabbitmqs_headers(server):
    trace_on(server)
    fh = FirehoseReader(server.port)
    c = connect(server)
    ch = c.channel()
    ch.queue_declare("tq-b", exclusive=True)
    ch.queue_declare("tq-a", exclusive=True)
    ch.queue_bind("tq-b", "amq.direct", "k")
    ch.queue_bind("tq-a", "amq.direct", "k")
    ch.basic_publish("", "tq-a", b"to the default exchange",
                     pika.BasicProperties(**FULL_PROPERTIES))
    ch.basic_publish("amq.direct", "k", b"to two queues")
    ch.basic_publish("amq.fanout", "nobody", b"unroutable")
    ch.basic_publish("", "no-such-queue", b"")
    default, direct, unroutable, missing = fh.take(4)

    assert default.routing_key == "publish."
    assert default.names() == PUBLISH_HEADERS
    assert [default.code(n) for n in PUBLISH_HEADERS] == PUBLISH_TYPES
    check_common(default, server, "", ["tq-a"])
    assert default.body == b"to the default exchange"
    assert default.code("channel") == "I" and default["channel"] == 1
    assert default["routed_queues"] == ["tq-a"]
    assert typed_properties(default) == FULL_PROPERTIES_TABLE
    assert default["properties"]["headers"] == {"h-int": 7, "h-str": "v", "h-list": [1, "two"],
                                                "h-table": {"x": 1}}

    assert direct.routing_key == "publish.amq.direct"
    check_common(direct, server, "amq.direct", ["k"])
    assert direct.body == b"to two queues"
    assert direct["routed_queues"] == ["tq-a", "tq-b"]  # sorted, as RabbitMQ's usort
    assert direct.typed[2] == ("properties", ("F", []))

    assert unroutable.routing_key == "publish.amq.fanout"
    assert unroutable["routed_queues"] == []
    # The default exchange names its queue by the routing key, existing or not (as RabbitMQ).
    assert missing["routed_queues"] == ["no-such-queue"]
    assert missing.body == b""

    # The connection is the publisher's, as warrenctl lists it.
    rc, out, _ = ctl(server, "list_connections", "name", "-q")
    assert default["connection"] in [r[0] for r in rows(out)[1:]]
    c.close()
    fh.close()


def test_deliveries_and_gets_are_traced(server):
    trace_on(server)
    fh = FirehoseReader(server.port, binding="deliver.#")
    c = connect(server)
    ch = c.channel()
    ch.queue_declare("dq", exclusive=True)
    ch.basic_publish("", "dq", b"first", pika.BasicProperties(**FULL_PROPERTIES))
    ch.basic_publish("", "dq", b"second")
    method, _, body = ch.basic_get("dq")
    assert body == b"first"
    ch.basic_nack(method.delivery_tag, requeue=True)
    got = []
    ch2 = c.channel()
    ch2.basic_consume("dq", lambda chan, m, p, b: got.append((m, b)))
    wait_until(lambda: len(got) == 2, connection=c)
    assert [b for _, b in got] == [b"first", b"second"]
    for m, _ in got:
        ch2.basic_ack(m.delivery_tag)

    get, redelivery, second = fh.take(3)
    for t in (get, redelivery, second):
        assert t.routing_key == "deliver.dq"
        assert t.names() == DELIVER_HEADERS
        assert [t.code(n) for n in DELIVER_HEADERS] == DELIVER_TYPES
        check_common(t, server, "", ["dq"])
    assert (get["channel"], get["redelivered"], get.body) == (1, 0, b"first")
    assert typed_properties(get) == FULL_PROPERTIES_TABLE
    assert (redelivery["channel"], redelivery["redelivered"], redelivery.body) == (2, 1, b"first")
    assert (second["channel"], second["redelivered"], second.body) == (2, 0, b"second")
    assert second.typed[2] == ("properties", ("F", []))
    # Consuming the firehose itself is not traced (no loop), and nothing else came.
    assert fh.nothing_within(0.5)
    c.close()
    fh.close()


def test_nothing_is_traced_while_off_or_after_trace_off(server):
    fh = FirehoseReader(server.port)
    c = connect(server)
    ch = c.channel()
    ch.queue_declare("oq", exclusive=True)
    ch.basic_publish("", "oq", b"untraced")
    assert ch.basic_get("oq", auto_ack=True)[2] == b"untraced"
    assert fh.nothing_within(0.5)

    trace_on(server)
    ch.basic_publish("", "oq", b"traced")
    assert fh.next().routing_key == "publish."
    trace_off(server)
    ch.basic_publish("", "oq", b"after trace_off")
    assert ch.basic_get("oq", auto_ack=True)[2] == b"traced"
    assert ch.basic_get("oq", auto_ack=True)[2] == b"after trace_off"
    assert fh.nothing_within(0.5)
    c.close()
    fh.close()


def test_other_vhosts_are_untouched(server):
    add_vhost(server, "v2")
    trace_on(server, "/")
    fh_root = FirehoseReader(server.port, vhost="/")
    fh_v2 = FirehoseReader(server.port, vhost="v2")
    c2 = connect(server, "v2")
    ch2 = c2.channel()
    ch2.queue_declare("q", exclusive=True)
    ch2.basic_publish("", "q", b"in v2")
    assert ch2.basic_get("q", auto_ack=True)[2] == b"in v2"
    c = connect(server)
    c.channel().basic_publish("", "whatever", b"in /")
    t = fh_root.next()
    assert (t.body, t["vhost"]) == (b"in /", "/")
    assert fh_v2.nothing_within(0.5)
    assert fh_root.nothing_within(0.2)

    # and v2 on its own: its traces stay in v2
    trace_on(server, "v2")
    ch2.basic_publish("", "q", b"traced in v2")
    t = fh_v2.next()
    assert (t.routing_key, t.body, t["vhost"]) == ("publish.", b"traced in v2", "v2")
    assert fh_root.nothing_within(0.3)
    for x in (c, c2, fh_root, fh_v2):
        x.close()


def test_trace_on_a_vhost_that_does_not_exist_yet(server):
    # As rabbitmqctl 3.10.8: accepted, and the vhost is traced once created.
    rc, out, _ = ctl(server, "trace_on", "-p", "later")
    assert (rc, out) == (0, 'Starting tracing for vhost "later" ...\nTrace enabled for vhost later\n')
    rc, out, _ = ctl(server, "list_vhosts", "name", "tracing", "-q")
    assert rows(out) == [["name", "tracing"], ["/", "false"]]
    add_vhost(server, "later")
    rc, out, _ = ctl(server, "list_vhosts", "name", "tracing", "-q")
    assert ["later", "true"] in rows(out)
    fh = FirehoseReader(server.port, vhost="later")
    c = connect(server, "later")
    c.channel().basic_publish("", "k", b"x")
    assert fh.next()["vhost"] == "later"
    c.close()
    fh.close()


def test_tracing_is_off_after_a_restart(restartable_broker):
    # RabbitMQ keeps the traced vhosts in the node's memory (rabbit's trace_vhosts setting).
    b = restartable_broker.start()
    trace_on(b)
    b = restartable_broker.restart()
    rc, out, _ = ctl(b, "list_vhosts", "name", "tracing", "-q")
    assert rows(out) == [["name", "tracing"], ["/", "false"]]
    fh = FirehoseReader(b.port)
    c = connect(b)
    c.channel().basic_publish("", "k", b"x")
    assert fh.nothing_within(0.5)
    c.close()
    fh.close()


def test_broker_keeps_serving_under_tracing(server):
    trace_on(server)
    fh = FirehoseReader(server.port)
    c = connect(server)
    ch = c.channel()
    ch.queue_declare("busy", exclusive=True)
    # an unconsumed trace queue as well, which fills up
    ch.queue_declare("kept-traces", exclusive=True)
    ch.queue_bind("kept-traces", "amq.rabbitmq.trace", "#")
    ch.confirm_delivery()
    n = 500
    for i in range(n):
        ch.basic_publish("", "busy", b"m%d" % i)
    got = []
    ch.basic_consume("busy", lambda chan, m, p, b: got.append(b), auto_ack=True)
    wait_until(lambda: len(got) == n, connection=c)
    assert got == [b"m%d" % i for i in range(n)]
    traces = fh.take(2 * n, timeout=60)
    assert [t.routing_key for t in traces].count("publish.") == n
    assert [t.routing_key for t in traces].count("deliver.busy") == n
    assert wait_until(lambda: ch.queue_declare("kept-traces", passive=True)
                      .method.message_count == 2 * n)
    trace_off(server)
    ch.basic_publish("", "busy", b"last")
    wait_until(lambda: len(got) == n + 1, connection=c)
    assert fh.nothing_within(0.3)
    c.close()
    fh.close()


def test_mqtt_publishes_and_deliveries_are_traced(server):
    # Protocol neutral: MQTT goes through the same publish path and queue dispatch. As RabbitMQ's
    # MQTT plugin, the client shows as channel 1 of a connection named after its socket.
    trace_on(server)
    fh = FirehoseReader(server.port)
    sub = Client(mqtt_port(server), client_id="trace-sub")
    pub = Client(mqtt_port(server), client_id="trace-pub")
    try:
        assert sub.connect() == 0 and pub.connect() == 0
        sub.subscribe("t/x", qos=1)
        pub.publish("t/x", b"over mqtt", qos=1)
        assert [m.payload for m in sub.expect(1)] == [b"over mqtt"]
        publish, deliver = fh.take(2)
        queue = "mqtt-subscription-trace-subqos1"
        assert publish.routing_key == "publish.amq.topic"
        assert (publish["routing_keys"], publish["routed_queues"]) == (["t.x"], [queue])
        assert deliver.routing_key == "deliver." + queue
        for t in (publish, deliver):
            assert t.body == b"over mqtt"
            assert (t["user"], t["channel"], t["vhost"]) == ("guest", 1, "/")
            m = CONNECTION_NAME.match(t["connection"])
            assert m and int(m.group(1)) == mqtt_port(server), t["connection"]
    finally:
        sub.disconnect()
        pub.disconnect()
        fh.close()


def test_stomp_publishes_and_deliveries_are_traced(server):
    import socket as socketlib
    trace_on(server)
    fh = FirehoseReader(server.port)
    port = server.listener_port("STOMP")
    s = socketlib.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\x00"
                  b"SUBSCRIBE\nid:0\ndestination:/queue/trace-stomp\n\n\x00"
                  b"SEND\ndestination:/queue/trace-stomp\n\nover stomp\x00")
        publish, deliver = fh.take(2)
        assert publish.routing_key == "publish."
        assert (publish["routing_keys"], publish["routed_queues"]) == (["trace-stomp"], ["trace-stomp"])
        assert deliver.routing_key == "deliver.trace-stomp"
        for t in (publish, deliver):
            assert t.body == b"over stomp"
            assert (t["user"], t["channel"], t["vhost"]) == ("guest", 1, "/")
            m = CONNECTION_NAME.match(t["connection"])
            assert m and int(m.group(1)) == port, t["connection"]
    finally:
        s.close()
        fh.close()


def test_management_api_shows_and_switches_tracing(server):
    # The management UI's switch: PUT /api/vhosts/{vhost} {"tracing": ...} (rabbit_vhost:put_vhost).
    assert api(server, "GET", "/api/vhosts/%2F")[1]["tracing"] is False
    assert api(server, "PUT", "/api/vhosts/%2F", {"tracing": True})[0] == 204
    assert api(server, "GET", "/api/vhosts/%2F")[1]["tracing"] is True
    assert rows(ctl(server, "list_vhosts", "name", "tracing", "-q")[1]) == [
        ["name", "tracing"], ["/", "true"]]
    fh = FirehoseReader(server.port)
    # A message published through the API is traced with the HTTP user.
    status, body, _ = api(server, "POST", "/api/exchanges/%2F/amq.default/publish",
                          {"routing_key": "nowhere", "payload": "via http",
                           "payload_encoding": "string", "properties": {}})
    assert status == 200, body
    t = fh.next()
    assert (t.routing_key, t.body, t["user"]) == ("publish.", b"via http", "guest")
    # a PUT without the field leaves tracing as it is
    assert api(server, "PUT", "/api/vhosts/%2F", {})[0] == 204
    assert api(server, "GET", "/api/vhosts/%2F")[1]["tracing"] is True
    assert api(server, "PUT", "/api/vhosts/%2F", {"tracing": False})[0] == 204
    assert api(server, "GET", "/api/vhosts/%2F")[1]["tracing"] is False
    fh.close()
