"""Topic permissions (RabbitMQ 3.10's topic authorisation) end to end: pika (basic.publish to a
topic exchange checks the routing key against `write`; queue/exchange bind and unbind from a
topic exchange check the binding key against `read`), paho-mqtt (PUBLISH and SUBSCRIBE, with
{client_id}), stomp.py (SEND and SUBSCRIBE), warrenctl's verbs, the management API, definitions
and a restart.

Expected texts and outputs were taken from RabbitMQ 3.10.8 (rabbitmq_management, rabbitmq_mqtt
and rabbitmq_stomp enabled): the 403 texts, STOMP's ERROR frames (a /topic/ SUBSCRIBE refusal
carries the bare reason, without "ACCESS_REFUSED - "), rabbitmqctl's outputs (data/rabbitmqctl-
3.10.8-topic-permissions-outputs.txt) and the API's statuses and bodies. Where Warren differs on
purpose: a refused MQTT SUBSCRIBE gets the SUBACK failure code (0x80; 0x87 with MQTT 5.0) as
RabbitMQ 3.13 answers, where 3.10 closed the connection."""

import json
import os
import shlex
import socket
import threading
import time

import paho.mqtt.client as paho
import pika
import pika.exceptions
import pytest

import mqtt_helpers
import warren_process
from test_management_api import call
from test_warrenctl import ctl
from test_warrenctl_tenancy import golden, normalized

stomp = __import__("stomp") if os.environ.get("CI") else pytest.importorskip("stomp")

USER, PASSWORD = "tpuser", "tppass"
REFUSED = ("ACCESS_REFUSED - access to topic '%s' in exchange '%s' in vhost '%s' refused for "
           "user '%s'")


def refused_text(key, exchange="amq.topic", vhost="/", user=USER):
    return REFUSED % (key, exchange, vhost, user)


def ok(result):
    rc, out, err = result
    assert rc == 0, (out, err)
    return out


@pytest.fixture
def server(warren_factory):
    """A broker with MQTT and STOMP, and a user with full permissions on / (and no topic
    permissions yet)."""
    b = warren_factory()
    ok(ctl(b, "add_user", USER, PASSWORD))
    ok(ctl(b, "set_permissions", USER, ".*", ".*", ".*"))
    return b


def connect(b, user=USER, password=PASSWORD, vhost="/"):
    return pika.BlockingConnection(pika.ConnectionParameters(
        host=b.host, port=b.port, virtual_host=vhost,
        credentials=pika.PlainCredentials(user, password)))


def amqp_outcome(b, action, **kwargs):
    """Runs action(channel) on a fresh connection; "ok", or the channel's close (code, text).
    A basic.qos after the action is the round trip that proves a publish was accepted."""
    c = connect(b, **kwargs)
    ch = c.channel()
    try:
        action(ch)
        ch.basic_qos(prefetch_count=1)
        return "ok"
    except pika.exceptions.ChannelClosedByBroker as e:
        return (e.reply_code, e.reply_text)
    finally:
        if c.is_open:
            c.close()


def publish(exchange, key):
    return lambda ch: ch.basic_publish(exchange, key, b"m")


def bind(key, exchange="amq.topic"):
    def action(ch):
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(q, exchange, key)
    return action


# ---- AMQP 0-9-1

