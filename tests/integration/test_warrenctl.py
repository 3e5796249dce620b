"""warrenctl (rabbitmqctl for Warren) against a live server, over its control socket
(DATA_DIR/warren.sock). Outputs follow rabbitmqctl 3.10.8 (captured outputs in
data/rabbitmqctl-3.10.8-outputs.txt): tab-separated columns under a header line, banners that
-q drops, --formatter json, exit codes 64 (usage), 65 (data), 69 (node down / not found)."""

import json
import os
import stat
import subprocess
import tempfile
import threading
import time

import pika
import pytest

from amqp_helpers import wait_until
import warren_process

WARRENCTL = os.environ.get("WARRENCTL") or os.path.join(warren_process.REPO, "build", "warrenctl")
RABBITMQCTL_LINK = os.path.join(os.path.dirname(WARRENCTL), "rabbitmqctl")


def ctl(broker, *args, data_dir=None, binary=WARRENCTL, stdin=None, timeout=120):
    """Runs warrenctl against broker's data directory; returns (exit code, stdout, stderr)."""
    cmd = [binary, "--data-dir", data_dir or broker.data_dir] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, input=stdin, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def rows(out):
    return [line.split("\t") for line in out.splitlines()]


@pytest.fixture
def server(warren_factory):
    return warren_factory()


def connect(b, **kw):
    return pika.BlockingConnection(pika.ConnectionParameters(host=b.host, port=b.port, **kw))


def test_list_queues_banner_header_columns_and_quiet(server):
    c = connect(server)
    ch = c.channel()
    ch.queue_declare("q1", durable=True)
    ch.queue_declare("aq", arguments={"x-max-length": 10})
    for _ in range(3):
        ch.basic_publish("", "q1", b"m")
    wait_until(lambda: ch.queue_declare("q1", passive=True).method.message_count == 3)

    rc, out, err = ctl(server, "list_queues")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[:3] == ["Timeout: 60.0 seconds ...", "Listing queues for vhost / ...",
                         "name\tmessages"]
    assert sorted(lines[3:]) == ["aq\t0", "q1\t3"]

    rc, out, _ = ctl(server, "-q", "list_queues", "name", "messages", "consumers", "durable",
                     "arguments")
    assert rc == 0
    assert rows(out)[0] == ["name", "messages", "consumers", "durable", "arguments"]
    assert sorted(rows(out)[1:]) == [["aq", "0", "0", "false", '[{"x-max-length",10}]'],
                                     ["q1", "3", "0", "true", "[]"]]

    rc, out, _ = ctl(server, "list_queues", "--quiet", "--no-table-headers")
    assert sorted(out.splitlines()) == ["aq\t0", "q1\t3"]
    c.close()


def test_json_formatter_has_no_banner_and_rabbitmq_shape(server):
    c = connect(server)
    ch = c.channel()
    ch.queue_declare("jq", arguments={"x-max-length": 10})
    rc, out, _ = ctl(server, "list_queues", "name", "arguments", "--formatter", "json")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == "[" and lines[-1] == "]"
    assert json.loads(out) == [{"name": "jq", "arguments": [["x-max-length", "signedint", 10]]}]
    rc, out, _ = ctl(server, "list_connections", "--formatter", "json", "user")
    assert json.loads(out) == [{"user": "guest"}]
    c.close()
    wait_until(lambda: ctl(server, "-q", "list_connections")[1] == "")
    rc, out, _ = ctl(server, "list_connections", "--formatter", "json")
    assert out == "[\n]\n"


