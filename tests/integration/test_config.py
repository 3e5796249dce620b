"""rabbitmq.conf (--config FILE) and the listeners: keys applied to a real server and seen by
pika, start-up errors naming the line, environment variables, log.file, IPv4 + IPv6 loopback."""

import os
import re
import socket
import subprocess
import tempfile

import pika
import pytest

from amqp_helpers import wait_until
from test_warrenctl import ctl
import warren_process


def write(tmp_path, text, name="rabbitmq.conf"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def connect(b, user="guest", password="guest", vhost="/", host=None, **kw):
    return pika.BlockingConnection(pika.ConnectionParameters(
        host=host or b.host, port=b.port, virtual_host=vhost,
        credentials=pika.PlainCredentials(user, password), **kw))


def test_first_user_vhost_tags_and_tune_values_from_the_file(warren_factory, tmp_path):
    conf = write(tmp_path, """
# as an operator's rabbitmq.conf
default_user = admin
default_pass = s3cret
default_vhost = prod
default_user_tags.administrator = true
default_user_tags.monitoring = true
heartbeat = 7
frame_max = 65536
channel_max = 9
""")
    b = warren_factory("--config", conf)
    c = connect(b, "admin", "s3cret", "prod")
    params = c._impl.params
    assert (params.heartbeat, params.frame_max, params.channel_max) == (7, 65536, 9)
    c.channel().queue_declare("in-prod")
    c.close()
    # The default guest user was not created; admin has full permissions on prod only.
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        connect(b)
    rc, out, _ = ctl(b, "-q", "list_users")
    assert out == "user\ttags\nadmin\t[administrator, monitoring]\n"
    rc, out, _ = ctl(b, "-q", "list_user_permissions", "admin")
    assert out == "vhost\tconfigure\twrite\tread\nprod\t.*\t.*\t.*\n"


def test_flags_override_the_file(warren_factory, tmp_path):
    conf = write(tmp_path, "heartbeat = 7\n")
    b = warren_factory("--config", conf, "--heartbeat", "11")
    c = connect(b)
    assert c._impl.params.heartbeat == 11
    c.close()


def test_rabbitmq_docker_environment_variables(warren_factory):
    b = warren_factory(env={"RABBITMQ_DEFAULT_USER": "dock", "RABBITMQ_DEFAULT_PASS": "er",
                            "RABBITMQ_DEFAULT_VHOST": "dv"})
    c = connect(b, "dock", "er", "dv")
    c.close()


def run_server(*args, timeout=20, env=None):
    data = tempfile.mkdtemp(prefix="warren-it-config-")
    try:
        return subprocess.run(
            [warren_process.server_binary(), "--data-dir", data, "--amqp-port", "0",
             "--management-port", "0", "--prometheus-port", "0"] + list(args),
            capture_output=True, text=True, timeout=timeout, env=env)
    finally:
        subprocess.run(["rm", "-rf", data])


@pytest.mark.parametrize("text,message", [
    ("heartbeat = 5\nno.such.key = 1\n", "line 2: unknown key 'no.such.key'"),
    ("# comment\n\nheartbeat = often\n",
     "line 3: 'heartbeat' must be an integer from 0 to 65535, got 'often'"),
    ("ssl_options.verify = sometimes\n",
     "line 1: 'ssl_options.verify' must be verify_none or verify_peer, got 'sometimes'"),
    ("vm_memory_high_watermark.absolute = lots\n",
     "line 1: 'vm_memory_high_watermark.absolute' must be a size in bytes"),
    ("just words\n", "line 1: expected 'key = value', got 'just words'"),
])
def test_unknown_keys_and_bad_values_stop_the_start(tmp_path, text, message):
    conf = write(tmp_path, text)
    p = run_server("--config", conf)
    assert p.returncode == 1
    assert ("config file %s %s" % (conf, message)) in p.stderr
    assert "AMQP listening" not in p.stdout


def test_config_file_from_rabbitmq_config_file_env(tmp_path):
    conf = write(tmp_path, "bogus.key = 1\n")
    p = run_server(env=dict(os.environ, RABBITMQ_CONFIG_FILE=conf))
    assert p.returncode == 1
    assert "unknown key 'bogus.key'" in p.stderr


def test_log_file(warren_factory, tmp_path):
    log = tmp_path / "warren.log"
    conf = write(tmp_path, "log.file = %s\nlog.level = info\n" % log)
    b = warren_factory("--config", conf)
    wait_until(lambda: re.search(r"AMQP listening on 127\.0\.0\.1:%d" % b.port, log.read_text()))


def test_loopback_users_none_lets_guest_in_from_another_address(warren_factory, tmp_path):
    """guest from a non-loopback address: refused by default, allowed with loopback_users = none.
    Needs an address of this host other than loopback."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # no packet is sent; picks the outgoing interface
        own = s.getsockname()[0]
    except OSError:
        own = None
    finally:
        s.close()
    if not own or own.startswith("127."):
        pytest.skip("no non-loopback IPv4 address on this host")
    strict = warren_factory("--bind", "0.0.0.0")
    # As RabbitMQ: the same 403 login refusal as a wrong password.
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        connect(strict, host=own)
    conf = write(tmp_path, "loopback_users = none\n")
    open_b = warren_factory("--config", conf, "--bind", "0.0.0.0")
    connect(open_b, host=own).close()


def test_default_listeners_are_ipv4_and_ipv6_loopback_on_one_port():
    data = tempfile.mkdtemp(prefix="warren-it-config-")
    p = subprocess.Popen([warren_process.server_binary(), "--data-dir", data, "--amqp-port", "0",
                          "--management-port", "0", "--prometheus-port", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        while len([l for l in lines if "AMQP listening on" in l]) < 2:
            line = p.stdout.readline()
            assert line, "server exited: " + "".join(lines)
            lines.append(line)
        found = re.findall(r"AMQP listening on (\S+):(\d+)", "".join(lines))
        assert [a for a, _ in found] == ["127.0.0.1", "::1"]
        assert found[0][1] == found[1][1]
        port = int(found[0][1])
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            c = pika.BlockingConnection(pika.ConnectionParameters(host=host, port=port))
            c.channel().queue_declare("", exclusive=True)
            c.close()
        # `localhost`, whichever family it resolves to first.
        pika.BlockingConnection(pika.ConnectionParameters(host="localhost", port=port)).close()
    finally:
        p.terminate()
        p.wait(30)
        subprocess.run(["rm", "-rf", data])


def test_several_bind_addresses(warren_factory):
    b = warren_factory("--bind", "127.0.0.1,::1")
    # start() returns at the first listening line; the next one follows it in the log.
    wait_until(lambda: any("AMQP listening on ::1:" in l for l in b.log))
    v6 = [l for l in b.log if "AMQP listening on ::1:" in l]
    assert v6[0].strip().endswith(":%d" % b.port)
    c = connect(b, host="::1")  # guest: ::1 is loopback
    c.close()


def test_listeners_from_the_file(warren_factory, tmp_path):
    # --amqp-port 0 from the fixture overrides the file's port; the addresses come from the file
    # only when --bind is absent, so name them on the command line as the file does.
    conf = write(tmp_path, "listeners.tcp.local = 127.0.0.1:5672\nlisteners.tcp.v6 = ::1:5672\n")
    b = warren_factory("--config", conf, "--bind", "127.0.0.1,::1")
    wait_until(lambda: any("AMQP listening on ::1:%d" % b.port in l for l in b.log))