def test_amqp_publish_checks_the_routing_key_against_write(server):
    ok(ctl(server, "set_topic_permissions", USER, "amq.topic", r"^a\.", r"^b\."))
    # A queue bound for everything (by guest, who has no topic permissions) shows which
    # publishes were routed.
    c = connect(server, user="guest", password="guest")
    ch = c.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "amq.topic", "#")
    assert amqp_outcome(server, publish("amq.topic", "a.1")) == "ok"
    assert amqp_outcome(server, publish("amq.topic", "z.1")) == (403, refused_text("z.1"))
    # Only topic exchanges are checked, and only the exchange the permission names.
    assert amqp_outcome(server, publish("amq.direct", "z.1")) == "ok"
    ch.exchange_declare("other.topic", "topic")
    assert amqp_outcome(server, publish("other.topic", "z.1")) == "ok"
    # A refused publish inside a transaction is refused at basic.publish, as RabbitMQ.
    def tx(chan):
        chan.tx_select()
        chan.basic_publish("amq.topic", "z.2", b"m")
    assert amqp_outcome(server, tx) == (403, refused_text("z.2"))
    # A missing exchange is reported as missing, not as a topic refusal.
    assert amqp_outcome(server, publish("nosuch.x", "z.1")) == (
        404, "NOT_FOUND - no exchange 'nosuch.x' in vhost '/'")
    got = [ch.basic_get(q, auto_ack=True)[0] for _ in range(2)]
    assert [m.routing_key if m else None for m in got] == ["a.1", None]
    # Other users (here guest, with no topic permissions) are not affected.
    assert amqp_outcome(server, publish("amq.topic", "z.1"), user="guest",
                        password="guest") == "ok"
    c.close()


def test_amqp_bindings_check_the_binding_key_against_read(server):
    ok(ctl(server, "set_topic_permissions", USER, "amq.topic", r"^a\.", r"^b\."))
    assert amqp_outcome(server, bind("b.#")) == "ok"
    assert amqp_outcome(server, bind("z.#")) == (403, refused_text("z.#"))
    assert amqp_outcome(server, bind("z.#", "amq.direct")) == "ok"

    def unbind(ch):
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_unbind(q, "amq.topic", "z.q")
    assert amqp_outcome(server, unbind) == (403, refused_text("z.q"))
    # exchange.bind/unbind: the source is the topic exchange.
    assert amqp_outcome(server, lambda ch: ch.exchange_bind("amq.fanout", "amq.topic", "z.e")) \
        == (403, refused_text("z.e"))
    assert amqp_outcome(server,
                        lambda ch: ch.exchange_unbind("amq.fanout", "amq.topic", "z.e")) \
        == (403, refused_text("z.e"))
    assert amqp_outcome(server, lambda ch: ch.exchange_bind("amq.fanout", "amq.topic", "b.e")) \
        == "ok"
    # A binding from a missing exchange fails as missing.
    assert amqp_outcome(server, bind("z.#", "nosuch.x")) == (
        404, "NOT_FOUND - no exchange 'nosuch.x' in vhost '/'")


def test_amqp_variables_and_changes_on_open_channels(server):
    ok(ctl(server, "add_vhost", "tv"))
    ok(ctl(server, "set_permissions", "-p", "tv", USER, ".*", ".*", ".*"))
    ok(ctl(server, "set_topic_permissions", "-p", "tv", USER, "amq.topic",
           r"^{username}\.{vhost}\.", r"^{client_id}$"))
    assert amqp_outcome(server, publish("amq.topic", "tpuser.tv.x"), vhost="tv") == "ok"
    assert amqp_outcome(server, publish("amq.topic", "guest.tv.x"), vhost="tv") == (
        403, refused_text("guest.tv.x", vhost="tv"))
    # {client_id} is not a variable for AMQP 0-9-1: the pattern keeps it literally.
    assert amqp_outcome(server, bind("{client_id}"), vhost="tv") == "ok"
    assert amqp_outcome(server, bind("x"), vhost="tv") == (
        403, refused_text("x", vhost="tv"))
    # Permissions in vhost tv do not apply in /.
    assert amqp_outcome(server, publish("amq.topic", "guest.tv.x")) == "ok"

    # A change applies to the next publish of an open channel, and clearing restores it.
    c = connect(server)
    ch = c.channel()
    ch.basic_publish("amq.topic", "z.1", b"m")
    ch.basic_qos(prefetch_count=1)
    ok(ctl(server, "set_topic_permissions", USER, "amq.topic", r"^a\.", ".*"))
    ch.basic_publish("amq.topic", "a.1", b"m")
    ch.basic_qos(prefetch_count=1)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.basic_publish("amq.topic", "z.1", b"m")
        ch.basic_qos(prefetch_count=1)
    assert (e.value.reply_code, e.value.reply_text) == (403, refused_text("z.1"))
    ok(ctl(server, "clear_topic_permissions", USER, "amq.topic"))
    ch = c.channel()
    ch.basic_publish("amq.topic", "z.1", b"m")
    ch.basic_qos(prefetch_count=1)
    c.close()


