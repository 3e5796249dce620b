"""warrenctl's users, vhosts, permissions, limits and policies verbs against a live server, and
definitions with users/vhosts/permissions/policies/limits.

Expected outputs are rabbitmqctl 3.10.8's, captured from a real node (data/rabbitmqctl-3.10.8-
outputs.txt from "add_user u1 p1" on, data/rabbitmqctl-3.10.8-admin-outputs.txt): every
command's exit code, stdout and stderr are compared exactly. The seeds' operator sequence
(test_seed_sequence) runs against the real rabbitmqctl too: set WARREN_TEST_RABBITMQCTL=1 and
RABBITMQ_NODENAME (and ERL_EPMD_PORT) for a fresh RabbitMQ node."""

import json
import os
import shlex
import subprocess

import pika
import pytest

from amqp_helpers import wait_until
from test_warrenctl import RABBITMQCTL_LINK, WARRENCTL, ctl
import warren_process

DATA = os.path.join(warren_process.HERE, "data")


def golden(path, first=None, last=None):
    """The (args, rc, stdout, stderr) records of a captured-outputs file, from the section named
    `first` through `last` (inclusive)."""
    records, cur, part = [], None, None
    for line in open(path).read().split("\n"):
        if line.startswith("=== "):
            cur = {"cmd": line[4:], "rc": None, "stdout": "", "stderr": ""}
            records.append(cur)
            part = None
        elif cur is not None and line.startswith("rc=") and part is None:
            cur["rc"] = int(line[3:])
        elif line == "--stdout:":
            part = "stdout"
        elif line == "--stderr:":
            part = "stderr"
        elif part is not None:
            cur[part] += line + "\n"
    # The split leaves one newline too many at the very end of the file.
    if records and records[-1][part or "stderr"].endswith("\n"):
        records[-1][part or "stderr"] = records[-1][part or "stderr"][:-1]
    names = [r["cmd"] for r in records]
    start = names.index(first) if first else 0
    end = names.index(last) + 1 if last else len(records)
    return records[start:end]


def normalized(cmd, out):
    # RabbitMQ lists users and permissions in no particular order; Warren by name. The lines
    # are compared as a set (banner, header and rows are distinct lines anyway).
    if cmd.startswith("list_") and "--formatter" not in cmd:
        return "\n".join(sorted(out.splitlines()))
    return out


def replay(broker, records, shell_quoted):
    for r in records:
        # The first capture file names its commands unquoted; the admin file quotes as a shell.
        args = shlex.split(r["cmd"]) if shell_quoted else r["cmd"].split()
        rc, out, err = ctl(broker, *args)
        assert (rc, normalized(r["cmd"], out), err) == (
            r["rc"], normalized(r["cmd"], r["stdout"]), r["stderr"]), r["cmd"]


def test_users_vhosts_permissions_limits_as_rabbitmqctl(warren_factory):
    b = warren_factory()
    replay(b, golden(os.path.join(DATA, "rabbitmqctl-3.10.8-outputs.txt"),
                     "add_user u1 p1", "list_permissions --formatter json"), False)


def test_policies_passwords_and_errors_as_rabbitmqctl(warren_factory):
    b = warren_factory()
    replay(b, golden(os.path.join(DATA, "rabbitmqctl-3.10.8-admin-outputs.txt")), True)


@pytest.fixture
def rabbitmqctl():
    """run(*args) -> (rc, stdout, stderr) through the command named rabbitmqctl: Warren's link,
    or the real one with WARREN_TEST_RABBITMQCTL=1."""
    if os.environ.get("WARREN_TEST_RABBITMQCTL"):
        def real(*args):
            p = subprocess.run(["rabbitmqctl"] + list(args), capture_output=True, text=True,
                               timeout=120)
            return p.returncode, p.stdout, p.stderr
        yield real
        return
    b = warren_process.start([])
    env = dict(os.environ, WARREN_DATA_DIR=b.data_dir)

    def warren(*args):
        p = subprocess.run([RABBITMQCTL_LINK] + list(args), capture_output=True, text=True,
                           env=env, timeout=120)
        return p.returncode, p.stdout, p.stderr
    warren.broker = b
    try:
        yield warren
    finally:
        b.stop()


