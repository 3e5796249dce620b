"""The management HTTP API (first endpoints): authentication and tags, /api/overview, /api/whoami,
/api/vhosts, /api/users, /api/queues with pagination, PUT/DELETE of queues, aliveness and alarm
health checks. Statuses, error bodies and field names as RabbitMQ 3.10.8 answers them (checked
against a real node with the management plugin)."""

import base64
import json
import re
import time
import urllib.error
import urllib.request

import pika
import pytest

from test_warrenctl import ctl


def mgmt_port(broker):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for line in list(broker.log):
            m = re.search(r"management HTTP API listening on 127\.0\.0\.1:(\d+)", line)
            if m:
                return int(m.group(1))
        time.sleep(0.02)
    raise AssertionError("no management listening line in the log")


def call(broker, method, path, body=None, user="guest", password="guest", auth=True):
    """(status, parsed JSON body or None, headers)."""
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (mgmt_port(broker), path),
                                 data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if auth:
        token = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
        req.add_header("authorization", "Basic " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None, resp.headers
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None, e.headers


@pytest.fixture
def server(warren_factory):
    return warren_factory()


def test_authentication_and_tags(server):
    status, body, headers = call(server, "GET", "/api/overview", auth=False)
    assert (status, body) == (401, None)
    assert headers["www-authenticate"] == 'Basic realm="RabbitMQ Management"'
    status, body, _ = call(server, "GET", "/api/whoami", password="wrong")
    assert (status, body) == (401, {"error": "not_authorized", "reason": "Login failed"})
    assert call(server, "GET", "/api/whoami")[:2] == (
        200, {"name": "guest", "tags": ["administrator"]})
    assert ctl(server, "add_user", "plain", "pw")[0] == 0
    status, body, _ = call(server, "GET", "/api/whoami", user="plain", password="pw")
    assert (status, body) == (401, {"error": "not_authorised", "reason": "Not management user"})
    assert ctl(server, "set_user_tags", "plain", "management")[0] == 0
    assert call(server, "GET", "/api/whoami", user="plain", password="pw")[0] == 200
    # management users see only the vhosts they have permissions in, and no users.
    assert call(server, "GET", "/api/vhosts", user="plain", password="pw")[1] == []
    status, body, _ = call(server, "GET", "/api/users", user="plain", password="pw")
    assert (status, body) == (401, {"error": "not_authorised", "reason": "Not administrator user"})


def test_overview_counts_objects(server):
    c = pika.BlockingConnection(pika.ConnectionParameters(host=server.host, port=server.port))
    ch = c.channel()
    ch.queue_declare("ov-q")
    for _ in range(3):
        ch.basic_publish("", "ov-q", b"m")
    ch.basic_consume("ov-q", lambda *a: None)
    status, body, _ = call(server, "GET", "/api/overview")
    assert status == 200
    assert body["object_totals"]["queues"] == 1
    assert body["object_totals"]["connections"] == 1
    assert body["object_totals"]["channels"] == 1
    assert body["object_totals"]["consumers"] == 1
    assert body["queue_totals"]["messages"] == 3
    assert body["node"].startswith("warren@")
    assert {"protocol": "amqp", "port": server.port} .items() <= body["listeners"][0].items()
    c.close()


def test_vhosts_and_users_crud(server):
    assert call(server, "PUT", "/api/vhosts/apiv")[0] == 201
    assert call(server, "PUT", "/api/vhosts/apiv")[0] == 204
    status, body, _ = call(server, "GET", "/api/vhosts/apiv")
    assert status == 200 and body["name"] == "apiv" and body["tracing"] is False
    assert [v["name"] for v in call(server, "GET", "/api/vhosts")[1]] == ["/", "apiv"]
    assert call(server, "DELETE", "/api/vhosts/apiv")[0] == 204
    status, body, _ = call(server, "DELETE", "/api/vhosts/apiv")
    assert (status, body) == (404, {"error": "Object Not Found", "reason": "Not Found"})

    assert call(server, "PUT", "/api/users/api-u",
                {"password": "s3", "tags": "monitoring"})[0] == 201
    status, body, _ = call(server, "GET", "/api/users/api-u")
    assert body["tags"] == ["monitoring"]
    assert body["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    # monitoring may read everything.
    assert call(server, "GET", "/api/queues", user="api-u", password="s3")[0] == 200
    # Without a password: created (as RabbitMQ), but no password logs it in.
    assert call(server, "PUT", "/api/users/api-v", {"tags": "management"})[0] == 201
    assert call(server, "GET", "/api/whoami", user="api-v", password="")[0] == 401
    assert call(server, "DELETE", "/api/users/api-u")[0] == 204
    assert call(server, "GET", "/api/users/api-u")[0] == 404


def test_queues_put_get_delete_and_pagination(server):
    status, _, _ = call(server, "PUT", "/api/queues/%2F/hq",
                        {"durable": True, "arguments": {"x-max-length": 10}})
    assert status == 201
    assert call(server, "PUT", "/api/queues/%2F/hq",
                {"durable": True, "arguments": {"x-max-length": 10}})[0] == 204
    status, body, _ = call(server, "PUT", "/api/queues/%2F/hq", {"durable": False})
    assert status == 400 and body["error"] == "bad_request"
    assert "inequivalent arg 'durable'" in body["reason"]
    status, body, _ = call(server, "PUT", "/api/queues/%2F/hq2", b"notjson")
    assert (status, body) == (400, {"error": "bad_request", "reason": "not_json"})
    status, body, _ = call(server, "GET", "/api/queues/%2F/hq")
    assert status == 200
    assert (body["name"], body["vhost"], body["durable"], body["arguments"]) == (
        "hq", "/", True, {"x-max-length": 10})
    assert body["messages"] == 0 and body["consumers"] == 0 and body["type"] == "classic"
    for i in range(5):
        call(server, "PUT", "/api/queues/%%2F/page-%d" % i, {"durable": False})
    status, body, _ = call(server, "GET", "/api/queues?page=2&page_size=2&name=page-")
    assert status == 200
    assert (body["filtered_count"], body["total_count"], body["page_count"], body["page"],
            body["item_count"]) == (5, 6, 3, 2, 2)
    assert [q["name"] for q in body["items"]] == ["page-2", "page-3"]
    status, body, _ = call(server, "GET", "/api/queues/%2F?sort=name&sort_reverse=true")
    assert [q["name"] for q in body][:2] == ["page-4", "page-3"]
    status, body, _ = call(server, "GET", "/api/queues?page=9&page_size=2")
    assert (status, body) == (400, {"error": "page_out_of_range",
                                    "reason": "Page out of range, page: 9 page size: 2, len: 6"})
    assert call(server, "DELETE", "/api/queues/%2F/hq")[0] == 204
    assert call(server, "GET", "/api/queues/%2F/hq")[0] == 404
    assert call(server, "GET", "/api/queues/nosuch")[0] == 404


def test_queue_delete_if_empty(server):
    c = pika.BlockingConnection(pika.ConnectionParameters(host=server.host, port=server.port))
    ch = c.channel()
    ch.queue_declare("full")
    ch.basic_publish("", "full", b"m")
    c.close()
    status, body, _ = call(server, "DELETE", "/api/queues/%2F/full?if-empty=true")
    assert (status, body) == (400, {"error": "bad_request",
                                    "reason": "queue 'full' in vhost '/' not empty"})
    assert call(server, "DELETE", "/api/queues/%2F/full")[0] == 204


def test_health_checks(server):
    assert call(server, "GET", "/api/aliveness-test/%2F")[:2] == (200, {"status": "ok"})
    assert call(server, "GET", "/api/aliveness-test/nosuch")[0] == 404
    assert call(server, "GET", "/api/health/checks/alarms")[:2] == (200, {"status": "ok"})
    assert call(server, "GET", "/api/nosuch")[:2] == (
        404, {"error": "Object Not Found", "reason": "Not Found"})


def test_malformed_http_gets_400_and_others_keep_working(server):
    import socket
    s = socket.create_connection(("127.0.0.1", mgmt_port(server)), timeout=10)
    s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
    reply = s.recv(4096)
    s.close()
    assert reply.startswith(b"HTTP/1.1 400")
    assert call(server, "GET", "/api/whoami")[0] == 200


def test_exchanges_and_bindings(server):
    status, body, _ = call(server, "GET", "/api/exchanges/%2F/amq.direct")
    assert status == 200
    assert (body["name"], body["type"], body["durable"], body["internal"]) == (
        "amq.direct", "direct", True, False)
    assert call(server, "PUT", "/api/exchanges/%2F/hx", {"type": "topic", "durable": True})[0] == 201
    assert call(server, "PUT", "/api/exchanges/%2F/hx", {"type": "topic", "durable": True})[0] == 204
    status, body, _ = call(server, "PUT", "/api/exchanges/%2F/bx", {"type": "bogus"})
    assert (status, body) == (400, {"error": "bad_request",
                                    "reason": "unknown exchange type 'bogus'"})
    assert call(server, "PUT", "/api/queues/%2F/hbq", {"durable": True})[0] == 201
    status, _, headers = call(server, "POST", "/api/bindings/%2F/e/hx/q/hbq",
                              {"routing_key": "a.#", "arguments": {}})
    assert status == 201
    assert headers["location"] == "hbq/a.%2523"
    status, body, _ = call(server, "GET", "/api/bindings/%2F/e/hx/q/hbq")
    assert body == [{"source": "hx", "vhost": "/", "destination": "hbq",
                     "destination_type": "queue", "routing_key": "a.#", "arguments": {},
                     "properties_key": "a.%23"}]
    status, body, _ = call(server, "GET", "/api/queues/%2F/hbq/bindings")
    assert [(b["source"], b["routing_key"]) for b in body] == [("", "hbq"), ("hx", "a.#")]
    # Routing works through the binding made over HTTP.
    c = pika.BlockingConnection(pika.ConnectionParameters(host=server.host, port=server.port))
    ch = c.channel()
    ch.confirm_delivery()
    ch.basic_publish("hx", "a.b", b"via http binding")
    assert ch.basic_get("hbq", auto_ack=True)[2] == b"via http binding"
    c.close()
    status, body, _ = call(server, "GET", "/api/exchanges/%2F/hx/bindings/source")
    assert [b["destination"] for b in body] == ["hbq"]
    assert call(server, "DELETE", "/api/bindings/%2F/e/hx/q/hbq/a.%23")[0] == 204
    assert call(server, "GET", "/api/bindings/%2F/e/hx/q/hbq")[1] == []
    assert call(server, "DELETE", "/api/exchanges/%2F/hx")[0] == 204
    assert call(server, "GET", "/api/exchanges/%2F/hx")[0] == 404


def test_permissions_and_policies(server):
    assert call(server, "PUT", "/api/users/pu", {"password": "pw", "tags": "management"})[0] == 201
    assert call(server, "PUT", "/api/permissions/%2F/pu",
                {"configure": "^pu-", "write": ".*", "read": ".*"})[0] == 201
    status, body, _ = call(server, "GET", "/api/permissions/%2F/pu")
    assert body == {"user": "pu", "vhost": "/", "configure": "^pu-", "write": ".*", "read": ".*"}
    # The management user now sees "/" and may declare only its own queues.
    assert [v["name"] for v in call(server, "GET", "/api/vhosts", user="pu", password="pw")[1]] \
        == ["/"]
    assert call(server, "PUT", "/api/queues/%2F/pu-q", {}, user="pu", password="pw")[0] == 201
    status, body, _ = call(server, "PUT", "/api/queues/%2F/other", {}, user="pu", password="pw")
    assert status == 401
    assert call(server, "PUT", "/api/policies/%2F/pp",
                {"pattern": "^x"}, user="pu", password="pw")[0] == 401
    status, _, _ = call(server, "PUT", "/api/policies/%2F/pp",
                        {"pattern": "^pu-", "definition": {"max-length": 1},
                         "apply-to": "queues", "priority": 2})
    assert status == 201
    status, body, _ = call(server, "GET", "/api/policies/%2F/pp")
    assert body == {"vhost": "/", "name": "pp", "pattern": "^pu-", "apply-to": "queues",
                    "definition": {"max-length": 1}, "priority": 2}
    assert call(server, "GET", "/api/queues/%2F/pu-q")[1]["policy"] == "pp"
    status, body, _ = call(server, "PUT", "/api/policies/%2F/pp2",
                           {"pattern": "^x", "definition": {"bogus": 1}})
    assert (status, body) == (400, {
        "error": "bad_request",
        "reason": "Validation failed\n\n[{&lt;&lt;\"bogus\"&gt;&gt;,1}] are not recognised "
                  "policy settings\n"})
    assert call(server, "DELETE", "/api/policies/%2F/pp")[0] == 204
    assert call(server, "DELETE", "/api/permissions/%2F/pu")[0] == 204
    assert call(server, "GET", "/api/permissions/%2F/pu")[0] == 404


def test_connections_channels_consumers_and_closing_a_connection(server):
    import urllib.parse
    c = pika.BlockingConnection(pika.ConnectionParameters(
        host=server.host, port=server.port, client_properties={"connection_name": "api-conn"}))
    ch = c.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_qos(prefetch_count=7)
    ch.basic_consume(q, lambda *a: None, consumer_tag="ctag1")
    status, conns, _ = call(server, "GET", "/api/connections")
    assert status == 200 and len(conns) == 1
    conn = conns[0]
    assert (conn["user"], conn["vhost"], conn["state"], conn["channels"], conn["protocol"],
            conn["user_provided_name"]) == ("guest", "/", "running", 1, "AMQP 0-9-1", "api-conn")
    assert conn["name"] == "%s:%d -> %s:%d" % (conn["peer_host"], conn["peer_port"],
                                               conn["host"], conn["port"])
    # Traffic counters and the client's own properties, as RabbitMQ lists them.
    assert conn["client_properties"]["product"] == "Pika Python Client Library"
    assert conn["client_properties"]["capabilities"]["consumer_cancel_notify"] is True
    assert conn["recv_oct"] > 300 and conn["send_oct"] > 300
    assert conn["recv_cnt"] >= 1 and conn["send_cnt"] >= 1
    assert {"rate"} <= set(conn["recv_oct_details"]) and "rate" in conn["send_oct_details"]
    assert abs(conn["connected_at"] / 1000 - time.time()) < 60
    status, chans, _ = call(server, "GET", "/api/channels")
    assert [(x["number"], x["prefetch_count"], x["consumer_count"]) for x in chans] == [(1, 7, 1)]
    assert chans[0]["connection_details"]["name"] == conn["name"]
    status, consumers, _ = call(server, "GET", "/api/consumers/%2F")
    assert [(x["consumer_tag"], x["queue"]["name"], x["channel_details"]["number"],
             x["ack_required"]) for x in consumers] == [("ctag1", q, 1, True)]
    name = urllib.parse.quote(conn["name"], safe="")
    assert call(server, "GET", "/api/connections/" + name)[0] == 200
    req_status = call(server, "DELETE", "/api/connections/" + name)[0]
    assert req_status == 204
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        for _ in range(50):
            c.process_data_events(0.1)
    assert e.value.reply_code == 320
    assert call(server, "GET", "/api/connections")[1] == []


def test_publish_and_get_over_http(server):
    assert call(server, "PUT", "/api/queues/%2F/mq", {"durable": True})[0] == 201
    status, body, _ = call(server, "POST", "/api/exchanges/%2F/amq.default/publish",
                           {"routing_key": "mq", "payload": "aGk=", "payload_encoding": "base64",
                            "properties": {"delivery_mode": 2, "headers": {"h": 1},
                                           "content_type": "text/plain"}})
    assert (status, body) == (200, {"routed": True})
    status, body, _ = call(server, "POST", "/api/exchanges/%2F/amq.default/publish",
                           {"routing_key": "nowhere", "payload": "x"})
    assert body == {"routed": False}
    # An AMQP consumer sees what HTTP published, properties included.
    c = pika.BlockingConnection(pika.ConnectionParameters(host=server.host, port=server.port))
    ch = c.channel()
    method, props, payload = ch.basic_get("mq", auto_ack=False)
    assert (payload, props.delivery_mode, props.headers, props.content_type) == (
        b"hi", 2, {"h": 1}, "text/plain")
    ch.basic_nack(method.delivery_tag, requeue=True)
    ch.basic_publish("", "mq", b"\xff\xfe binary")
    c.close()
    status, body, _ = call(server, "POST", "/api/queues/%2F/mq/get",
                           {"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto"})
    assert status == 200
    assert [(m["payload"], m["payload_encoding"], m["redelivered"]) for m in body] == [
        ("hi", "string", True), ("//4gYmluYXJ5", "base64", False)]
    assert body[0]["properties"] == {"content_type": "text/plain", "headers": {"h": 1},
                                     "delivery_mode": 2}
    # Requeued: still there; then taken for good.
    status, body, _ = call(server, "POST", "/api/queues/%2F/mq/get",
                           {"count": 1, "ackmode": "ack_requeue_false", "truncate": 1})
    assert [(m["payload"], m["payload_bytes"], m["message_count"]) for m in body] == [("h", 2, 1)]
    assert call(server, "DELETE", "/api/queues/%2F/mq/contents")[0] == 204
    assert call(server, "GET", "/api/queues/%2F/mq")[1]["messages"] == 0


def test_rabbitmqadmin(server):
    """Debian's rabbitmqadmin (RabbitMQ 3.10.8's management CLI) against Warren."""
    import subprocess

    def admin(*args):
        p = subprocess.run(["/usr/bin/python3", "/usr/bin/rabbitmqadmin", "-P",
                            str(mgmt_port(server)), "-f", "tsv"] + list(args),
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout
    assert "queue declared" in admin("declare", "queue", "name=adminq", "durable=true")
    assert "exchange declared" in admin("declare", "exchange", "name=ax", "type=fanout")
    assert "binding declared" in admin("declare", "binding", "source=ax", "destination=adminq")
    assert "Message published" in admin("publish", "exchange=ax", "routing_key=k",
                                        "payload=hello")
    assert admin("list", "queues", "name", "messages").splitlines()[1:] == ["adminq\t1"]
    out = admin("get", "queue=adminq", "ackmode=ack_requeue_false")
    assert "hello" in out
    assert "guest" in admin("list", "users")
    assert admin("list", "vhosts", "name").splitlines()[1:] == ["/"]
    assert "ax" in admin("list", "exchanges", "name")
    assert "queue deleted" in admin("delete", "queue", "name=adminq")


def test_definitions_round_trip(warren_factory, tmp_path):
    import os
    import warren_process
    a = warren_factory()
    path = os.path.join(warren_process.HERE, "data", "rabbitmq-3.10.8-definitions-tenancy.json")
    status, body, _ = call(a, "POST", "/api/definitions", open(path, "rb").read())
    assert status == 204, body
    # Its users log in with their RabbitMQ passwords.
    pika.BlockingConnection(pika.ConnectionParameters(
        host=a.host, port=a.port, virtual_host="prod",
        credentials=pika.PlainCredentials("jamie", "851230"))).close()
    status, exported, _ = call(a, "GET", "/api/definitions")
    assert status == 200
    # The same JSON as warrenctl's export.
    out = str(tmp_path / "ctl.json")
    assert ctl(a, "export_definitions", out)[0] == 0
    assert json.load(open(out)) == exported
    b = warren_factory()
    assert call(b, "POST", "/api/definitions", exported)[0] == 204
    canon = lambda d: {k: sorted(json.dumps(x, sort_keys=True) for x in d[k])
                       for k in ("users", "vhosts", "permissions", "policies", "parameters",
                                 "queues", "exchanges", "bindings")}
    assert canon(call(b, "GET", "/api/definitions")[1]) == canon(exported)
    status, body, _ = call(b, "POST", "/api/definitions",
                           {"permissions": [{"user": "nobody", "vhost": "/", "configure": ".*",
                                             "write": ".*", "read": ".*"}]})
    assert status == 400 and "nobody" in body["reason"]


def prometheus_port(broker):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for line in list(broker.log):
            m = re.search(r"Prometheus metrics listening on 127\.0\.0\.1:(\d+)", line)
            if m:
                return int(m.group(1))
        time.sleep(0.02)
    raise AssertionError("no Prometheus listening line in the log")


def metrics(broker, path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (prometheus_port(broker), path),
                                timeout=30) as resp:
        assert resp.headers["content-type"].startswith("text/plain")
        values = {}
        for line in resp.read().decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values


def test_prometheus_metrics(server):
    c = pika.BlockingConnection(pika.ConnectionParameters(host=server.host, port=server.port))
    ch = c.channel()
    ch.queue_declare("pm-q")
    ch.confirm_delivery()
    for _ in range(4):
        ch.basic_publish("", "pm-q", b"m")
    ch.basic_publish("", "nowhere", b"x")
    m = metrics(server)
    assert m["rabbitmq_queue_messages_ready"] == 4
    assert m["rabbitmq_queues"] == 1
    assert m["rabbitmq_connections"] == 1 and m["rabbitmq_channels"] == 1
    assert m['rabbitmq_global_messages_received_total{protocol="amqp091"}'] == 5
    assert m['rabbitmq_global_messages_routed_total{protocol="amqp091"}'] == 4
    assert m['rabbitmq_global_messages_unroutable_dropped_total{protocol="amqp091"}'] == 1
    assert m["rabbitmq_process_resident_memory_bytes"] > 0
    per = metrics(server, "/metrics/per-object")
    assert per['rabbitmq_queue_messages_ready{vhost="/",queue="pm-q"}'] == 4
    c.close()


def test_nodes_columns_extensions(server):
    status, nodes, _ = call(server, "GET", "/api/nodes")
    assert status == 200 and len(nodes) == 1
    node = nodes[0]
    assert node["name"].startswith("warren@") and node["running"] is True
    assert node["mem_used"] > 0 and node["fd_used"] > 0 and node["mem_alarm"] is False
    assert call(server, "GET", "/api/nodes/" + node["name"])[1]["name"] == node["name"]
    assert call(server, "GET", "/api/extensions")[1] == []
    call(server, "PUT", "/api/queues/%2F/col-q", {"arguments": {"x-max-length": 3}})
    status, body, _ = call(server, "GET", "/api/queues?columns=name,arguments.x-max-length")
    assert body == [{"name": "col-q", "arguments": {"x-max-length": 3}}]


def wait_for(predicate, timeout=20, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def test_message_stats_counts_and_rates(warren_factory):
    """Counters with RabbitMQ's field sets per object (checked against 3.10.8: a queue, the
    default exchange, the channel, the vhost and the overview report the same numbers for the
    same client session), rates that move while messages flow, and sample histories."""
    server = warren_factory("--collect-statistics-interval", "200")
    c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", server.port))
    ch = c.channel()
    ch.confirm_delivery()
    ch.queue_declare("ms-q")
    status, q, _ = call(server, "GET", "/api/queues/%2F/ms-q")
    assert "message_stats" not in q  # no traffic yet, as RabbitMQ
    assert q["messages_details"] == {"rate": 0.0}
    for _ in range(5):
        ch.basic_publish("", "ms-q", b"x")
    ch.basic_get("ms-q", auto_ack=False)
    ch.basic_get("ms-q", auto_ack=True)
    ch.basic_get("ms-q", auto_ack=False)
    ch.basic_consume("ms-q", lambda c2, m, p, b: c2.basic_ack(m.delivery_tag))
    c.process_data_events(0.5)
    ch.basic_get("ms-q", auto_ack=True)  # empty: get_empty
    expected_queue = {"ack": 2, "deliver": 2, "deliver_get": 5, "deliver_no_ack": 0, "get": 2,
                      "get_empty": 1, "get_no_ack": 1, "publish": 5, "redeliver": 0}

    def counts(stats):
        return {k: v for k, v in stats.items() if not k.endswith("_details")}

    q = call(server, "GET", "/api/queues/%2F/ms-q")[1]
    assert counts(q["message_stats"]) == expected_queue
    assert q["messages_unacknowledged"] == 2 and q["messages_ready"] == 0
    assert set(q["message_stats"]["publish_details"]) == {"rate"}
    x = call(server, "GET", "/api/exchanges/%2F/amq.default")[1]
    assert counts(x["message_stats"]) == {"publish_in": 5, "publish_out": 5}
    channel = call(server, "GET", "/api/channels")[1][0]
    expected_channel = dict(expected_queue, confirm=5, drop_unroutable=0, return_unroutable=0)
    assert counts(channel["message_stats"]) == expected_channel
    vhost = call(server, "GET", "/api/vhosts/%2F")[1]
    assert counts(vhost["message_stats"]) == expected_channel
    overview = wait_for(lambda: (lambda o: o if counts(o["message_stats"]) == expected_channel
                                 else None)(call(server, "GET", "/api/overview")[1]),
                        what="overview totals")
    assert overview["queue_totals"]["messages"] == 2

    # Rates move while a publisher runs (also in a management user's overview, the sum of its
    # vhosts), and histories come back when asked for.
    assert ctl(server, "add_user", "mgr", "pw")[0] == 0
    assert ctl(server, "set_user_tags", "mgr", "management")[0] == 0
    assert ctl(server, "set_permissions", "-p", "/", "mgr", ".*", ".*", ".*")[0] == 0

    def publishing_rate():
        for _ in range(50):
            ch.basic_publish("", "ms-q", b"y")
        c.process_data_events(0.02)
        q = call(server, "GET", "/api/queues/%2F/ms-q")[1]
        o = call(server, "GET", "/api/overview")[1]
        conn = call(server, "GET", "/api/connections")[1][0]
        mine = call(server, "GET", "/api/overview", user="mgr", password="pw")[1]
        rates = (q["message_stats"]["publish_details"]["rate"],
                 o["message_stats"]["publish_details"]["rate"],
                 mine["message_stats"]["publish_details"]["rate"],
                 q["message_stats"]["deliver_get_details"]["rate"],
                 conn["recv_oct_details"]["rate"], conn["send_oct_details"]["rate"])
        return rates if all(r > 0 for r in rates) else None
    wait_for(publishing_rate, what="publish, deliver and connection byte rates above 0")
    path = "/api/overview?msg_rates_age=10&msg_rates_incr=1&lengths_age=10&lengths_incr=1"
    o = call(server, "GET", path)[1]
    samples = o["message_stats"]["publish_details"]["samples"]
    assert len(samples) == 11
    assert samples[0]["timestamp"] > samples[-1]["timestamp"]  # newest first
    assert samples[0]["timestamp"] % 1000 == 0
    values = [s["sample"] for s in samples]
    assert values == sorted(values, reverse=True) and values[0] >= 5  # counters never fall
    assert {"avg", "avg_rate", "rate", "samples"} <= set(o["queue_totals"]["messages_details"])
    ch.close()
    # Rates fall back to 0 once nothing flows.
    wait_for(lambda: call(server, "GET", "/api/queues/%2F/ms-q")[1]["message_stats"]
             ["publish_details"]["rate"] == 0, what="publish rate back to 0")
    c.close()