def test_list_exchanges_and_bindings(server):
    c = connect(server)
    ch = c.channel()
    ch.exchange_declare("x1", "topic", durable=True)
    ch.queue_declare("bq")
    ch.queue_bind("bq", "x1", "a.#")
    rc, out, _ = ctl(server, "list_exchanges")
    assert rc == 0
    lines = out.splitlines()
    assert lines[:2] == ["Listing exchanges for vhost / ...", "name\ttype"]
    assert "x1\ttopic" in lines[2:] and "\tdirect" in lines[2:] and "amq.fanout\tfanout" in lines
    rc, out, _ = ctl(server, "list_bindings")
    lines = out.splitlines()
    assert lines[:2] == ["Listing bindings for vhost /...",
                         "source_name\tsource_kind\tdestination_name\tdestination_kind\t"
                         "routing_key\targuments"]
    assert lines[2:] == ["\texchange\tbq\tqueue\tbq\t[]", "x1\texchange\tbq\tqueue\ta.#\t[]"]
    c.close()


def test_connections_channels_consumers(server):
    c = connect(server, client_properties={"connection_name": "ctl-test"})
    ch = c.channel()
    ch.basic_qos(prefetch_count=5)
    ch.queue_declare("cq")
    ch.basic_consume("cq", lambda *a: None, consumer_tag="ctag1")
    rc, out, _ = ctl(server, "list_connections")
    lines = out.splitlines()
    assert lines[:2] == ["Listing connections ...", "user\tpeer_host\tpeer_port\tstate"]
    user, host, port, state = lines[2].split("\t")
    assert (user, host, state) == ("guest", "127.0.0.1", "running") and int(port) > 0
    rc, out, _ = ctl(server, "-q", "list_connections", "connection_name", "channels", "vhost")
    assert rows(out)[1] == ["ctl-test", "1", "/"]

    rc, out, _ = ctl(server, "list_channels")
    lines = out.splitlines()
    assert lines[:2] == ["Listing channels ...",
                         "pid\tuser\tconsumer_count\tmessages_unacknowledged"]
    channel_pid, user, consumers, unacked = lines[2].split("\t")
    assert (user, consumers, unacked) == ("guest", "1", "0")

    rc, out, _ = ctl(server, "list_consumers")
    lines = out.splitlines()
    assert lines[:2] == ["Listing consumers in vhost / ...",
                         "queue_name\tchannel_pid\tconsumer_tag\tack_required\tprefetch_count\t"
                         "active\targuments"]
    assert lines[2].split("\t") == ["cq", channel_pid, "ctag1", "true", "5", "true", "[]"]
    c.close()


def test_purge_queue_empties_a_queue(server):
    c = connect(server)
    ch = c.channel()
    ch.queue_declare("pq")
    for _ in range(5):
        ch.basic_publish("", "pq", b"m")
    wait_until(lambda: ch.queue_declare("pq", passive=True).method.message_count == 5)
    rc, out, err = ctl(server, "purge_queue", "pq")
    assert (rc, out) == (0, "Purging queue 'pq' in vhost '/' ...\n"), err
    assert ch.queue_declare("pq", passive=True).method.message_count == 0
    # As rabbitmqctl 3.10.8: an unknown queue is "not_found", exit 69.
    rc, out, err = ctl(server, "purge_queue", "nosuch")
    assert (rc, err) == (69, "Error:\nnot_found\n")
    c.close()


def test_delete_queue(server):
    c = connect(server)
    ch = c.channel()
    ch.queue_declare("dq", durable=True)
    ch.basic_publish("", "dq", b"m")
    wait_until(lambda: ch.queue_declare("dq", passive=True).method.message_count == 1)
    rc, out, _ = ctl(server, "delete_queue", "dq")
    assert rc == 0
    assert out == ("Deleting queue 'dq' on vhost '/' ...\n"
                   "Queue was successfully deleted with 1 ready messages\n")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare("dq", passive=True)
    assert e.value.reply_code == 404
    rc, _, err = ctl(server, "delete_queue", "dq")
    assert (rc, err) == (64, "Error:\nQueue not found\n")
    c.close()


def test_delete_queue_if_empty_refuses_a_queue_with_messages(server):
    c = connect(server)
    ch = c.channel()
    ch.queue_declare("eq")
    ch.basic_publish("", "eq", b"m")
    wait_until(lambda: ch.queue_declare("eq", passive=True).method.message_count == 1)
    rc, _, _ = ctl(server, "delete_queue", "eq", "--if-empty")
    assert rc != 0
    assert ch.queue_declare("eq", passive=True).method.message_count == 1
    c.close()


