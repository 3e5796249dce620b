"""Logins as RabbitMQ does them: AMQPLAIN with a real client (py-amqp, kombu's transport, logs in
with AMQPLAIN by default) and `guest` refused from anywhere but loopback (RabbitMQ's default
loopback_users = [guest]).

The non-loopback test needs an address of this machine that is not loopback. It never uses the
machine's own interfaces: it makes a network namespace of its own with a veth pair addressed
198.51.100.1/.2 (TEST-NET-2), runs the broker and the client inside it, and deletes it after.
That needs root and `ip` (iproute2); elsewhere the test skips, and under CI=true a skip fails.
"""
import json
import os
import shutil
import subprocess
import sys
import uuid

import amqp
import pytest

import rawamqp

HERE = os.path.dirname(os.path.abspath(__file__))
NS_ADDRESS = "198.51.100.1"
PEER_ADDRESS = "198.51.100.2"


# ---- AMQPLAIN


def test_amqplain_login_with_py_amqp_succeeds(amqp_port):
    conn = amqp.Connection("127.0.0.1:%d" % amqp_port, userid="guest", password="guest",
                           login_method="AMQPLAIN", connect_timeout=30)
    conn.connect()
    try:
        assert conn.connected
        ch = conn.channel()
        q, _, _ = ch.queue_declare("", exclusive=True)
        ch.basic_publish(amqp.Message(b"over AMQPLAIN"), routing_key=q)
        msg = ch.basic_get(q, no_ack=True)
        assert msg is not None and msg.body == b"over AMQPLAIN"
    finally:
        conn.close()


def test_amqplain_wrong_password_with_py_amqp_is_403(amqp_port):
    conn = amqp.Connection("127.0.0.1:%d" % amqp_port, userid="guest", password="wrong",
                           login_method="AMQPLAIN", connect_timeout=30)
    with pytest.raises(amqp.exceptions.AccessRefused) as info:
        conn.connect()
    assert info.value.reply_code == 403
    assert "ACCESS_REFUSED - Login was refused using authentication mechanism AMQPLAIN" \
        in str(info.value)


def test_amqplain_raw_login_reaches_open_ok(raw_client):
    """The same, frame by frame: start-ok with mechanism AMQPLAIN and a LOGIN/PASSWORD table
    (without its length, as RabbitMQ and every client send it) gets tune, then open-ok."""
    c = raw_client(timeout=30)
    c.send_protocol_header()
    c.read_start()
    assert b"AMQPLAIN" in c.mechanisms.split()
    response = rawamqp.table({"LOGIN": "guest", "PASSWORD": "guest"})[4:]
    c.send_method(0, rawamqp.CONNECTION_START_OK,
                  rawamqp.table({}) + rawamqp.shortstr("AMQPLAIN") + rawamqp.longstr(response)
                  + rawamqp.shortstr("en_US"))
    channel_max, frame_max, _ = c.read_tune()
    c.send_tune_ok(channel_max, frame_max, 0)
    c.send_open("/")
    c.read_method(rawamqp.CONNECTION_OPEN_OK)
    c.channel_open(1)


# ---- guest from loopback only

CLIENT_SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import rawamqp
host, port, user, password = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
c = rawamqp.RawClient(host, port, timeout=30)
c.send_protocol_header()
c.read_start()
c.send_start_ok(user, password)
frm = c.read_method()
if frm.class_method == rawamqp.CONNECTION_TUNE:
    channel_max, frame_max = frm.args.short(), frm.args.long()
    c.send_tune_ok(channel_max, frame_max, 0)
    c.send_open("/")
    c.read_method(rawamqp.CONNECTION_OPEN_OK)
    print(json.dumps({"result": "open-ok"}))
    c.close()
else:
    close = rawamqp.Close(frm)
    print(json.dumps({"result": "close", "code": close.reply_code, "text": close.reply_text}))
"""


@pytest.fixture
def netns():
    """A private network namespace with lo and a veth pair (198.51.100.1/24 and .2/24) up."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and ip (iproute2) to make a network namespace")
    name = "warren-it-%s" % uuid.uuid4().hex[:8]
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip("cannot make a network namespace: %s" % made.stderr.strip())
    try:
        for cmd in (["link", "set", "lo", "up"],
                    ["link", "add", "wa0", "type", "veth", "peer", "name", "wb0"],
                    ["addr", "add", NS_ADDRESS + "/24", "dev", "wa0"],
                    ["addr", "add", PEER_ADDRESS + "/24", "dev", "wb0"],
                    ["link", "set", "wa0", "up"],
                    ["link", "set", "wb0", "up"]):
            subprocess.run(["ip", "-n", name] + cmd, check=True, capture_output=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def login_from_namespace(ns, host, port, user, password):
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", CLIENT_SCRIPT, HERE,
                          host, str(port), user, password],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_guest_is_refused_through_a_non_loopback_address(warren_factory, netns):
    broker = warren_factory("--bind", "0.0.0.0", prefix=["ip", "netns", "exec", netns])
    refused = login_from_namespace(netns, NS_ADDRESS, broker.port, "guest", "guest")
    assert refused == {"result": "close", "code": 403,
                       "text": "ACCESS_REFUSED - Login was refused using authentication "
                               "mechanism PLAIN. For details see the broker logfile."}
    assert any("user can only connect via localhost" in line for line in list(broker.log))
    # The same broker, the same user, through loopback: allowed (the refusal was the address).
    assert login_from_namespace(netns, "127.0.0.1", broker.port, "guest", "guest") == \
        {"result": "open-ok"}


def test_other_users_may_log_in_through_a_non_loopback_address(warren_factory, netns):
    broker = warren_factory("--bind", "0.0.0.0", "--default-user", "alice",
                            "--default-pass", "s3cret", prefix=["ip", "netns", "exec", netns])
    assert login_from_namespace(netns, NS_ADDRESS, broker.port, "alice", "s3cret") == \
        {"result": "open-ok"}
    # And a wrong password from there is still refused (the address lets nobody in by itself).
    refused = login_from_namespace(netns, NS_ADDRESS, broker.port, "alice", "wrong")
    assert refused["result"] == "close" and refused["code"] == 403