def test_empty_pattern_permits_only_the_empty_key(server):
    ok(ctl(server, "set_topic_permissions", USER, "amq.topic", "", ""))
    assert amqp_outcome(server, publish("amq.topic", "")) == "ok"
    assert amqp_outcome(server, publish("amq.topic", "a")) == (403, refused_text("a"))
    assert amqp_outcome(server, bind("a")) == (403, refused_text("a"))


# ---- MQTT

def mqtt_client(server, client_id, protocol=paho.MQTTv311):
    c = mqtt_helpers.Client(mqtt_helpers.mqtt_port(server), client_id=client_id,
                            username=USER, password=PASSWORD, protocol=protocol)
    assert c.connect() == 0
    return c


def test_mqtt_publish_and_subscribe(server):
    ok(ctl(server, "set_topic_permissions", USER, "amq.topic",
           r"^a\.|^c\.{client_id}\.", r"^b\.|^c\.{client_id}\."))
    c = mqtt_client(server, "cid1")
    # SUBSCRIBE: read on the binding key; a refused filter gets 0x80, the others their QoS.
    assert c.subscribe([("b/x", 1), ("z/x", 1), ("c/cid1/#", 0)]) == [1, 0x80, 0]
    assert c.subscribe("c/cid2/#", 0) == [0x80]
    # PUBLISH: write on the routing key, {client_id} expanded; routed to the subscriptions.
    c.publish("c/cid1/x", b"mine", qos=1)
    assert [(m.topic, m.payload) for m in c.expect(1)] == [("c/cid1/x", b"mine")]
    c.publish("a/x", b"a", qos=1)
    assert not c.disconnected.is_set()
    # A refused publish closes the connection, as the other write refusals do.
    c.c.publish("c/cid2/x", b"other", qos=1)
    assert c.disconnected.wait(10)
    c.disconnect()
    # The refused message went nowhere: another client with the same subscription sees the
    # next allowed message only.
    d = mqtt_client(server, "cid2")
    assert d.subscribe("c/cid2/#", 1) == [1]
    d.publish("c/cid2/y", b"allowed", qos=1)
    assert [(m.topic, m.payload) for m in d.expect(1)] == [("c/cid2/y", b"allowed")]
    d.expect_none()
    d.disconnect()


def test_mqtt_will_needs_write_on_its_topic(server):
    ok(ctl(server, "set_topic_permissions", USER, "amq.topic", r"^will\.ok\.", ".*"))
    watcher = mqtt_helpers.Client(mqtt_helpers.mqtt_port(server), client_id="watcher",
                                  username="guest", password="guest")
    assert watcher.connect() == 0
    assert watcher.subscribe("will/#", 1) == [1]
    for client_id, topic in (("w1", "will/no/x"), ("w2", "will/ok/x")):
        c = mqtt_helpers.Client(mqtt_helpers.mqtt_port(server), client_id=client_id,
                                username=USER, password=PASSWORD,
                                will=(topic, b"gone", 1, False))
        assert c.connect() == 0
        # Gone without a DISCONNECT: the network thread first, then the socket.
        c.c.loop_stop()
        sock = c.c.socket()
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    # Only the permitted will arrives (the refused one was sent first).
    assert [m.topic for m in watcher.expect(1)] == ["will/ok/x"]
    watcher.expect_none()
    watcher.disconnect()