def test_close_connection_sends_320_with_the_reason(server):
    c = connect(server)
    rc, out, _ = ctl(server, "-q", "list_connections", "pid")
    pid = rows(out)[1][0]
    rc, out, err = ctl(server, "close_connection", pid, "go away")
    assert rc == 0, err
    assert out == "Closing connection %s, reason: go away...\n" % pid
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        wait_until(lambda: c.process_data_events(0.1) and False, timeout=30)
    assert e.value.reply_code == 320
    assert e.value.reply_text == "CONNECTION_FORCED - go away"
    rc, _, _ = ctl(server, "close_connection", "<nosuch>", "x")
    assert rc == 69


def test_list_users_and_vhosts(server):
    rc, out, _ = ctl(server, "list_users")
    assert out == "Listing users ...\nuser\ttags\nguest\t[administrator]\n"
    rc, out, _ = ctl(server, "list_users", "--formatter", "json")
    assert json.loads(out) == [{"user": "guest", "tags": ["administrator"]}]
    rc, out, _ = ctl(server, "list_vhosts", "name", "tracing")
    assert out == "Listing vhosts ...\nname\ttracing\n/\tfalse\n"


def test_unknown_column_and_verb_are_usage_errors(server):
    rc, out, err = ctl(server, "list_queues", "bogus")
    assert rc == 64
    assert err.startswith("Error (argument validation): Info key(s) bogus are not supported\n")
    rc, _, _ = ctl(server, "no_such_verb")
    assert rc == 64
    rc, out, _ = ctl(server, "help", "list_queues")
    assert rc == 0 and "list_queues" in out and "messages_ready" in out
    rc, out, _ = ctl(server, "list_queues", "--help")
    assert rc == 0 and "messages_ready" in out


def test_socket_is_private_to_the_brokers_user(server):
    st = os.stat(os.path.join(server.data_dir, "warren.sock"))
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.getuid()


def test_server_not_running_exits_69():
    d = tempfile.mkdtemp(prefix="warrenctl-none-")
    try:
        p = subprocess.run([WARRENCTL, "list_queues"], capture_output=True, text=True,
                           env=dict(os.environ, WARREN_DATA_DIR=d), timeout=60)
        assert p.returncode == 69
        assert p.stderr.startswith("Error: unable to perform an operation on node 'warren@")
    finally:
        os.rmdir(d)


