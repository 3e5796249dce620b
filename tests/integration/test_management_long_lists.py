"""Management API replies built across event-loop turns (thousands of queues, definitions with
more than one import chunk), the running queue totals behind /api/overview, and RabbitMQ's
health checks (bodies as rabbit_mgmt_wm_health_check_*.erl writes them)."""

import threading
import time

import pika
import pytest

from test_management_api import call, mgmt_port, wait_for

N = 3000  # at ~10 us a queue, the full list takes many 2 ms slices


@pytest.fixture
def server(warren_factory):
    return warren_factory()


def declare(broker, names, vhost="/"):
    c = pika.BlockingConnection(pika.ConnectionParameters(
        host=broker.host, port=broker.port, virtual_host=vhost))
    ch = c.channel()
    for name in names:
        ch.queue_declare(name)
    c.close()


def test_long_queue_list_matches_every_query_shape(server):
    names = ["lq-%05d" % i for i in range(N)]
    declare(server, names)
    status, full, _ = call(server, "GET", "/api/queues")
    assert status == 200
    assert [q["name"] for q in full] == sorted(names)
    assert all(q["vhost"] == "/" and q["messages"] == 0 for q in full)
    # By name, page of the middle: only the page is built.
    status, page, _ = call(server, "GET", "/api/queues/%2F?page=7&page_size=100&name=lq-0")
    assert status == 200
    assert (page["filtered_count"], page["total_count"], page["item_count"], page["page_count"]) \
        == (N, N, 100, N // 100)
    assert [q["name"] for q in page["items"]] == sorted(names)[600:700]
    # Other sorts, regex filters and columns go through the every-item path.
    status, page, _ = call(server, "GET", "/api/queues?page=1&page_size=5&sort=name"
                           "&sort_reverse=true&use_regex=true&name=%5Elq-0001.%24&columns=name")
    assert status == 200
    assert page["items"] == [{"name": "lq-%05d" % i} for i in (19, 18, 17, 16, 15)]
    assert page["filtered_count"] == 10
    status, body, _ = call(server, "GET", "/api/queues?use_regex=true&name=(")
    assert status == 400 and body["error"] == "bad_request"
    status, body, _ = call(server, "GET", "/api/queues?page=1&page_size=501")
    assert (status, body["reason"]) == (400, "Page size must be between 1 and 500")


def test_queues_deleted_while_the_list_is_built_are_left_out(server):
    names = ["del-%05d" % i for i in range(N)]
    declare(server, names)
    done = threading.Event()
    errors = []

    def delete_half():
        try:
            c = pika.BlockingConnection(pika.ConnectionParameters(host=server.host,
                                                                  port=server.port))
            ch = c.channel()
            for name in names[::2]:
                ch.queue_delete(name)
            c.close()
        except Exception as e:  # reported by the main thread
            errors.append(e)
        finally:
            done.set()

    threading.Thread(target=delete_half).start()
    seen = []
    while not done.is_set():
        status, body, _ = call(server, "GET", "/api/queues")
        assert status == 200
        got = [q["name"] for q in body]
        assert got == sorted(got) and set(got) <= set(names)
        seen.append(len(got))
    assert not errors
    assert [q["name"] for q in call(server, "GET", "/api/queues")[1]] == names[1::2]
    assert seen, "listed at least once while deleting"


def test_other_requests_and_deliveries_are_served_while_a_long_list_is_built(server):
    declare(server, ["busy-%05d" % i for i in range(N)])
    c = pika.BlockingConnection(pika.ConnectionParameters(host=server.host, port=server.port))
    ch = c.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    results = []
    lister = threading.Thread(
        target=lambda: results.extend(call(server, "GET", "/api/queues")[0] for _ in range(3)))
    lister.start()
    round_trips = 0
    while lister.is_alive():
        ch.basic_publish("", q, b"ping")
        assert ch.basic_get(q, auto_ack=True)[2] == b"ping"
        assert call(server, "GET", "/api/whoami")[0] == 200
        round_trips += 1
    lister.join()
    assert results == [200, 200, 200] and round_trips > 0
    c.close()


def test_definitions_import_and_export_in_chunks(warren_factory):
    a = warren_factory()
    queues = [{"name": "dq-%04d" % i, "vhost": "/", "durable": True, "auto_delete": False,
               "arguments": {"x-message-ttl": i}} for i in range(1200)]
    bindings = [{"source": "amq.direct", "vhost": "/", "destination": q["name"],
                 "destination_type": "queue", "routing_key": q["name"], "arguments": {}}
                for q in queues[:700]]
    status, body, _ = call(a, "POST", "/api/definitions", {"queues": queues,
                                                           "bindings": bindings})
    assert status == 204, body
    status, exported, _ = call(a, "GET", "/api/definitions")
    assert status == 200
    got = {q["name"]: q["arguments"] for q in exported["queues"]}
    assert got == {q["name"]: q["arguments"] for q in queues}
    assert len([b for b in exported["bindings"] if b["source"] == "amq.direct"]) == 700
    # A bad definition after the first chunk: 400 with its text, the broker keeps serving.
    bad = [{"name": "ok-%04d" % i, "vhost": "/", "durable": True, "auto_delete": False,
            "arguments": {}} for i in range(600)]
    bad.append({"name": "bad", "vhost": "nosuch", "durable": True, "auto_delete": False,
                "arguments": {}})
    status, body, _ = call(a, "POST", "/api/definitions", {"queues": bad})
    assert status == 400 and body["error"] == "bad_request" and "nosuch" in body["reason"]
    status, body, _ = call(a, "POST", "/api/definitions", b"{not json")
    assert (status, body) == (400, {"error": "bad_request", "reason": "not_json"})
    assert call(a, "GET", "/api/whoami")[0] == 200


def test_overview_totals_equal_the_sum_over_queues(server):
    c = pika.BlockingConnection(pika.ConnectionParameters(host=server.host, port=server.port))
    ch = c.channel()
    for i in range(5):
        ch.queue_declare("tot-%d" % i)
        for _ in range(i + 1):
            ch.basic_publish("", "tot-%d" % i, b"x" * 10)
    ch.basic_qos(prefetch_count=2)
    ch.basic_consume("tot-4", lambda *a: None)
    got = ch.basic_get("tot-3")  # unacked get
    assert got[0] is not None
    ch.queue_purge("tot-2")
    ch.queue_delete("tot-1")

    def consistent():
        ov = call(server, "GET", "/api/overview")[1]
        qs = call(server, "GET", "/api/queues")[1]
        sums = (sum(q["messages_ready"] for q in qs), sum(q["messages_unacknowledged"] for q in qs),
                sum(q["consumers"] for q in qs))
        t = ov["queue_totals"]
        return (t["messages_ready"], t["messages_unacknowledged"],
                ov["object_totals"]["consumers"]) == sums and sums == (1 + 3 + 3, 1 + 2, 1)

    wait_for(consistent, what="overview totals equal to the queues' sum")
    vhost = call(server, "GET", "/api/vhosts/%2F")[1]
    assert (vhost["messages_ready"], vhost["messages_unacknowledged"]) == (7, 3)
    c.close()
    wait_for(lambda: call(server, "GET", "/api/overview")[1]["queue_totals"]["messages"] == 10,
             what="unacked messages back to ready after the connection closed")


def test_health_checks(server):
    ok = {"status": "ok"}
    for check in ("alarms", "local-alarms", "virtual-hosts", "is-in-service",
                  "below-node-connection-limit", "ready-to-serve-clients",
                  "metadata-store/initialized", "metadata-store/initialized/with-data",
                  "certificate-expiration/1/days"):
        assert call(server, "GET", "/api/health/checks/" + check)[:2] == (200, ok), check
    assert call(server, "GET", "/api/health/checks/node-is-quorum-critical")[:2] == (
        200, {"status": "ok", "reason": "single node cluster"})
    assert call(server, "GET", "/api/healthchecks/node")[:2] == (200, ok)
    assert call(server, "GET", "/api/health/checks/port-listener/%d" % server.port)[:2] == (
        200, {"status": "ok", "port": server.port})
    status, body, _ = call(server, "GET", "/api/health/checks/port-listener/1")
    assert status == 503
    assert (body["status"], body["reason"], body["missing"]) == ("failed", "No active listener", 1)
    assert server.port in body["ports"] and mgmt_port(server) in body["ports"]
    assert call(server, "GET", "/api/health/checks/port-listener/x")[:2] == (
        400, {"error": "bad_request", "reason": "Invalid port"})
    status, body, _ = call(server, "GET", "/api/health/checks/protocol-listener/AMQP0-9-1,http")
    assert status == 200 and set(body["protocols"]) >= {"amqp", "http"}
    status, body, _ = call(server, "GET",
                           "/api/health/checks/protocol-listener/amqp,mqtt,web-mqtt,stomp,mqtts")
    assert (status, body["status"], body["missing"]) == (503, "failed", ["mqtt/ssl"])
    status, body, _ = call(server, "GET", "/api/health/checks/certificate-expiration/1/fortnights")
    assert (status, body["reason"]) == (
        400, "Time unit not recognised. Supported units: days, weeks, months, years.")
    assert call(server, "GET", "/api/health/checks/nosuch")[0] == 404
    ov = call(server, "GET", "/api/overview")[1]
    protocols = {(l["protocol"], l["port"]) for l in ov["listeners"]}
    assert {("amqp", server.port), ("http", mgmt_port(server))} <= protocols


def test_pages_by_name_across_vhosts_match_the_full_list(server):
    for vhost in ("va", "vb"):
        assert call(server, "PUT", "/api/vhosts/" + vhost)[0] == 201
        assert call(server, "PUT", "/api/permissions/%s/guest" % vhost,
                    {"configure": ".*", "write": ".*", "read": ".*"})[0] == 201
    declare(server, ["m1", "m3", "m5"])
    declare(server, ["m2", "m3"], vhost="va")
    declare(server, ["m0", "m3", "m9"], vhost="vb")
    for reverse in ("false", "true"):
        full = call(server, "GET", "/api/queues?sort_reverse=" + reverse)[1]
        pages = []
        for page in range(1, 9):
            body = call(server, "GET", "/api/queues?page=%d&page_size=1&sort_reverse=%s"
                        % (page, reverse))[1]
            assert (body["total_count"], body["filtered_count"]) == (8, 8)
            pages += body["items"]
        key = lambda q: (q["name"], q["vhost"])
        assert [key(q) for q in pages] == [key(q) for q in full]
        assert [q["name"] for q in full] == sorted((q["name"] for q in full),
                                                   reverse=reverse == "true")
    body = call(server, "GET", "/api/queues/va?page=1&page_size=10")[1]
    assert [q["name"] for q in body["items"]] == ["m2", "m3"] and body["total_count"] == 2


def test_long_binding_lists(server):
    names = ["bq-%05d" % i for i in range(N)]
    c = pika.BlockingConnection(pika.ConnectionParameters(host=server.host, port=server.port))
    ch = c.channel()
    for i, name in enumerate(names):
        ch.queue_declare(name)
        if i < 700:
            ch.queue_bind(name, "amq.topic", "k.%d.#" % i)
    c.close()
    status, bindings, _ = call(server, "GET", "/api/bindings/%2F")
    assert status == 200 and len(bindings) == N + 700
    # The default exchange's binding of every queue first, in name order, then the others.
    assert [b["destination"] for b in bindings[:N]] == names
    assert all(b["source"] == "" and b["routing_key"] == b["destination"] for b in bindings[:N])
    assert {b["routing_key"] for b in bindings[N:]} == {"k.%d.#" % i for i in range(700)}
    status, page, _ = call(server, "GET", "/api/bindings?page=2&page_size=100")
    assert (page["total_count"], [b["destination"] for b in page["items"]]) == (
        N + 700, names[100:200])
    status, body, _ = call(server, "GET", "/api/exchanges/%2F/amq.default/bindings/source")
    assert status == 200 and len(body) == N
    status, body, _ = call(server, "GET", "/api/exchanges/%2F/amq.topic/bindings/source")
    assert status == 200 and len(body) == 700
    status, body, _ = call(server, "GET", "/api/queues/%2F/bq-00005/bindings")
    assert [(b["source"], b["routing_key"]) for b in body] == [("", "bq-00005"),
                                                              ("amq.topic", "k.5.#")]
    status, body, _ = call(server, "GET", "/api/bindings/%2F/e/amq.topic/q/bq-00005")
    assert [b["properties_key"] for b in body] == ["k.5.%23"]


def test_prometheus_per_object_rows_for_every_queue(server):
    import urllib.request
    from test_management_api import prometheus_port
    names = ["pq-%05d" % i for i in range(N)]
    declare(server, names)
    c = pika.BlockingConnection(pika.ConnectionParameters(host=server.host, port=server.port))
    ch = c.channel()
    for _ in range(3):
        ch.basic_publish("", "pq-00007", b"abcd")
    c.close()
    url = "http://127.0.0.1:%d/metrics/per-object" % prometheus_port(server)
    text = urllib.request.urlopen(url, timeout=30).read().decode()
    ready = [l for l in text.splitlines() if l.startswith("rabbitmq_queue_messages_ready{")]
    assert len(ready) == N
    assert 'rabbitmq_queue_messages_ready{vhost="/",queue="pq-00007"} 3' in ready
    assert 'rabbitmq_queue_messages_bytes{vhost="/",queue="pq-00007"} 12' in text
    assert "\nrabbitmq_queues %d\n" % N in text
    total = urllib.request.urlopen(url.replace("/per-object", ""), timeout=30).read().decode()
    assert "\nrabbitmq_queue_messages_ready 3\n" in total
    assert "\nrabbitmq_queue_messages_bytes 12\n" in total


def test_long_exchange_and_connection_lists(server):
    c = pika.BlockingConnection(pika.ConnectionParameters(host=server.host, port=server.port))
    ch = c.channel()
    names = ["lx-%05d" % i for i in range(N)]
    for name in names:
        ch.exchange_declare(name, "topic")
    others = [pika.BlockingConnection(pika.ConnectionParameters(
        host=server.host, port=server.port, client_properties={"connection_name": "c%d" % i}))
        for i in range(20)]
    status, xs, _ = call(server, "GET", "/api/exchanges/%2F")
    assert status == 200
    got = [x["name"] for x in xs]
    assert got == sorted(got) and set(names) <= set(got)
    assert {x["type"] for x in xs if x["name"].startswith("lx-")} == {"topic"}
    status, page, _ = call(server, "GET", "/api/exchanges?page=3&page_size=10&name=lx-")
    assert (page["filtered_count"], [x["name"] for x in page["items"]]) == (N, names[20:30])
    status, conns, _ = call(server, "GET", "/api/connections?sort=user_provided_name")
    assert status == 200 and len(conns) == 21
    assert [x["user_provided_name"] for x in conns][1:] == sorted("c%d" % i for i in range(20))
    for o in others:
        o.close()
    c.close()
    wait_for(lambda: call(server, "GET", "/api/connections")[1] == [], what="no connections")


def test_consumers_and_channels_among_many_queues(server):
    names = ["cq-%05d" % i for i in range(N)]
    declare(server, names)
    c = pika.BlockingConnection(pika.ConnectionParameters(host=server.host, port=server.port))
    chans = [c.channel() for _ in range(3)]
    for i, name in enumerate(names[::300]):
        chans[i % 3].basic_consume(name, lambda *a: None, consumer_tag="t-%s" % name)
    status, consumers, _ = call(server, "GET", "/api/consumers/%2F")
    assert status == 200
    assert [x["queue"]["name"] for x in consumers] == names[::300]
    assert {x["channel_details"]["number"] for x in consumers} == {1, 2, 3}
    assert all(x["consumer_tag"] == "t-" + x["queue"]["name"] for x in consumers)
    status, channels, _ = call(server, "GET", "/api/channels")
    assert [(x["number"], x["consumer_count"]) for x in channels] == [(1, 4), (2, 3), (3, 3)]
    c.close()