def test_mqtt5_refused_subscribe_is_not_authorized(server):
    ok(ctl(server, "set_topic_permissions", USER, "amq.topic", ".*", r"^b\."))
    codes, got = [], threading.Event()
    c = paho.Client(client_id="cid5", protocol=paho.MQTTv5)
    c.username_pw_set(USER, PASSWORD)

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        codes.extend(rc.value for rc in reason_codes)
        got.set()
    c.on_subscribe = on_subscribe
    c.connect("127.0.0.1", mqtt_helpers.mqtt_port(server))
    c.loop_start()
    try:
        c.subscribe([("b/x", paho.SubscribeOptions(qos=1)), ("z/x", paho.SubscribeOptions(qos=0))])
        assert got.wait(10)
        assert codes == [1, 0x87]
    finally:
        c.disconnect()
        c.loop_stop()


def test_mqtt5_unsubscribe_needs_read_too(server):
    # RabbitMQ 3.13 checks an UNSUBSCRIBE as it checks the SUBSCRIBE: a refusal keeps the
    # subscription (reason 0x87), and it still delivers.
    ok(ctl(server, "set_topic_permissions", USER, "amq.topic", ".*", ".*"))
    raw = mqtt_helpers.RawClient5(mqtt_helpers.mqtt_port(server))
    sp, rc, _ = raw.connect5(client_id="unsub5", username=USER, password=PASSWORD)
    assert rc == 0
    assert raw.subscribe5(1, [("u/x", 1), ("u/y", 1)]) == [1, 1]
    ok(ctl(server, "set_topic_permissions", USER, "amq.topic", ".*", r"^u\.y$"))
    assert raw.unsubscribe5(2, ["u/x", "u/y"]) == [0x87, 0x00]
    pub = mqtt_client(server, "unsub5-pub")
    pub.publish("u/x", b"still subscribed", qos=1)
    pub.publish("u/y", b"not any more", qos=1)
    p = raw.next_publish()
    assert p is not None and (p.topic, p.payload) == ("u/x", b"still subscribed"), p
    assert raw.next_publish(timeout=0.5) is None
    pub.disconnect()
    raw.close()


# ---- STOMP

class Events(stomp.ConnectionListener):
    def __init__(self):
        self.frames = []
        self.closed = threading.Event()

    def on_error(self, frame):
        self.frames.append(("ERROR", frame.headers.get("message"), frame.body))

    def on_receipt(self, frame):
        self.frames.append(("RECEIPT", frame.headers.get("receipt-id")))

    def on_disconnected(self):
        self.closed.set()


def stomp_outcome(server, action):
    """The ERROR or RECEIPT frames after action(connection), and whether the broker closed."""
    events = Events()
    c = stomp.Connection([("127.0.0.1", server.listener_port("STOMP"))], heartbeats=(0, 0))
    c.set_listener("events", events)
    c.connect(USER, PASSWORD, wait=True)
    action(c)
    deadline = time.monotonic() + 10
    while not events.frames and time.monotonic() < deadline:
        time.sleep(0.02)
    closed = events.closed.wait(1.0)
    if c.is_connected():
        c.disconnect()
    return events.frames, closed


def test_stomp_send_and_subscribe(server):
    ok(ctl(server, "set_topic_permissions", USER, "amq.topic", r"^a\.", r"^b\."))
    assert stomp_outcome(server, lambda c: c.send("/topic/a.x", "m", receipt="r1")) == (
        [("RECEIPT", "r1")], False)
    for destination in ("/topic/z.x", "/exchange/amq.topic/z.x"):
        assert stomp_outcome(server, lambda c: c.send(destination, "m", receipt="r1")) == (
            [("ERROR", "access_refused", refused_text("z.x"))], True), destination
    assert stomp_outcome(server, lambda c: c.subscribe("/topic/b.x", id="s", receipt="r2")) == (
        [("RECEIPT", "r2")], False)
    # /topic/: checked before the subscription is set up, the reason without its prefix.
    bare = refused_text("z.x")[len("ACCESS_REFUSED - "):]
    assert stomp_outcome(server, lambda c: c.subscribe("/topic/z.x", id="s")) == (
        [("ERROR", "access_refused", bare)], True)
    # /exchange/: the binding is refused, as an AMQP queue.bind.
    assert stomp_outcome(server, lambda c: c.subscribe("/exchange/amq.topic/z.x", id="s")) == (
        [("ERROR", "access_refused", refused_text("z.x"))], True)
    assert stomp_outcome(server, lambda c: c.send("/exchange/amq.direct/z.x", "m",
                                                  receipt="r3")) == ([("RECEIPT", "r3")], False)


