"""A second client implementation: the rabbitmq-c command line tools
(amqp-declare-queue, amqp-publish, amqp-get, amqp-consume, amqp-delete-queue
from Debian's amqp-tools package)."""

import shutil
import subprocess
import time

import pika
import pika.exceptions
import pytest

from amqp_helpers import expect_channel_closed, queue_depth, wait_until

DEADLINE = 30  # seconds to wait for something that must happen (bounds a hang only)
TOOLS = ["amqp-declare-queue", "amqp-publish", "amqp-get", "amqp-consume",
         "amqp-delete-queue"]
pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS),
    reason="amqp-tools (rabbitmq-c) not installed: apt-get install amqp-tools")

END = b"<END-OF-MESSAGE>"


@pytest.fixture
def tool(amqp_port):
    def run(name, *args, stdin=None, timeout=2 * DEADLINE, check=True):
        cmd = [name, "--server", "127.0.0.1", "--port", str(amqp_port),
               "--username", "guest", "--password", "guest"] + list(args)
        proc = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)
        if check:
            assert proc.returncode == 0, (cmd, proc.returncode, proc.stderr)
        return proc
    return run


@pytest.fixture
def tool_queue(connect, uname):
    name = uname("tools")
    yield name
    try:
        connect().channel().queue_delete(name)
    except Exception:  # noqa: E722 - best-effort cleanup
        pass


def test_declare_queue(tool, channel, tool_queue):
    out = tool("amqp-declare-queue", "-q", tool_queue)
    assert out.stdout.strip() == tool_queue.encode()
    ok = channel.queue_declare(tool_queue, passive=True)
    assert ok.method.message_count == 0


def test_declare_server_named_queue(tool, channel):
    out = tool("amqp-declare-queue", "-q", "")
    name = out.stdout.strip().decode()
    assert name.startswith("amq.gen-")
    # the broker created the queue it named (not exclusive: it outlives the tool)
    assert channel.queue_declare(name, passive=True).method.queue == name
    channel.queue_delete(name)


def test_declare_durable_queue(tool, channel, connection, tool_queue):
    tool("amqp-declare-queue", "-d", "-q", tool_queue)
    channel.queue_declare(tool_queue, passive=True)  # it exists
    channel.queue_declare(tool_queue, durable=True)  # equivalent: no 406
    assert channel.is_open
    # and it is durable: a non-durable redeclaration is refused
    other = connection.channel()
    exc = expect_channel_closed(other, connection, other.queue_declare,
                                tool_queue, durable=False)
    assert exc.reply_code == 406
    assert "inequivalent arg 'durable'" in exc.reply_text


def test_publish_then_pika_get(tool, channel, tool_queue):
    channel.queue_declare(tool_queue)
    tool("amqp-publish", "-r", tool_queue, "-b", "hello from rabbitmq-c",
         "-C", "text/plain", "-E", "utf-8", "-H", "x-origin: amqp-tools",
         "-t", "reply.here", "-p")
    assert wait_until(lambda: queue_depth(channel, tool_queue) == 1,
                      timeout=DEADLINE)
    method, props, body = channel.basic_get(tool_queue, auto_ack=True)
    assert body == b"hello from rabbitmq-c"
    assert props.content_type == "text/plain"
    assert props.content_encoding == "utf-8"
    assert props.reply_to == "reply.here"
    assert props.delivery_mode == 2
    assert props.headers == {"x-origin": "amqp-tools"}


def test_pika_publish_then_amqp_get(tool, channel, tool_queue):
    channel.queue_declare(tool_queue)
    channel.basic_publish("", tool_queue, b"first")
    channel.basic_publish("", tool_queue, b"second \x00\xff binary")
    assert wait_until(lambda: queue_depth(channel, tool_queue) == 2,
                      timeout=DEADLINE)
    assert tool("amqp-get", "-q", tool_queue).stdout == b"first"
    assert tool("amqp-get", "-q", tool_queue).stdout == \
        b"second \x00\xff binary"
    empty = tool("amqp-get", "-q", tool_queue, check=False)
    assert empty.returncode != 0  # basic.get-empty
    assert empty.stdout == b""
    assert queue_depth(channel, tool_queue) == 0


def test_amqp_get_missing_queue_reports_404(tool, uname):
    out = tool("amqp-get", "-q", uname("missing"), check=False)
    assert out.returncode != 0
    assert b"404" in out.stderr
    assert b"NOT_FOUND" in out.stderr


