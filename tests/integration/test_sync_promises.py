"""What the broker promises about fdatasync, proved with the sync actually held.

A kill -9 test cannot tell a write that reached the disk from one that only reached the page
cache, and a tmpfs /tmp syncs instantly. So these tests start a broker with the test hook
WARREN_TEST_SYNC_GATE=<file>: while that file exists every journal fdatasync is held on the sync
thread (the broker logs "sync gate: holding fdatasync" once per held sync). Then:

* a publisher confirm for a persistent message in a durable queue does not leave the broker
  while its sync is held, and does once it is released (confirms of transient messages on
  another channel keep flowing meanwhile: the observation can see a confirm);
* tx.commit-ok for a transaction with a persistent message waits for its sync likewise;
* past 64 MiB of journal data waiting for the disk, publishing connections are not read (the
  queue stops growing, a request on that connection gets no reply) and are read again once the
  disk catches up.

The raw client is used because it shows every frame the broker sends, in order.
"""
import copy
import os
import struct
import threading
import time

import pika
import pytest

import rawamqp
from amqp_helpers import params, queue_depth, unique, wait_until

CONFIRM_SELECT = (85, 10)
CONFIRM_SELECT_OK = (85, 11)
TX_SELECT = (90, 10)
TX_SELECT_OK = (90, 11)
TX_COMMIT = (90, 20)
TX_COMMIT_OK = (90, 21)
DELIVERY_MODE_FLAG = 1 << 12  # the 4th property (content-type is bit 15)
PERSISTENT = {"flags": DELIVERY_MODE_FLAG, "props": b"\x02"}
HOLD_LINE = "sync gate: holding fdatasync"
# How long a test looks for a frame that must NOT come. It cannot prove "never", only "not while
# the sync is held"; the ordering checks (a reply that came back without it) carry the proof.
NEGATIVE_WINDOW = 1.0
DEADLINE = float(os.environ.get("SYNC_DEADLINE", "60"))


@pytest.fixture
def gated(warren_factory, tmp_path):
    """(broker, gate path): a private broker whose journal syncs wait while the gate exists."""
    gate = tmp_path / "sync-gate"
    broker = warren_factory(env={"WARREN_TEST_SYNC_GATE": str(gate)})
    yield broker, gate
    if gate.exists():
        gate.unlink()  # never leave the broker stuck: its SIGTERM stop must stay clean


def holds(broker):
    return sum(HOLD_LINE in line for line in list(broker.log))


def close_gate_and_wait(broker, gate, action):
    """Creates the gate, runs action(), and waits until the broker logs a held sync."""
    before = holds(broker)
    gate.touch()
    action()
    assert wait_until(lambda: holds(broker) > before, timeout=DEADLINE), \
        "no journal sync was held after %r" % (action,)


def is_method(frm, class_method, channel=None):
    return (frm.type == rawamqp.FRAME_METHOD and frm.class_method == class_method
            and (channel is None or frm.channel == channel))