# ---- warrenctl

def test_warrenctl_as_rabbitmqctl(warren_factory):
    """Replays rabbitmqctl 3.10.8's captured outputs. RabbitMQ lists in no particular order
    (compared as sets of lines, except single-row JSON); a usage error is compared by its exit
    code and first line (Warren's usage line names its own program and --data-dir)."""
    b = warren_factory()
    path = os.path.join(warren_process.HERE, "data",
                        "rabbitmqctl-3.10.8-topic-permissions-outputs.txt")
    for r in golden(path):
        rc, out, err = ctl(b, *shlex.split(r["cmd"]))
        if r["rc"] == 64:
            assert (rc, out, err.splitlines()[:1]) == (
                64, r["stdout"], r["stderr"].splitlines()[:1]), r["cmd"]
            continue
        assert (rc, normalized(r["cmd"], out), err) == (
            r["rc"], normalized(r["cmd"], r["stdout"]), r["stderr"]), r["cmd"]


# ---- management API, definitions, restart

def test_management_api(server):
    assert call(server, "PUT", "/api/topic-permissions/%2F/" + USER,
                {"exchange": "amq.topic", "write": "^w", "read": "^r"})[:2] == (201, None)
    assert call(server, "PUT", "/api/topic-permissions/%2F/" + USER,
                {"exchange": "x2", "write": "", "read": ".*"})[:2] == (204, None)
    entry = {"user": USER, "vhost": "/", "exchange": "amq.topic", "write": "^w", "read": "^r"}
    entry2 = {"user": USER, "vhost": "/", "exchange": "x2", "write": "", "read": ".*"}
    status, body, _ = call(server, "GET", "/api/topic-permissions/%2F/" + USER)
    assert status == 200 and sorted(body, key=lambda e: e["exchange"]) == [entry, entry2]
    # The exchange in the path does not narrow a GET (as RabbitMQ).
    assert call(server, "GET", "/api/topic-permissions/%2F/" + USER + "/x2")[0] == 200
    assert call(server, "GET", "/api/topic-permissions")[1] == [entry, entry2]
    assert call(server, "GET", "/api/users/%s/topic-permissions" % USER)[1] == [entry, entry2]
    status, body, _ = call(server, "GET", "/api/vhosts/%2F/topic-permissions")
    assert status == 200 and [list(e) for e in body] == [
        ["vhost", "user", "exchange", "write", "read"]] * 2
    # And they apply at once, to the API's own publish too (RabbitMQ's 400 carries the 403).
    assert amqp_outcome(server, publish("amq.topic", "z")) == (403, refused_text("z"))
    ok(ctl(server, "set_user_tags", USER, "administrator"))
    message = {"routing_key": "z", "payload": "m", "payload_encoding": "string",
               "properties": {}}
    assert call(server, "POST", "/api/exchanges/%2F/amq.topic/publish", message, user=USER,
                password=PASSWORD)[:2] == (
        400, {"error": "bad_request", "reason": "403 " + refused_text("z")})
    message["routing_key"] = "w"
    assert call(server, "POST", "/api/exchanges/%2F/amq.topic/publish", message, user=USER,
                password=PASSWORD)[:2] == (200, {"routed": False})
    # Errors, as RabbitMQ 3.10.8's.
    assert call(server, "PUT", "/api/topic-permissions/%2F/" + USER,
                {"exchange": "amq.topic", "write": "^w"})[:2] == (
        400, {"error": "bad_request", "reason": "[{key_missing,read}]"})
    assert call(server, "PUT", "/api/topic-permissions/%2F/" + USER,
                {"exchange": "amq.topic", "write": "(", "read": "a"})[:2] == (
        400, {"error": "bad_request",
              "reason": ["invalid_regexp", "(", [[ord(ch) for ch in "missing )"], 1]]})
    for path in ("/api/topic-permissions/%2F/nouser", "/api/topic-permissions/novh/" + USER):
        assert call(server, "PUT", path, {"exchange": "x", "write": "", "read": ""})[:2] == (
            400, {"error": "bad_request", "reason": "vhost_or_user_not_found"})
    not_found = {"error": "Object Not Found", "reason": "Not Found"}
    assert call(server, "GET", "/api/users/nouser/topic-permissions")[:2] == (404, not_found)
    assert call(server, "GET", "/api/vhosts/novh/topic-permissions")[:2] == (404, not_found)
    assert call(server, "GET", "/api/topic-permissions/%2F/guest")[:2] == (404, not_found)
    # Administrators only.
    ok(ctl(server, "set_user_tags", USER, "management"))
    assert call(server, "GET", "/api/topic-permissions", user=USER, password=PASSWORD)[:2] == (
        401, {"error": "not_authorised", "reason": "Not administrator user"})
    # DELETE of one exchange, then of all; then there is nothing left to delete.
    assert call(server, "DELETE", "/api/topic-permissions/%2F/" + USER + "/x2")[0] == 204
    assert call(server, "GET", "/api/topic-permissions")[1] == [entry]
    assert call(server, "DELETE", "/api/topic-permissions/%2F/" + USER)[0] == 204
    assert call(server, "DELETE", "/api/topic-permissions/%2F/" + USER)[:2] == (404, not_found)
    assert call(server, "GET", "/api/topic-permissions")[1] == []
    assert amqp_outcome(server, publish("amq.topic", "z")) == "ok"