def test_seed_sequence(rabbitmqctl):
    """The operator sequence of the issue, exactly as rabbitmqctl 3.10.8 prints it."""
    steps = [
        (["add_user", "jamie", "851230"],
         'Adding user "jamie" ...\nDone. Don\'t forget to grant the user permissions to some '
         "virtual hosts! See 'rabbitmqctl help set_permissions' to learn more.\n"),
        (["list_users"], "Listing users ...\nuser\ttags\nguest\t[administrator]\njamie\t[]\n"),
        (["set_user_tags", "jamie", "administrator"],
         'Setting tags for user "jamie" to [administrator] ...\n'),
        (["set_permissions", "-p", "/", "jamie", ".*", ".*", ".*"],
         'Setting permissions for user "jamie" in vhost "/" ...\n'),
        (["list_queues"], "Timeout: 60.0 seconds ...\nListing queues for vhost / ...\n"),
        (["list_vhosts"], "Listing vhosts ...\nname\n/\n"),
        (["add_vhost", "seedv"], 'Adding vhost "seedv" ...\n'),
        (["list_vhosts"], "Listing vhosts ...\nname\n/\nseedv\n"),
        (["list_permissions", "-p", "/"],
         'Listing permissions for vhost "/" ...\nuser\tconfigure\twrite\tread\n'
         "guest\t.*\t.*\t.*\njamie\t.*\t.*\t.*\n"),
        (["delete_vhost", "seedv"], 'Deleting vhost "seedv" ...\n'),
        (["list_users"],
         "Listing users ...\nuser\ttags\nguest\t[administrator]\njamie\t[administrator]\n"),
        (["delete_user", "jamie"], 'Deleting user "jamie" ...\n'),
    ]
    for args, expected in steps:
        rc, out, err = rabbitmqctl(*args)
        cmd = " ".join(args)
        assert (rc, normalized(cmd, out).rstrip("\n"), err) == (
            0, normalized(cmd, expected).rstrip("\n"), ""), args
    if hasattr(rabbitmqctl, "broker"):
        # And the user it made can log in, then is gone.
        b = rabbitmqctl.broker
        rc, _, _ = rabbitmqctl("add_user", "jamie", "851230")
        rabbitmqctl("set_permissions", "jamie", ".*", ".*", ".*")
        c = pika.BlockingConnection(pika.ConnectionParameters(
            host=b.host, port=b.port, credentials=pika.PlainCredentials("jamie", "851230")))
        c.channel().queue_declare("jamies")
        c.close()


def connect(b, user="guest", password="guest", vhost="/"):
    return pika.BlockingConnection(pika.ConnectionParameters(
        host=b.host, port=b.port, virtual_host=vhost,
        credentials=pika.PlainCredentials(user, password)))


def test_changes_apply_to_open_connections(warren_factory):
    b = warren_factory()
    for args in (["add_vhost", "live"], ["add_user", "lu", "pw"],
                 ["set_permissions", "-p", "live", "lu", ".*", ".*", ".*"]):
        assert ctl(b, *args)[0] == 0
    c = connect(b, "lu", "pw", "live")
    ch = c.channel()
    ch.queue_declare("allowed")
    # Narrowed while connected: the next declare of another name is refused.
    assert ctl(b, "set_permissions", "-p", "live", "lu", "^allowed$", ".*", ".*")[0] == 0
    ch.queue_declare("allowed")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare("other")
    assert e.value.reply_code == 403
    assert e.value.reply_text == (
        "ACCESS_REFUSED - access to queue 'other' in vhost 'live' refused for user 'lu'")
    # Deleting the user closes its connection (320, RabbitMQ's text).
    assert ctl(b, "delete_user", "lu")[0] == 0
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        for _ in range(50):
            c.process_data_events(0.1)
    assert (e.value.reply_code, e.value.reply_text) == (
        320, "CONNECTION_FORCED - user 'lu' is deleted")
    # Deleting a vhost closes its connections and deletes its queues.
    g = connect(b, vhost="/")
    assert ctl(b, "set_permissions", "-p", "live", "guest", ".*", ".*", ".*")[0] == 0
    gl = connect(b, vhost="live")
    assert ctl(b, "delete_vhost", "live")[0] == 0
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        for _ in range(50):
            gl.process_data_events(0.1)
    assert (e.value.reply_code, e.value.reply_text) == (
        320, "CONNECTION_FORCED - vhost 'live' is deleted")
    assert g.is_open
    g.close()


def test_vhost_limits_from_warrenctl(warren_factory):
    b = warren_factory()
    assert ctl(b, "set_vhost_limits", '{"max-queues":1}')[0] == 0
    c = connect(b)
    ch = c.channel()
    ch.queue_declare("one")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare("two")
    assert e.value.reply_code == 406
    assert "queue limit in vhost '/' (1) is reached" in e.value.reply_text
    c.close()
    assert ctl(b, "set_vhost_limits", '{"max-queues":-1}')[0] == 0
    c = connect(b)
    c.channel().queue_declare("two")
    c.close()


def test_policy_from_warrenctl_applies_at_once(warren_factory):
    b = warren_factory()
    c = connect(b)
    ch = c.channel()
    ch.queue_declare("pol.q")
    for i in range(5):
        ch.basic_publish("", "pol.q", b"m%d" % i)
    wait_until(lambda: ch.queue_declare("pol.q", passive=True).method.message_count == 5)
    rc, _, err = ctl(b, "set_policy", "--apply-to", "queues", "cap", "^pol\\.", '{"max-length":2}')
    assert rc == 0, err
    assert ch.queue_declare("pol.q", passive=True).method.message_count == 2
    rc, out, _ = ctl(b, "-q", "list_queues", "name", "policy", "messages")
    assert "pol.q\tcap\t2" in out.splitlines()
    assert ctl(b, "clear_policy", "cap")[0] == 0
    for i in range(3):
        ch.basic_publish("", "pol.q", b"n")
    wait_until(lambda: ch.queue_declare("pol.q", passive=True).method.message_count == 5)
    c.close()