def read_until(client, class_method, channel, timeout=DEADLINE):
    """Reads frames until that method arrives on that channel; returns (it, frames before)."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        frm = client.read_frame(timeout=max(0.01, deadline - time.monotonic()))
        if is_method(frm, class_method, channel):
            return frm, seen
        seen.append(frm)


def read_for(client, seconds):
    """Every frame that arrives within `seconds`."""
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            seen.append(client.read_frame(timeout=max(0.01, deadline - time.monotonic())))
        except OSError:  # socket.timeout
            break
    return seen


def acks_on(frames, channel):
    out = []
    for frm in frames:
        if is_method(frm, rawamqp.BASIC_ACK, channel):
            args = frm.args
            out.append(args.longlong())
    return out


def open_client(broker, channels):
    client = rawamqp.RawClient(broker.host, broker.port, timeout=DEADLINE).handshake()
    for ch in channels:
        client.channel_open(ch)
    return client


def select(client, channel, method, ok):
    # confirm.select carries a no-wait bit; tx.select has no arguments (a byte left over is a 501
    # FRAME_ERROR in RabbitMQ).
    args = rawamqp.bits(False) if method == CONFIRM_SELECT else b""
    client.send_method(channel, method, args)
    client.read_method(ok)


def passive_declare(client, channel, queue):
    client.send_method(channel, rawamqp.QUEUE_DECLARE,
                       struct.pack(">H", 0) + rawamqp.shortstr(queue)
                       + rawamqp.bits(True, False, False, False, False) + rawamqp.table({}))


def test_confirm_waits_for_the_fsync_of_a_persistent_message(gated):
    broker, gate = gated
    client = open_client(broker, (1, 2, 3))
    durable_q = unique("sync-confirm")
    transient_q = unique("sync-confirm-transient")
    client.queue_declare(1, durable_q, durable=True)
    client.queue_declare(3, transient_q, auto_delete=False)
    select(client, 1, CONFIRM_SELECT, CONFIRM_SELECT_OK)
    select(client, 3, CONFIRM_SELECT, CONFIRM_SELECT_OK)

    # Positive control: with the gate open a persistent publish is confirmed, and this way of
    # reading sees it.
    client.basic_publish(1, "", durable_q, b"before the gate", **PERSISTENT)
    ack, _ = read_until(client, rawamqp.BASIC_ACK, 1)
    assert ack.args.longlong() == 1

    close_gate_and_wait(broker, gate, lambda: client.basic_publish(
        1, "", durable_q, b"held", **PERSISTENT))
    # While that sync is held: a transient message on channel 3 is confirmed (confirms flow, and
    # would be seen), a round trip on channel 2 completes, and channel 1 gets no ack before them.
    client.basic_publish(3, "", transient_q, b"transient")
    _, before_transient_ack = read_until(client, rawamqp.BASIC_ACK, 3)
    passive_declare(client, 2, durable_q)
    _, before_declare_ok = read_until(client, rawamqp.QUEUE_DECLARE_OK, 2)
    later = read_for(client, NEGATIVE_WINDOW)
    assert acks_on(before_transient_ack + before_declare_ok + later, 1) == [], \
        "a confirm left the broker while the fsync covering it was held"
    assert holds(broker) >= 1 and gate.exists()

    gate.unlink()
    ack, _ = read_until(client, rawamqp.BASIC_ACK, 1)
    assert ack.args.longlong() == 2, "the held message's confirm (tag 2) after the release"
    client.close()


def test_tx_commit_ok_waits_for_the_fsync(gated):
    broker, gate = gated
    client = open_client(broker, (1,))
    q = unique("sync-tx")
    client.queue_declare(1, q, durable=True)
    select(client, 1, TX_SELECT, TX_SELECT_OK)

    # Positive control: with the gate open the commit completes.
    client.basic_publish(1, "", q, b"first", **PERSISTENT)
    client.send_method(1, TX_COMMIT)
    read_until(client, TX_COMMIT_OK, 1)

    client.basic_publish(1, "", q, b"second", **PERSISTENT)
    close_gate_and_wait(broker, gate, lambda: client.send_method(1, TX_COMMIT))
    held = read_for(client, NEGATIVE_WINDOW)
    assert not any(is_method(f, TX_COMMIT_OK) for f in held), \
        "tx.commit-ok left the broker while the fsync of the transaction was held"

    gate.unlink()
    read_until(client, TX_COMMIT_OK, 1)
    observer = pika.BlockingConnection(params(broker.port))
    try:
        assert queue_depth(observer.channel(), q) == 2
    finally:
        observer.close()
    client.close()


def unread_bytes(server_port, client_port):
    """Bytes the broker has not read yet from the socket between these ports (its receive
    queue, from /proc/net/tcp); None when there is no such socket."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote, queues = fields[1], fields[2], fields[4]
            if (int(local.split(":")[1], 16) == server_port
                    and int(remote.split(":")[1], 16) == client_port):
                return int(queues.split(":")[1], 16)
    return None


def test_publishers_are_not_read_while_the_disk_is_behind(gated):
    """Above 64 MiB of unsynced journal data the broker stops reading connections (its socket's
    receive queue fills and a request gets no reply); once the sync returns it reads them again.
    While paused no connection is read, so everything is observed from the socket itself."""
    broker, gate = gated
    count, size = 70, 1 << 20  # 70 MiB: past the 64 MiB high-water mark
    q = unique("sync-backlog")
    client = open_client(broker, (1, 2))
    client.queue_declare(1, q, durable=True)
    client_port = client.sock.getsockname()[1]
    body = b"b" * size
    gate.touch()
    sent = threading.Event()
    errors = []

    # sendall blocks once the broker stops reading and the socket buffers fill, so a thread
    # writes, through its own socket object on the same connection: a socket's timeout also
    # bounds sendall, and the reads below set short ones.
    writer = copy.copy(client)
    writer.sock = client.sock.dup()
    writer.sock.settimeout(DEADLINE)

    def publish_then_ask():
        try:
            for _ in range(count):
                writer.basic_publish(1, "", q, body, **PERSISTENT)
            passive_declare(writer, 2, q)
            sent.set()
        except OSError as exc:
            errors.append(exc)

    publisher = threading.Thread(target=publish_then_ask, daemon=True)
    publisher.start()
    assert wait_until(lambda: any("pausing publishers" in line for line in list(broker.log)),
                      timeout=DEADLINE), "the broker never paused publishers"
    # Paused: bytes wait unread in the broker's socket, and the request sent after the
    # publishes gets no reply.
    assert wait_until(lambda: (unread_bytes(broker.port, client_port) or 0) > 0,
                      timeout=DEADLINE), "the broker kept reading the publisher"
    silent = read_for(client, NEGATIVE_WINDOW)
    assert not any(is_method(f, rawamqp.QUEUE_DECLARE_OK) for f in silent)
    assert unread_bytes(broker.port, client_port) > 0, "the broker read on while paused"
    assert gate.exists() and not errors

    gate.unlink()
    assert wait_until(lambda: any("resuming publishers" in line for line in list(broker.log)),
                      timeout=DEADLINE), "the broker never resumed reading publishers"
    ok, _ = read_until(client, rawamqp.QUEUE_DECLARE_OK, 2)
    assert ok.args.shortstr() == q and ok.args.long() == count
    assert unread_bytes(broker.port, client_port) == 0
    publisher.join(DEADLINE)
    writer.sock.close()
    assert sent.is_set() and not errors
    observer = pika.BlockingConnection(params(broker.port))
    try:
        och = observer.channel()
        assert queue_depth(och, q) == count
        och.queue_delete(q)
    finally:
        observer.close()
    client.close()