def test_amqp_tools_wrong_password_reports_403(amqp_port):
    proc = subprocess.run(
        ["amqp-get", "--server", "127.0.0.1", "--port", str(amqp_port),
         "--username", "guest", "--password", "wrong", "-q", "whatever"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=2 * DEADLINE)
    assert proc.returncode != 0
    assert b"403" in proc.stderr
    assert b"ACCESS_REFUSED" in proc.stderr


def test_publish_get_round_trip_tools_only(tool, channel, tool_queue):
    tool("amqp-declare-queue", "-q", tool_queue)
    for body in ["one", "two", "three"]:
        tool("amqp-publish", "-r", tool_queue, "-b", body)
    assert wait_until(lambda: queue_depth(channel, tool_queue) == 3,
                      timeout=DEADLINE)
    got = [tool("amqp-get", "-q", tool_queue).stdout for _ in range(3)]
    assert got == [b"one", b"two", b"three"]
    assert queue_depth(channel, tool_queue) == 0  # amqp-get acks


def test_line_buffered_publish(tool, channel, tool_queue):
    channel.queue_declare(tool_queue)
    tool("amqp-publish", "-r", tool_queue, "-l",
         stdin=b"alpha\nbeta\ngamma\n")
    assert wait_until(lambda: queue_depth(channel, tool_queue) == 3,
                      timeout=DEADLINE)
    bodies = [channel.basic_get(tool_queue, auto_ack=True)[2]
              for _ in range(3)]
    assert [b.rstrip(b"\n") for b in bodies] == [b"alpha", b"beta", b"gamma"]


def split_messages(output):
    parts = output.split(END)
    assert parts[-1].strip() == b""
    return parts[:-1]


def test_consume_count(tool, channel, tool_queue):
    channel.queue_declare(tool_queue)
    for i in range(5):
        channel.basic_publish("", tool_queue, b"msg-%d" % i)
    assert wait_until(lambda: queue_depth(channel, tool_queue) == 5,
                      timeout=DEADLINE)
    out = tool("amqp-consume", "-q", tool_queue, "-c", "3", "--",
               "sh", "-c", "cat; printf '%s'" % END.decode())
    assert split_messages(out.stdout) == [b"msg-0", b"msg-1", b"msg-2"]
    # the other two are still there (any prefetched ones were requeued)
    assert wait_until(lambda: queue_depth(channel, tool_queue) == 2,
                      timeout=DEADLINE)
    rest = [channel.basic_get(tool_queue, auto_ack=True)[2]
            for _ in range(2)]
    assert rest == [b"msg-3", b"msg-4"]


def test_consume_no_ack_with_prefetch(tool, channel, tool_queue):
    channel.queue_declare(tool_queue)
    for i in range(4):
        channel.basic_publish("", tool_queue, b"noack-%d" % i)
    assert wait_until(lambda: queue_depth(channel, tool_queue) == 4,
                      timeout=DEADLINE)
    out = tool("amqp-consume", "-q", tool_queue, "-c", "4", "-A", "-p", "2",
               "--", "sh", "-c", "cat; printf '%s'" % END.decode())
    assert split_messages(out.stdout) == [b"noack-%d" % i for i in range(4)]
    assert queue_depth(channel, tool_queue) == 0


def test_consume_from_exchange_binding(tool, amqp_port, connect, uname):
    """amqp-consume declares a queue bound to an exchange and receives what
    pika publishes there."""
    key = uname("key")
    queue = uname("tools-bound")
    cmd = ["amqp-consume", "--server", "127.0.0.1", "--port",
           str(amqp_port), "-q", queue, "-x", "-e", "amq.direct",
           "-r", key, "-c", "2", "--",
           "sh", "-c", "cat; printf '%s'" % END.decode()]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        ch = connect().channel()
        ch.confirm_delivery()
        deadline = time.monotonic() + DEADLINE
        while True:  # retry until the consumer's binding exists
            try:
                ch.basic_publish("amq.direct", key, b"first", mandatory=True)
                break
            except pika.exceptions.UnroutableError:
                assert time.monotonic() < deadline, "binding never appeared"
                time.sleep(0.05)
        ch.basic_publish("amq.direct", key, b"second", mandatory=True)
        out, err = proc.communicate(timeout=2 * DEADLINE)
        assert proc.returncode == 0, err
        assert split_messages(out) == [b"first", b"second"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_delete_queue_reports_message_count(tool, channel, tool_queue):
    channel.queue_declare(tool_queue)
    for i in range(3):
        channel.basic_publish("", tool_queue, b"x")
    assert wait_until(lambda: queue_depth(channel, tool_queue) == 3,
                      timeout=DEADLINE)
    out = tool("amqp-delete-queue", "-q", tool_queue)
    assert out.stdout.strip() == b"3"
    exc = expect_channel_closed(channel, channel.connection,
                                channel.queue_declare, tool_queue,
                                passive=True)
    assert exc.reply_code == 404