def test_tenancy_survives_a_restart(restartable_broker):
    b = restartable_broker.start()
    for args in (["add_vhost", "keep"], ["add_user", "ku", "kpw"],
                 ["set_user_tags", "ku", "monitoring"],
                 ["set_permissions", "-p", "keep", "ku", "^k", "^k", "^k"],
                 ["set_vhost_limits", "-p", "keep", '{"max-connections":5}'],
                 ["set_policy", "-p", "keep", "kp", "^k", '{"message-ttl":1000}']):
        rc, _, err = ctl(b, *args)
        assert rc == 0, (args, err)
    b = restartable_broker.restart()
    assert ctl(b, "-q", "list_users")[1].splitlines()[1:] == [
        "guest\t[administrator]", "ku\t[monitoring]"]
    assert ctl(b, "-q", "list_permissions", "-p", "keep")[1] == (
        "user\tconfigure\twrite\tread\nku\t^k\t^k\t^k\n")
    assert ctl(b, "-q", "list_vhost_limits", "-p", "keep")[1] == '{"max-connections":5}\n'
    assert ctl(b, "-q", "list_policies", "-p", "keep")[1].splitlines()[1] == (
        'keep\tkp\t^k\tall\t{"message-ttl":1000}\t0')
    c = connect(b, "ku", "kpw", "keep")
    c.channel().queue_declare("kq")
    c.close()


def test_definitions_from_rabbitmq_with_users_vhosts_policies(warren_factory, tmp_path):
    """A file exported by RabbitMQ 3.10.8 (users jamie/851230 and reader/readpw, vhost prod with
    limits, permissions, a reject-publish policy, an exchange, a queue and a binding) imports,
    and its users log in with their original passwords."""
    b = warren_factory()
    path = os.path.join(DATA, "rabbitmq-3.10.8-definitions-tenancy.json")
    rc, _, err = ctl(b, "import_definitions", path)
    assert rc == 0, err
    c = connect(b, "jamie", "851230", "prod")
    ch = c.channel()
    ch.confirm_delivery()
    ch.basic_publish("orders-x", "eu.1", b"a")
    ch.basic_publish("orders-x", "eu.2", b"b")
    # The policy cap (max-length 2, reject-publish) applies to orders.eu.
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish("orders-x", "eu.3", b"c")
    c.close()
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        connect(b, "jamie", "wrong", "prod")
    r = connect(b, "reader", "readpw", "prod")
    rch = r.channel()
    assert rch.basic_get("orders.eu", auto_ack=True)[2] == b"a"
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        rch.queue_declare("mine")
    assert e.value.reply_code == 403
    r.close()
    assert ctl(b, "-q", "list_vhost_limits", "-p", "prod")[1] == (
        '{"max-connections":20,"max-queues":50}\n')

    # Export, import into a fresh broker: the same users, vhosts, permissions, policies, limits.
    out = str(tmp_path / "warren.json")
    assert ctl(b, "export_definitions", out)[0] == 0
    exported = json.load(open(out))
    fresh = warren_factory()
    assert ctl(fresh, "import_definitions", out)[0] == 0
    again = str(tmp_path / "again.json")
    assert ctl(fresh, "export_definitions", again)[0] == 0
    second = json.load(open(again))
    for key in ("users", "vhosts", "permissions", "policies", "parameters", "queues",
                "exchanges", "bindings"):
        canon = lambda xs: sorted(json.dumps(x, sort_keys=True) for x in xs)
        assert canon(second[key]) == canon(exported[key]), key
    assert {u["name"] for u in exported["users"]} == {"guest", "jamie", "reader"}
    assert {p["name"] for p in exported["policies"]} == {"cap"}
    c = connect(fresh, "jamie", "851230", "prod")
    c.close()


def test_import_errors(warren_factory):
    b = warren_factory()
    bad = {"users": [{"name": "old", "password_hash": "x",
                      "hashing_algorithm": "rabbit_password_hashing_md5", "tags": ""}]}
    rc, _, err = ctl(b, "import_definitions", "-", stdin=json.dumps(bad))
    assert rc == 65
    assert "rabbit_password_hashing_md5" in err
    bad = {"policies": [{"vhost": "/", "name": "p", "pattern": "(", "apply-to": "all",
                         "definition": {"max-length": 1}, "priority": 0}]}
    rc, _, err = ctl(b, "import_definitions", "-", stdin=json.dumps(bad))
    assert rc == 65
    assert "missing )" in err
    bad = {"permissions": [{"user": "nobody", "vhost": "/", "configure": ".*", "write": ".*",
                            "read": ".*"}]}
    rc, _, err = ctl(b, "import_definitions", "-", stdin=json.dumps(bad))
    assert rc == 65
    assert "nobody" in err