def test_definitions_round_trip_and_restart(restartable_broker, warren_factory, tmp_path):
    b = restartable_broker.start()
    ok(ctl(b, "add_user", USER, PASSWORD))
    ok(ctl(b, "add_vhost", "tv"))
    ok(ctl(b, "set_permissions", USER, ".*", ".*", ".*"))
    ok(ctl(b, "set_topic_permissions", USER, "amq.topic", r"^a\.", r"^b\."))
    ok(ctl(b, "set_topic_permissions", "-p", "tv", USER, "x", "{username}", ""))
    expected = [
        {"user": USER, "vhost": "/", "exchange": "amq.topic", "write": r"^a\.", "read": r"^b\."},
        {"user": USER, "vhost": "tv", "exchange": "x", "write": "{username}", "read": ""}]
    # Kept in the metadata store: still there after a restart, and still enforced.
    b = restartable_broker.restart()
    assert ok(ctl(b, "list_user_topic_permissions", "-q", USER)).splitlines() == [
        "/\tamq.topic\t^a\\.\t^b\\.", "tv\tx\t{username}\t"]
    assert amqp_outcome(b, publish("amq.topic", "z")) == (403, refused_text("z"))
    # Exported (warrenctl and the API alike) in RabbitMQ's shape, and imported elsewhere.
    path = str(tmp_path / "defs.json")
    ok(ctl(b, "export_definitions", path))
    assert json.load(open(path))["topic_permissions"] == expected
    assert call(b, "GET", "/api/definitions")[1]["topic_permissions"] == expected
    other = warren_factory()
    ok(ctl(other, "import_definitions", path))
    assert call(other, "GET", "/api/topic-permissions")[1] == expected
    assert amqp_outcome(other, publish("amq.topic", "z")) == (403, refused_text("z"))
    # Deleting the vhost, then the user, removes theirs (from the store too).
    ok(ctl(b, "delete_vhost", "tv"))
    ok(ctl(b, "delete_user", USER))
    b = restartable_broker.restart()
    assert call(b, "GET", "/api/topic-permissions")[1] == []