def test_data_dir_from_environment_and_rabbitmqctl_name(server):
    env = dict(os.environ, WARREN_DATA_DIR=server.data_dir)
    p = subprocess.run([RABBITMQCTL_LINK, "list_users", "-q"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert (p.returncode, p.stdout) == (0, "user\ttags\nguest\t[administrator]\n")
    p = subprocess.run([RABBITMQCTL_LINK, "help"], capture_output=True, text=True, timeout=60)
    assert "rabbitmqctl [--node <node>]" in p.stdout
    # ./data by default.
    p = subprocess.run([WARRENCTL, "-q", "list_users"], capture_output=True, text=True,
                       cwd=os.path.dirname(server.data_dir), timeout=60,
                       env={k: v for k, v in os.environ.items() if k != "WARREN_DATA_DIR"})
    assert p.returncode == 69  # no ./data server there


def test_long_data_dir_path(warren_factory):
    base = tempfile.mkdtemp(prefix="warrenctl-long-")
    d = os.path.join(base, "d" * 60, "e" * 60)
    os.makedirs(d)
    b = warren_factory(data_dir=d)
    rc, out, err = ctl(b, "-q", "list_vhosts")
    assert (rc, out) == (0, "name\n/\n"), err


def test_status_await_startup_and_stop(warren_factory):
    b = warren_factory()
    rc, out, _ = ctl(b, "status")
    assert rc == 0 and out.startswith("Status of node warren@") and "OS PID: %d" % b.pid in out
    rc, _, _ = ctl(b, "await_startup")
    assert rc == 0
    rc, out, err = ctl(b, "stop")
    assert rc == 0, err
    assert out.startswith("Stopping and halting node warren@")
    assert b.process.wait(30) == 0  # the clean stop (exit 0), as after SIGTERM
    assert not os.path.exists(os.path.join(b.data_dir, "warren.sock"))
    rc, _, _ = ctl(b, "stop")
    assert rc == 69


def test_await_startup_waits_for_the_server(warren_factory):
    d = tempfile.mkdtemp(prefix="warrenctl-await-")
    p = subprocess.Popen([WARRENCTL, "--data-dir", d, "await_startup", "--timeout", "60"])
    time.sleep(0.5)
    assert p.poll() is None  # nobody there yet
    warren_factory(data_dir=d)
    assert p.wait(60) == 0


def test_stale_socket_of_a_crashed_server_is_replaced(restartable_broker):
    b = restartable_broker.start()
    b.kill()
    assert os.path.exists(os.path.join(restartable_broker.data_dir, "warren.sock"))
    restartable_broker.current = None
    b = restartable_broker.start()
    rc, out, _ = ctl(b, "-q", "list_vhosts")
    assert (rc, out) == (0, "name\n/\n")


def declare_objects(b):
    c = connect(b)
    ch = c.channel()
    ch.exchange_declare("dx", "topic", durable=True)
    ch.exchange_declare("dx2", "fanout", durable=True, auto_delete=False)
    ch.queue_declare("dq1", durable=True, arguments={"x-max-length": 10, "x-queue-mode": "lazy"})
    ch.queue_declare("dq2", durable=True)
    ch.queue_bind("dq1", "dx", "a.#")
    ch.queue_bind("dq2", "dx", "b.*", arguments={"k": "v"})
    ch.exchange_bind("dx2", "dx", "c")
    c.close()


def objects(b):
    out = {}
    for verb, cols in (("list_queues", ["name", "durable", "auto_delete", "arguments"]),
                       ("list_exchanges", ["name", "type", "durable", "auto_delete", "internal",
                                           "arguments"]),
                       ("list_bindings", ["source_name", "destination_name", "destination_kind",
                                          "routing_key", "arguments"])):
        rc, text, err = ctl(b, verb, "--formatter", "json", *cols)
        assert rc == 0, err
        out[verb] = sorted(json.dumps(r, sort_keys=True) for r in json.loads(text))
    return out


def test_definitions_export_then_import_into_a_fresh_broker(warren_factory, tmp_path):
    a = warren_factory()
    declare_objects(a)
    path = str(tmp_path / "defs.json")
    rc, out, err = ctl(a, "export_definitions", path)
    assert rc == 0, err
    defs = json.load(open(path))
    assert {q["name"] for q in defs["queues"]} == {"dq1", "dq2"}
    assert {x["name"] for x in defs["exchanges"]} == {"dx", "dx2"}
    assert len(defs["bindings"]) == 3
    assert defs["users"][0]["name"] == "guest"
    assert defs["users"][0]["hashing_algorithm"] == "rabbit_password_hashing_sha256"

    b = warren_factory()
    assert objects(b) != objects(a)
    rc, out, err = ctl(b, "import_definitions", path)
    assert rc == 0, err
    assert objects(b) == objects(a)
    # From standard input too, and importing the same again changes nothing.
    rc, _, err = ctl(b, "import_definitions", "-", stdin=open(path).read())
    assert rc == 0, err
    assert objects(b) == objects(a)
    rc, text, _ = ctl(b, "export_definitions", "-")
    by_name = lambda qs: sorted(qs, key=lambda q: q["name"])
    assert by_name(json.loads(text)["queues"]) == by_name(defs["queues"])


def test_import_of_a_conflicting_definition_fails_with_65(warren_factory):
    b = warren_factory()
    c = connect(b)
    c.channel().queue_declare("cq", durable=True)
    c.close()
    defs = {"queues": [{"name": "cq", "vhost": "/", "durable": True, "auto_delete": False,
                        "arguments": {"x-max-length": 5}}]}
    rc, _, err = ctl(b, "import_definitions", "-", stdin=json.dumps(defs))
    assert rc == 65
    assert "PRECONDITION_FAILED" in err


def test_imported_definitions_survive_a_restart(restartable_broker, tmp_path):
    b = restartable_broker.start()
    defs = {"exchanges": [{"name": "rx", "vhost": "/", "type": "direct", "durable": True,
                           "auto_delete": False, "internal": False, "arguments": {}}],
            "queues": [{"name": "rq", "vhost": "/", "durable": True, "auto_delete": False,
                        "arguments": {}}],
            "bindings": [{"source": "rx", "vhost": "/", "destination": "rq",
                          "destination_type": "queue", "routing_key": "k", "arguments": {}}]}
    rc, _, err = ctl(b, "import_definitions", "-", stdin=json.dumps(defs))
    assert rc == 0, err
    b = restartable_broker.restart()
    rc, out, _ = ctl(b, "-q", "list_bindings", "source_name", "destination_name", "routing_key")
    assert "rx\trq\tk" in out.splitlines()


def test_import_of_10000_durable_queues_does_not_stall_traffic(warren_factory, tmp_path):
    b = warren_factory()
    n = 10000
    defs = {"exchanges": [{"name": "bulk", "vhost": "/", "type": "direct", "durable": True,
                           "auto_delete": False, "internal": False, "arguments": {}}],
            "queues": [{"name": "bulk-%d" % i, "vhost": "/", "durable": True,
                        "auto_delete": False, "arguments": {}} for i in range(n)],
            "bindings": [{"source": "bulk", "vhost": "/", "destination": "bulk-%d" % i,
                          "destination_type": "queue", "routing_key": "k%d" % i,
                          "arguments": {}} for i in range(n)]}

    # A client doing round trips all along. It must see the import half done (the first queue
    # there, the last not yet): the broker served it between chunks, not only before and after.
    c = connect(b)
    ch = c.channel()
    finished = threading.Event()
    result = {}

    path = str(tmp_path / "bulk.json")
    with open(path, "w") as f:
        json.dump(defs, f)

    def run_import():
        result["ctl"] = ctl(b, "import_definitions", path, timeout=300)
        finished.set()

    def exists(name):
        nonlocal ch
        try:
            ch.queue_declare(name, passive=True)
            return True
        except pika.exceptions.ChannelClosedByBroker:
            ch = c.channel()
            return False

    t = threading.Thread(target=run_import)
    t.start()
    seen_half_done = 0
    round_trips = 0
    deadline = time.monotonic() + 300  # a hang bound, not a timing assert
    while not finished.is_set() and time.monotonic() < deadline:
        # In this order: the first queue seen, then the last one missing, proves a half-done
        # import (the other order would also fit an import done in one go between the two).
        first = exists("bulk-0")
        last = exists("bulk-%d" % (n - 1))
        round_trips += 2
        if first and not last:
            seen_half_done += 1
    t.join(300)
    rc, out, err = result["ctl"]
    assert rc == 0, err
    assert seen_half_done > 0, "no round trip was served during the import (%d in all)" % round_trips
    rc, out, _ = ctl(b, "-q", "--no-table-headers", "list_queues", "name")
    assert len([l for l in out.splitlines() if l.startswith("bulk-")]) == n
    rc, out, _ = ctl(b, "-q", "--no-table-headers", "list_bindings", "source_name")
    assert len([l for l in out.splitlines() if l == "bulk"]) == n
    # Routing works through the imported bindings.
    ch.basic_publish("bulk", "k9999", b"m")
    wait_until(lambda: ch.queue_declare("bulk-9999", passive=True).method.message_count == 1)
    c.close()


def test_authenticate_user(server):
    rc, out, _ = ctl(server, "authenticate_user", "guest", "guest")
    assert (rc, out) == (0, 'Authenticating user "guest" ...\nSuccess\n')
    rc, out, err = ctl(server, "authenticate_user", "guest", "wrong")
    assert rc == 65
    assert err == ('Error:\nError: failed to authenticate user "guest"\n'
                   "user 'guest' - invalid credentials\n")


def test_import_of_a_rabbitmq_export(server):
    """A file written by rabbitmqctl 3.10.8 export_definitions (headers-exchange binding arguments,
    an alternate exchange, an exchange-to-exchange binding, queue arguments)."""
    path = os.path.join(warren_process.HERE, "data", "rabbitmq-3.10.8-definitions.json")
    rc, out, err = ctl(server, "import_definitions", path)
    assert rc == 0, err
    assert out.endswith("Successfully started definition import. This process is asynchronous "
                        "and can take some time.\n")
    rc, out, _ = ctl(server, "-q", "list_bindings", "source_name", "destination_name",
                     "destination_kind", "routing_key", "arguments")
    assert sorted(out.splitlines()[1:]) == sorted([
        "\tq1\tqueue\tq1\t[]", "\tlq\tqueue\tlq\t[]",
        'hx\tlq\tqueue\t\t[{"a",1},{"x-match","all"}]', "x1\tq1\tqueue\ta.#\t[]",
        "x1\tfx\texchange\tr.k\t[]"])
    rc, out, _ = ctl(server, "-q", "list_queues", "name", "durable", "arguments")
    assert sorted(out.splitlines()[1:]) == [
        'lq\ttrue\t[{"x-max-length",10},{"x-message-ttl",60000},{"x-queue-mode","lazy"}]',
        "q1\ttrue\t[]"]
    # Routing works through them: the alternate exchange of hx is x1, bound to q1 with a.#.
    c = connect(server)
    ch = c.channel()
    ch.basic_publish("hx", "a.b", b"m", pika.BasicProperties(headers={"a": 2}))
    wait_until(lambda: ch.queue_declare("q1", passive=True).method.message_count == 1)
    c.close()


def test_timeout_when_the_server_does_not_answer(server):
    import signal
    os.kill(server.pid, signal.SIGSTOP)
    try:
        rc, out, err = ctl(server, "list_queues", "--timeout", "1")
    finally:
        os.kill(server.pid, signal.SIGCONT)
    assert rc == 75
    assert out.startswith("Timeout: 1.0 seconds ...\n")
    assert err.startswith("Error: operation list_queues on node warren@")
    assert err.endswith("timed out. Timeout value used: 1000\n")


def test_listing_an_unknown_vhost_lists_nothing(server):
    # As rabbitmqctl 3.10.8: the banner, no rows, exit 0.
    rc, out, _ = ctl(server, "list_queues", "-p", "nosuch")
    assert (rc, out) == (0, "Timeout: 60.0 seconds ...\nListing queues for vhost nosuch ...\n")


def test_permissions_listings(server):
    # The default user's permissions on /; outputs as rabbitmqctl 3.10.8.
    rc, out, _ = ctl(server, "list_permissions")
    assert (rc, out) == (0, 'Listing permissions for vhost "/" ...\n'
                            "user\tconfigure\twrite\tread\nguest\t.*\t.*\t.*\n")
    rc, out, err = ctl(server, "list_permissions", "-p", "nosuch")
    assert (rc, out, err) == (65, 'Listing permissions for vhost "nosuch" ...\n',
                              "Virtual host 'nosuch' does not exist\n")
    rc, out, _ = ctl(server, "list_user_permissions", "guest", "--formatter", "json")
    assert json.loads(out) == [{"vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}]
    rc, out, err = ctl(server, "list_user_permissions", "nosuch")
    assert (rc, err) == (69, 'Error:\n{:no_such_user, "nosuch"}\n')
