"""Persistent messages (delivery_mode=2) in durable queues survive restarts, clean (SIGTERM) and
crashes (kill -9), as in RabbitMQ: body, properties and order intact, anything acked, purged or
deleted stays gone, anything unacked comes back redelivered. Confirms and tx.commit-ok promise
the disk. Also: a torn or scribbled journal tail is cut at the last good record, old segments are
deleted, and a full disk nacks publishes without taking the broker down (or, with the disk
alarm, blocks publishers before it is full).

The journal is DATA_DIR/msgs/NNNNNNNNNN.seg (src/store/segment_format.h): a 32-byte header, then
records of u32 length + u32 crc32c + length bytes."""
import datetime
import decimal
import glob
import os
import random
import re
import shutil
import struct
import subprocess
import tempfile
import threading

import pika
import pika.exceptions
import pytest

import amqp_helpers
import conftest
import crash_helpers
import rawamqp
from amqp_helpers import close_quietly, params, wait_until

SEGMENT_HEADER_SIZE = 32
RECORD_PREFIX_SIZE = 8  # u32 length (bytes after the prefix) + u32 crc32c

# Every basic property but the deprecated cluster-id, and headers with each field type pika can
# encode. user_id must be the logged-in user (the broker checks it).
HEADERS = {
    "str": "text",
    "int": 42,
    "neg": -7,
    "long": 2 ** 40,
    "bool": True,
    "false": False,
    "bytes": b"\x00\xffraw",
    "none": None,
    "decimal": decimal.Decimal("3.14"),
    "time": datetime.datetime(2024, 1, 2, 3, 4, 5),
    "nested": {"a": 1, "b": [1, "two", {"three": 3}], "c": {"d": b"deep"}},
    "array": [1, True, "s", b"b", [2, 3]],
}
FULL_PROPS = dict(content_type="application/json", content_encoding="gzip", headers=HEADERS,
                  delivery_mode=2, priority=7, correlation_id="corr-42", reply_to="reply.q",
                  expiration="3600000", message_id="msg-1", timestamp=1700000000,
                  type="order.created", user_id="guest", app_id="warren-tests")
BIG_BODY = random.Random(7).randbytes(300000)  # > frame_max 131072: several body frames


def persistent(**kwargs):
    kwargs.setdefault("delivery_mode", 2)
    return pika.BasicProperties(**kwargs)


def open_channel(broker, confirm=False):
    conn = pika.BlockingConnection(params(broker.port))
    ch = conn.channel()
    if confirm:
        ch.confirm_delivery()
    return conn, ch


def props_dict(props):
    """All 14 properties (None for unset ones), for exact comparison."""
    return dict(vars(props))


def expected_props(**kwargs):
    return props_dict(pika.BasicProperties(**kwargs))


def take_all(ch, queue):
    """basic.get without ack until empty: [(redelivered, props dict, body)]. The messages stay
    unacked, so closing the channel puts them back."""
    return [(m.redelivered, props_dict(p), body)
            for m, p, body in amqp_helpers.get_all(ch, queue, auto_ack=False)]


def bodies_in(broker, queue, ack=True):
    """(redelivered, body) of everything in a durable queue; acked (gone) unless ack=False."""
    conn, ch = open_channel(broker)
    try:
        got = amqp_helpers.get_all(ch, queue, auto_ack=ack)
        return [(m.redelivered, body) for m, _, body in got]
    finally:
        close_quietly(conn)


def assert_queue_missing(broker, queue):
    conn, ch = open_channel(broker)
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.queue_declare(queue, passive=True)
        assert info.value.reply_code == 404, queue
    finally:
        close_quietly(conn)


def logged(broker, text, timeout=30):
    """Waits until a line of the broker's log contains text (the log is read by a thread of
    its own, so a line may show up a little after what the broker did next)."""
    return wait_until(lambda: any(text in line for line in broker.log), timeout=timeout)


def segment_files(data_dir):
    return sorted(glob.glob(os.path.join(data_dir, "msgs", "*.seg")))


def record_offsets(path):
    """Offsets of the complete records in a segment (walking the length prefixes; CRCs are the
    broker's business) and the offset where the walk ended."""
    with open(path, "rb") as f:
        data = f.read()
    offsets, pos = [], SEGMENT_HEADER_SIZE
    while pos + RECORD_PREFIX_SIZE <= len(data):
        (length,) = struct.unpack_from("<I", data, pos)
        if pos + RECORD_PREFIX_SIZE + length > len(data):
            break
        offsets.append(pos)
        pos += RECORD_PREFIX_SIZE + length
    return offsets, pos


def dropped_bytes_logged(broker, segment_path):
    """The byte counts of the log's 'dropping N bytes' lines about this segment."""
    name = os.path.basename(segment_path)
    return [int(m.group(1)) for line in broker.log if name in line
            for m in [re.search(r"dropping (\d+) bytes", line)] if m]


# ---------------------------------------------------------------------------
# 1. What survives a restart, and exactly as it was published.


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "kill-9"])
def test_persistent_messages_survive_restart_exactly(restartable_broker, kill):
    b = restartable_broker.start()
    conn, ch = open_channel(b, confirm=True)
    ch.queue_declare("dur.q", durable=True)
    ch.queue_declare("trans.q", durable=False)
    # Transient messages in between: they must vanish without disturbing the order of the rest.
    ch.basic_publish("", "dur.q", b"first", pika.BasicProperties(**FULL_PROPS))
    ch.basic_publish("", "dur.q", b"transient-1", pika.BasicProperties(delivery_mode=1))
    ch.basic_publish("", "dur.q", BIG_BODY, persistent())
    ch.basic_publish("", "dur.q", b"transient-2", pika.BasicProperties(message_id="no-mode"))
    ch.basic_publish("", "dur.q", b"", persistent(headers={"empty": True}))
    ch.basic_publish("", "dur.q", b"last", persistent(content_type="text/plain"))
    ch.basic_publish("", "trans.q", b"persistent-in-transient-queue", persistent())
    expected = [
        (True, expected_props(**FULL_PROPS), b"first"),
        (True, expected_props(delivery_mode=2), BIG_BODY),
        (True, expected_props(delivery_mode=2, headers={"empty": True}), b""),
        (True, expected_props(delivery_mode=2, content_type="text/plain"), b"last"),
    ]
    if not kill:
        conn.close()
    b = restartable_broker.restart(kill=kill)

    conn, ch = open_channel(b)
    got = take_all(ch, "dur.q")
    # Bodies' heads first, so a failure does not print 300 KB bodies three times over.
    assert [body[:20] for _, _, body in got] == [body[:20] for _, _, body in expected]
    for have, want in zip(got, expected):
        assert have[1:] == want[1:]
    # After a crash the broker cannot know what was delivered, so every message says it may
    # have been (RabbitMQ does the same); after a clean stop that is not required.
    if kill:
        assert [redelivered for redelivered, _, _ in got] == [True] * len(expected)
    conn.close()  # the gets were not acked: they go back to the queue
    assert_queue_missing(b, "trans.q")

    # Recovered messages are kept by the next restart too (nothing acked them); delivered once
    # since, now they are redelivered in any case.
    b = restartable_broker.restart()
    conn, ch = open_channel(b)
    assert take_all(ch, "dur.q") == expected
    conn.close()


# ---------------------------------------------------------------------------
# 2. What must not come back after a clean restart.


def test_settled_messages_do_not_come_back(restartable_broker):
    b = restartable_broker.start()
    conn, ch = open_channel(b, confirm=True)
    queues = ["acked", "consume-autoack", "get-autoack", "rejected", "purged", "deleted",
              "deleted-for-good"]
    for q in queues:
        ch.queue_declare(q, durable=True)
        for i in range(5):
            ch.basic_publish("", q, ("%s-%d" % (q, i)).encode(), persistent())

    # Acked singly and with multiple=true; the one left unacked goes back to the queue when the
    # connection closes and must survive.
    tags = [m.delivery_tag for m, _, _ in amqp_helpers.get_all(ch, "acked", auto_ack=False)]
    ch.basic_ack(tags[1])
    ch.basic_ack(tags[3], multiple=True)  # 0, 2 and 3
    # No-ack deliveries are settled when sent. Each of these queues then gets one more message,
    # so the check below also proves the queue itself was recovered.
    got = amqp_helpers.consume_n(ch, "consume-autoack", 5, auto_ack=True)
    assert [body for _, _, body in got] == [b"consume-autoack-%d" % i for i in range(5)]
    assert len(amqp_helpers.get_all(ch, "get-autoack", auto_ack=True)) == 5
    for q in ("consume-autoack", "get-autoack"):
        ch.basic_publish("", q, q.encode() + b"-kept", persistent())
    # reject and nack without requeue drop; nack with requeue keeps. On a channel of its own:
    # multiple=true covers every unacked tag of the channel, "acked-4" included.
    rch = conn.channel()
    tags = [m.delivery_tag for m, _, _ in amqp_helpers.get_all(rch, "rejected", auto_ack=False)]
    rch.basic_reject(tags[0], requeue=False)
    rch.basic_nack(tags[1], requeue=False)
    rch.basic_nack(tags[3], multiple=True, requeue=False)  # 2 and 3
    rch.basic_nack(tags[4], requeue=True)
    assert ch.queue_purge("purged").method.message_count == 5
    ch.basic_publish("", "purged", b"after-purge", persistent())
    ch.queue_delete("deleted")
    # Same name, new queue: none of the old messages belong to it.
    ch.queue_declare("deleted", durable=True)
    ch.basic_publish("", "deleted", b"after-delete", persistent())
    ch.queue_delete("deleted-for-good")
    conn.close()

    b = restartable_broker.restart()
    # Only messages that were delivered before may be expected to say redelivered=True (a
    # clean shutdown need not mark the others), so those flags are checked and the rest are not.
    expected = {
        "acked": [(True, b"acked-4")],
        "consume-autoack": [b"consume-autoack-kept"],
        "get-autoack": [b"get-autoack-kept"],
        "rejected": [(True, b"rejected-4")],
        "purged": [b"after-purge"],
        "deleted": [b"after-delete"],
    }
    for q, want in expected.items():
        got = bodies_in(b, q)
        if want and isinstance(want[0], tuple):
            assert got == want, q
        else:
            assert [body for _, body in got] == want, q
    assert_queue_missing(b, "deleted-for-good")
    conn, ch = open_channel(b)
    assert ch.queue_declare("deleted-for-good", durable=True).method.message_count == 0
    conn.close()
    # The acks of the checks above are durable too.
    b = restartable_broker.restart()
    for q in expected:
        assert bodies_in(b, q) == [], q


# ---------------------------------------------------------------------------
# 3. Delivered but unacked at shutdown: back, in place, redelivered.


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "kill-9"])
def test_unacked_deliveries_come_back_redelivered(restartable_broker, kill):
    b = restartable_broker.start()
    conn, ch = open_channel(b, confirm=True)
    ch.queue_declare("unacked.q", durable=True)
    for i in range(5):
        ch.basic_publish("", "unacked.q", b"u%d" % i, persistent())
    consumer_conn, consumer = open_channel(b)
    consumer.basic_qos(prefetch_count=2)
    seen = amqp_helpers.Collector()
    consumer.basic_consume("unacked.q", seen)
    wait_until(lambda: len(seen) == 2, timeout=30, connection=consumer_conn)
    assert seen.bodies == [b"u0", b"u1"]
    m, _, body = ch.basic_get("unacked.q", auto_ack=False)
    assert body == b"u2"
    # The broker goes down with both connections still open and nothing acked.
    b = restartable_broker.restart(kill=kill)

    conn, ch = open_channel(b)
    got = [(m.redelivered, body) for m, _, body in amqp_helpers.get_all(ch, "unacked.q")]
    assert [body for _, body in got] == [b"u0", b"u1", b"u2", b"u3", b"u4"]
    assert [redelivered for redelivered, _ in got[:3]] == [True, True, True]
    # As RabbitMQ: after a clean stop, messages never delivered are not flagged. After a crash
    # the broker cannot know, so every recovered message is flagged (at-least-once).
    assert [redelivered for redelivered, _ in got[3:]] == ([True, True] if kill else [False, False])
    conn.close()


def test_redelivered_flags_survive_a_second_clean_restart(restartable_broker):
    """A message nacked with requeue is flagged redelivered and stays so across clean restarts;
    the others stay unflagged (what RabbitMQ 3.10 shows for the same steps)."""
    b = restartable_broker.start()
    conn, ch = open_channel(b, confirm=True)
    ch.queue_declare("flags.q", durable=True)
    for i in range(3):
        ch.basic_publish("", "flags.q", b"f%d" % i, persistent())
    m, _, body = ch.basic_get("flags.q", auto_ack=False)
    ch.basic_nack(m.delivery_tag, requeue=True)
    conn.close()
    for _ in range(2):
        b = restartable_broker.restart()
    conn, ch = open_channel(b)
    got = [(m.redelivered, body) for m, _, body in amqp_helpers.get_all(ch, "flags.q")]
    assert got == [(True, b"f0"), (False, b"f1"), (False, b"f2")]
    conn.close()


# ---------------------------------------------------------------------------
# 4. One publish, several durable queues.


def test_fanout_to_durable_queues_survives_and_is_acked_per_queue(restartable_broker):
    b = restartable_broker.start()
    conn, ch = open_channel(b, confirm=True)
    ch.exchange_declare("fan.x", "fanout", durable=True)
    for q, durable in (("fan.d1", True), ("fan.d2", True), ("fan.t", False)):
        ch.queue_declare(q, durable=durable)
        ch.queue_bind(q, "fan.x")
    ch.basic_publish("fan.x", "", b"to-all", persistent(message_id="f1"))
    ch.basic_publish("fan.x", "", b"to-all-2", persistent(message_id="f2"))
    b = restartable_broker.restart(kill=True)

    assert bodies_in(b, "fan.d1") == [(True, b"to-all"), (True, b"to-all-2")]
    assert_queue_missing(b, "fan.t")
    # Acking the copies in one queue leaves the other queue's copies alone.
    b = restartable_broker.restart()
    assert bodies_in(b, "fan.d1") == []
    assert [body for _, body in bodies_in(b, "fan.d2")] == [b"to-all", b"to-all-2"]
    b = restartable_broker.restart()
    assert bodies_in(b, "fan.d1") == []
    assert bodies_in(b, "fan.d2") == []


# ---------------------------------------------------------------------------
# 5. Publisher confirms.

CONFIRM_SELECT = (85, 10)
CONFIRM_SELECT_OK = (85, 11)
BASIC_NACK = (60, 120)


def publish_pipelined(port, queue, bodies):
    """Publishes every body (persistent) before reading a single confirm, as fast clients do,
    then reads confirms until the last publish is settled. Returns [(kind, tag, multiple)]."""
    return publish_mixed(port, [(queue, body, 2) for body in bodies])


def publish_mixed(port, items):
    """Like publish_pipelined for (routing key, body, delivery mode) items on the default
    exchange."""
    client = rawamqp.RawClient("127.0.0.1", port, timeout=30)
    try:
        client.handshake()
        client.channel_open(1)
        client.send_method(1, CONFIRM_SELECT, rawamqp.bits(False))
        client.read_method(CONFIRM_SELECT_OK)
        out = []
        for queue, body, mode in items:
            out.append(rawamqp.method_frame(
                1, rawamqp.BASIC_PUBLISH, struct.pack(">H", 0) + rawamqp.shortstr("")
                + rawamqp.shortstr(queue) + rawamqp.bits(False, False)))
            # Property flags 0x1000: delivery-mode only.
            out.append(rawamqp.content_header_frame(1, len(body), flags=0x1000,
                                                    props=bytes([mode])))
            out.append(rawamqp.body_frame(1, body))
        client.send(b"".join(out))
        confirms = []
        while not confirms or confirms[-1][1] < len(items):
            frm = client.read_method()
            assert frm.class_method in (rawamqp.BASIC_ACK, BASIC_NACK), frm
            kind = "ack" if frm.class_method == rawamqp.BASIC_ACK else "nack"
            confirms.append((kind, frm.args.longlong(), bool(frm.args.octet() & 1)))
        return confirms
    finally:
        client.close_socket()


def assert_confirms_cover(confirms, count):
    """Tags only go up, a single (non-multiple) confirm settles exactly the next tag, and the
    last one is `count`: every publish is confirmed exactly once."""
    previous = 0
    for _, tag, multiple in confirms:
        assert tag > previous and (multiple or tag == previous + 1), confirms[:50]
        previous = tag
    assert previous == count


def test_mixed_transient_persistent_unroutable_confirms_cover_every_tag(restartable_broker):
    """On one channel, persistent publishes (wait for the disk), transient ones and unroutable
    ones interleave: every tag is acked exactly once and in order, and what was routed is
    there (the persistent part even after kill -9)."""
    b = restartable_broker.start()
    conn, ch = open_channel(b)
    ch.queue_declare("mixed.q", durable=True)
    conn.close()
    items = []
    for i in range(3000):
        kind = i % 3
        if kind == 0:
            items.append(("mixed.q", b"p%04d" % i, 2))
        elif kind == 1:
            items.append(("mixed.q", b"t%04d" % i, 1))
        else:
            items.append(("no-such-queue", b"u%04d" % i, 2))
    confirms = publish_mixed(b.port, items)
    assert all(kind == "ack" for kind, _, _ in confirms)
    assert_confirms_cover(confirms, len(items))
    conn, ch = open_channel(b)
    assert amqp_helpers.queue_depth(ch, "mixed.q") == 2000
    conn.close()
    b = restartable_broker.restart(kill=True)
    assert [body for _, body in bodies_in(b, "mixed.q")] == \
        [body for q, body, mode in items if q == "mixed.q" and mode == 2]


def test_many_pipelined_confirms_all_acked_and_all_recovered(restartable_broker):
    count = 5000
    b = restartable_broker.start()
    conn, ch = open_channel(b)
    ch.queue_declare("confirm.q", durable=True)
    conn.close()
    bodies = [b"c%05d" % i for i in range(count)]
    confirms = publish_pipelined(b.port, "confirm.q", bodies)
    assert all(kind == "ack" for kind, _, _ in confirms)
    assert_confirms_cover(confirms, count)
    b = restartable_broker.restart(kill=True)
    conn, ch = open_channel(b)
    got = amqp_helpers.consume_n(ch, "confirm.q", count, timeout=60, auto_ack=True)
    assert [body for _, _, body in got] == bodies
    assert all(m.redelivered for m, _, _ in got)
    conn.close()


def test_mandatory_unroutable_persistent_publish_is_returned_and_confirmed(restartable_broker):
    b = restartable_broker.start()
    conn, ch = open_channel(b, confirm=True)
    ch.exchange_declare("lonely.x", "direct", durable=True)
    ch.queue_declare("routed.q", durable=True)
    for exchange, key in (("", "no-such-queue"), ("lonely.x", "k")):
        # pika raises UnroutableError once the publish is both returned and confirmed.
        with pytest.raises(pika.exceptions.UnroutableError) as info:
            ch.basic_publish(exchange, key, b"nowhere", persistent(message_id="m"),
                             mandatory=True)
        (returned,) = info.value.messages
        assert (returned.method.reply_code, returned.method.reply_text) == (312, "NO_ROUTE")
        assert (returned.body, returned.properties.message_id) == (b"nowhere", "m")
    # Not mandatory: silently dropped, still confirmed. The channel keeps working.
    ch.basic_publish("lonely.x", "k", b"dropped", persistent())
    ch.basic_publish("", "routed.q", b"kept", persistent())
    b = restartable_broker.restart(kill=True)
    assert bodies_in(b, "routed.q") == [(True, b"kept")]


# ---------------------------------------------------------------------------
# 6. Transactions: commit-ok means on disk.


def test_tx_commit_is_durable_and_rollback_is_not(restartable_broker):
    b = restartable_broker.start()
    conn, ch = open_channel(b)
    ch.queue_declare("tx.q", durable=True)
    ch.tx_select()
    ch.basic_publish("", "tx.q", b"committed-1", persistent())
    ch.basic_publish("", "tx.q", BIG_BODY, persistent())
    ch.tx_commit()
    ch.basic_publish("", "tx.q", b"rolled-back", persistent())
    ch.tx_rollback()
    ch.basic_publish("", "tx.q", b"committed-2", persistent())
    ch.tx_commit()
    ch.basic_publish("", "tx.q", b"never-committed", persistent())
    # Killed right after commit-ok: there is no time for a lazy write to catch up. (kill -9
    # keeps the page cache, so this shows the write was made before commit-ok; that commit-ok
    # also waits for the fsync is shown by test_sync_promises.py, which holds fdatasync.)
    b = restartable_broker.restart(kill=True)
    got = bodies_in(b, "tx.q")
    assert [body[:20] for _, body in got] == [b"committed-1", BIG_BODY[:20], b"committed-2"]
    assert got[1][1] == BIG_BODY


# ---------------------------------------------------------------------------
# 7. Random crashes under load (bench/crash_test.py runs the same for many rounds).


ROUND_MIN_CONFIRMED = 100


def round_progress():
    """(messages confirmed, deliveries acked) so far by the running crash round's load threads
    (crash_helpers.Publisher / Consumer, found among the live threads)."""
    threads = threading.enumerate()
    confirmed = sum(len(t.confirmed) for t in threads if isinstance(t, crash_helpers.Publisher))
    acked = sum(len(t.acked) for t in threads if isinstance(t, crash_helpers.Consumer))
    return confirmed, acked


def test_random_kills_under_load_lose_no_confirmed_message(restartable_broker):
    seed = random.randrange(1 << 30)
    rb = restartable_broker

    def kill_after_progress():
        # The round's random load time has passed; on a slow machine it may not have been
        # enough, so the kill also waits (bounded) until the round has confirmed a backlog and
        # the consumer has acked something: how much a round does must not depend on speed.
        wait_until(lambda: (round_progress()[0] >= ROUND_MIN_CONFIRMED
                            and round_progress()[1] > 0), timeout=60)
        rb.stop(kill=True)

    b = rb.start("--segment-size", "1048576")  # small segments: rolls and GC within a round
    tester = crash_helpers.CrashTester(kill=kill_after_progress,
                                       start=lambda: rb.start(*rb.extra_args).port,
                                       port=b.port, seed=seed, publishers=3,
                                       min_load=0.5, max_load=1.5)
    for _ in range(3):
        result = tester.run_round()
        assert result.ok, "seed %d: %s" % (seed, result.summary())
        # The round must have exercised something: confirms and acks before the crash.
        assert result.confirmed >= ROUND_MIN_CONFIRMED, result.summary()
        assert result.acked_before_crash > 0, result.summary()
    # Unacked deliveries (up to the prefetch of 200) and a backlog come back after the crash.
    assert sum(r.recovered for r in tester.rounds) > 0, [r.summary() for r in tester.rounds]


# ---------------------------------------------------------------------------
# 8. Damaged journal tails and segment files.

TAIL_COUNT = 10


def tail_body(i):
    return b"tail-%02d-" % i + b"." * 200  # longer than the 20 bytes the scribble test ruins


def publish_tail_messages(restartable_broker):
    """TAIL_COUNT confirmed messages, then a clean stop. Returns the segment that holds them,
    which is the last one, holding exactly those records."""
    b = restartable_broker.start()
    conn, ch = open_channel(b, confirm=True)
    ch.queue_declare("tail.q", durable=True)
    for i in range(TAIL_COUNT):
        ch.basic_publish("", "tail.q", tail_body(i), persistent())
    conn.close()
    restartable_broker.stop()
    segment = segment_files(restartable_broker.data_dir)[-1]
    offsets, end = record_offsets(segment)
    assert len(offsets) == TAIL_COUNT and end == os.path.getsize(segment)
    return segment, offsets


def truncate_tail(path, offsets):
    size = os.path.getsize(path)
    os.truncate(path, size - 3)
    return TAIL_COUNT - 1, size - 3 - offsets[-1]


def scribble_tail(path, offsets):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(size - 20)
        f.write(b"\xff" * 20)
    return TAIL_COUNT - 1, size - offsets[-1]


def appender(garbage):
    def append(path, offsets):
        with open(path, "ab") as f:
            f.write(garbage)
        return TAIL_COUNT, len(garbage)
    return append


@pytest.mark.parametrize("damage", [
    truncate_tail,
    scribble_tail,
    appender(b"\xff" * 100),
    appender(b"\x00" * 100),  # unwritten space, e.g. a hole after a crash
    appender(struct.pack("<I", 50) + b"\x00\x00"),  # a torn record prefix
    appender(struct.pack("<II", 20, 0x12345678) + b"\x01" * 20),  # complete but bad CRC
], ids=["truncate-3", "scribble-20", "append-ff", "append-zeros", "append-torn-prefix",
        "append-bad-crc"])
def test_damaged_tail_is_cut_at_the_last_good_record(restartable_broker, damage):
    segment, offsets = publish_tail_messages(restartable_broker)
    intact, dropped = damage(segment, offsets)
    damaged_size = os.path.getsize(segment)

    b = restartable_broker.start()
    assert dropped_bytes_logged(b, segment) == [dropped], b.log_tail()
    # The cut is made on disk, so the next recovery finds a clean file.
    assert os.path.getsize(segment) == damaged_size - dropped
    conn, ch = open_channel(b, confirm=True)
    got = take_all(ch, "tail.q")
    assert [body for _, _, body in got] == [tail_body(i) for i in range(intact)]
    conn.close()
    # The journal keeps working after the repair.
    conn, ch = open_channel(b, confirm=True)
    ch.basic_publish("", "tail.q", b"after-repair", persistent())
    b = restartable_broker.restart(kill=True)
    assert dropped_bytes_logged(b, segment) == []
    assert [body for _, body in bodies_in(b, "tail.q")] == \
        [tail_body(i) for i in range(intact)] + [b"after-repair"]


def test_segment_with_damaged_header_is_set_aside(restartable_broker):
    segment, _ = publish_tail_messages(restartable_broker)
    with open(segment, "r+b") as f:
        f.write(b"NOTASEGM")  # the magic
    b = restartable_broker.start()
    # Nothing in a segment without a valid header can be trusted; it is kept for inspection.
    assert os.path.exists(segment + ".corrupt")
    assert not os.path.exists(segment)
    assert any("no valid header" in line for line in b.log), b.log_tail()
    assert bodies_in(b, "tail.q") == []
    conn, ch = open_channel(b, confirm=True)
    ch.basic_publish("", "tail.q", b"fresh", persistent())
    b = restartable_broker.restart(kill=True)
    assert [body for _, body in bodies_in(b, "tail.q")] == [b"fresh"]


def test_segments_roll_and_fully_acked_ones_are_deleted(restartable_broker):
    b = restartable_broker.start("--segment-size", "65536")
    conn, ch = open_channel(b, confirm=True)
    ch.queue_declare("roll.q", durable=True)
    bodies = [(b"roll-%03d-" % i) * 100 for i in range(400)]  # ~1 KB each: ~60 per segment
    for body in bodies:
        ch.basic_publish("", "roll.q", body, persistent())
    assert len(segment_files(b.data_dir)) >= 5
    # Recovery reads across all the segments, in order.
    b = restartable_broker.restart(kill=True)
    conn, ch = open_channel(b)
    got = amqp_helpers.consume_n(ch, "roll.q", len(bodies), timeout=60, auto_ack=False)
    assert [body for _, _, body in got] == bodies
    ch.basic_ack(got[-1][0].delivery_tag, multiple=True)
    # Fully acked segments are deleted while the broker runs (the active one stays)...
    assert wait_until(lambda: len(segment_files(b.data_dir)) <= 2, timeout=30), \
        segment_files(b.data_dir)
    conn.close()
    # ...and nothing comes back.
    b = restartable_broker.restart()
    assert bodies_in(b, "roll.q") == []
    assert len(segment_files(b.data_dir)) <= 2, segment_files(b.data_dir)


# ---------------------------------------------------------------------------
# 9. A full disk.

DISK_BODY_SIZE = 4096


def test_compaction_frees_segments_pinned_by_a_few_live_messages(restartable_broker):
    """A busy queue drained by its consumer interleaves with a slow one that keeps a few
    messages: without compaction every segment would stay for one live message each. Compaction
    copies those forward, the old segments go, and the slow queue survives kill -9 and a clean
    restart intact and in order."""
    b = restartable_broker.start("--segment-size", str(64 << 10))
    conn, ch = open_channel(b, confirm=True)
    ch.queue_declare("busy.q", durable=True)
    ch.queue_declare("slow.q", durable=True)
    slow = []
    for i in range(4000):
        ch.basic_publish("", "busy.q", b"b" * 500, persistent())
        if i % 20 == 0:
            slow.append(b"slow-%04d" % i)
            ch.basic_publish("", "slow.q", slow[-1], persistent())
    assert len(segment_files(b.data_dir)) >= 25
    taken = 0
    for m, _, _ in ch.consume("busy.q", inactivity_timeout=30):
        if m is None:
            break  # 30 s without a delivery: the count below fails
        ch.basic_ack(m.delivery_tag)
        taken += 1
        if taken == 4000:
            break
    ch.cancel()
    assert taken == 4000
    assert amqp_helpers.queue_depth(ch, "busy.q") == 0
    # The compaction pass runs every 2 s.
    assert wait_until(lambda: len(segment_files(b.data_dir)) <= 3, timeout=60), \
        segment_files(b.data_dir)
    assert logged(b, "compaction copied")
    conn.close()
    for kill in (True, False):
        b = restartable_broker.restart(kill=kill)
        assert [body for _, body in bodies_in(b, "slow.q", ack=False)] == slow
        conn, ch = open_channel(b)
        assert amqp_helpers.queue_depth(ch, "busy.q") == 0
        conn.close()


@pytest.fixture
def tmpfs_broker():
    """A RestartableBroker whose data directory is on a fresh 3 MiB tmpfs."""
    if conftest.external_port() is not None:
        pytest.skip(conftest.PRIVATE_SKIP_REASON)
    mount_point = tempfile.mkdtemp(prefix="warren-it-tmpfs-")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mount_point],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        os.rmdir(mount_point)
        pytest.skip("cannot mount a 3 MiB tmpfs to fill up (needs root): %s"
                    % (proc.stderr.strip() or proc.returncode))
    rb = conftest.RestartableBroker()
    os.rmdir(rb.data_dir)
    rb.data_dir = os.path.join(mount_point, "data")
    try:
        yield rb
    finally:
        rb.cleanup()  # the broker must be gone before the file system can be unmounted
        if subprocess.run(["umount", mount_point]).returncode != 0:
            subprocess.run(["umount", "-l", mount_point])
        shutil.rmtree(mount_point, ignore_errors=True)


def disk_body(i):
    return (b"disk-%06d-" % i).ljust(DISK_BODY_SIZE, b".")


def publish_until_nacked(ch, queue, limit=3000):
    """Confirmed persistent 4 KiB publishes until the first basic.nack. Returns the confirmed
    bodies and the nacked one."""
    confirmed = []
    for i in range(limit):
        body = disk_body(i)
        try:
            ch.basic_publish("", queue, body, persistent())
        except pika.exceptions.NackError:
            return confirmed, body
        confirmed.append(body)
    pytest.fail("%d publishes of %d bytes were all confirmed on a 3 MiB file system"
                % (limit, DISK_BODY_SIZE))


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def assert_broker_serves(b):
    """A new connection works and a transient message goes through."""
    conn, ch = open_channel(b)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"transient-ok")
    assert ch.basic_get(q, auto_ack=True)[2] == b"transient-ok"
    conn.close()


# The nack tests switch the disk alarm off: they stand for a disk that fills up behind the
# broker's back (another process, a quota), where only the failed write tells.
NO_DISK_ALARM = ("--disk-free-limit", "0")


def test_full_disk_nacks_then_recovers_after_purge(tmpfs_broker):
    b = tmpfs_broker.start(*NO_DISK_ALARM)
    conn, ch = open_channel(b, confirm=True)
    ch.queue_declare("disk.q", durable=True)
    confirmed, _ = publish_until_nacked(ch, "disk.q")
    assert len(confirmed) > 100
    assert b.alive()
    assert_broker_serves(b)

    # A crash on a full disk: recovery needs no space, and everything confirmed is there.
    b = tmpfs_broker.restart(kill=True)
    assert_broker_serves(b)
    assert [body for _, body in bodies_in(b, "disk.q", ack=False)] == confirmed

    conn, ch = open_channel(b, confirm=True)
    ch.queue_purge("disk.q")
    # The purge leaves the segments with no live message, so GC deletes them: wait for it.
    assert wait_until(lambda: free_bytes(b.data_dir) > (1 << 20), timeout=60), \
        (free_bytes(b.data_dir), os.listdir(os.path.join(b.data_dir, "msgs")))
    after = [b"after-purge-%03d" % i for i in range(50)]
    for body in after:
        ch.basic_publish("", "disk.q", body, persistent())  # NackError here fails the test
    assert_broker_serves(b)

    b = tmpfs_broker.restart()
    assert [body for _, body in bodies_in(b, "disk.q", ack=False)] == after
    b = tmpfs_broker.restart(kill=True)
    assert [body for _, body in bodies_in(b, "disk.q")] == after


def test_disk_alarm_blocks_publishers_and_keeps_room_for_acks(tmpfs_broker):
    """As RabbitMQ's disk_free_limit: below the limit, publishing connections get
    connection.blocked and are not read, so the journal keeps room for acks. Here a message of
    another queue pins the (only) segment, so a purge frees no space; the purge's acks must still
    be written, and the purged messages must not come back after a clean restart."""
    b = tmpfs_broker.start("--disk-free-limit", str(1 << 20))
    conn, ch = open_channel(b, confirm=True)
    ch.queue_declare("keep.q", durable=True)
    ch.queue_declare("disk.q", durable=True)
    kept = [b"kept-%d" % i for i in range(10)]
    for body in kept:
        ch.basic_publish("", "keep.q", body, persistent())
    conn.close()
    limit = 1 << 20
    # Room to publish before the alarm, so the block below comes from the publishes.
    assert free_bytes(b.data_dir) > limit + 100 * DISK_BODY_SIZE, free_bytes(b.data_dir)

    # pika raises ConnectionBlockedTimeout only after connection.blocked arrived and stayed.
    pub = pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", b.port, blocked_connection_timeout=2))
    pch = pub.channel()
    pch.confirm_delivery()
    confirmed = []
    with pytest.raises(pika.exceptions.ConnectionBlockedTimeout):
        for i in range(3000):
            pch.basic_publish("", "disk.q", disk_body(i), persistent())  # never nacked
            confirmed.append(disk_body(i))
    assert logged(b, "disk alarm set")
    # Blocked when the disk reached the limit: not before (the free space is below it now, and
    # every publish until then was confirmed, none nacked) and not too late (room is left).
    assert confirmed
    assert 0 < free_bytes(b.data_dir) < limit, (free_bytes(b.data_dir), len(confirmed))
    close_quietly(pub)

    # Connections that do not publish are served (publishing ones would be blocked too, as in
    # RabbitMQ); the purge's ack records fit in the space kept free.
    conn, ch = open_channel(b)
    assert ch.queue_declare("keep.q", passive=True).method.message_count == len(kept)
    assert ch.queue_purge("disk.q").method.message_count == len(confirmed)
    conn.close()
    b = tmpfs_broker.restart()
    assert [body for _, body in bodies_in(b, "keep.q", ack=False)] == kept
    conn, ch = open_channel(b)
    assert amqp_helpers.queue_depth(ch, "disk.q") == 0
    conn.close()


def test_disk_alarm_clears_when_space_returns(tmpfs_broker):
    """Blocked at the limit with connection.blocked "low on disk"; once a purge lets the old
    segments go, the alarm clears, connection.unblocked arrives and publishing works again."""
    b = tmpfs_broker.start("--disk-free-limit", str(1 << 20), "--segment-size", str(256 << 10))
    events = []
    pub = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", b.port))
    pub.add_on_connection_blocked_callback(lambda c, m: events.append(m.method.reason))
    pub.add_on_connection_unblocked_callback(lambda c, m: events.append("unblocked"))
    ch = pub.channel()
    ch.queue_declare("fill.q", durable=True)
    sent = 0
    while "low on disk" not in events and sent < 3000:
        ch.basic_publish("", "fill.q", disk_body(sent), persistent())
        sent += 1
        pub.process_data_events(0)
    assert wait_until(lambda: "low on disk" in events, timeout=30, connection=pub), sent
    assert logged(b, "disk alarm set")

    conn, och = open_channel(b)
    och.queue_purge("fill.q")
    assert wait_until(lambda: "unblocked" in events, timeout=60, connection=pub), \
        (free_bytes(b.data_dir), os.listdir(os.path.join(b.data_dir, "msgs")))
    assert logged(b, "disk alarm cleared")
    ch.queue_declare("after.q", durable=True)
    ch.basic_publish("", "after.q", b"after", persistent())
    assert wait_until(
        lambda: amqp_helpers.queue_depth(och, "after.q") == 1, timeout=30)
    conn.close()
    pub.close()


def test_nacked_persistent_message_is_not_delivered(tmpfs_broker):
    """The contract in src/store/message_store.h: when a journal write fails the broker nacks the
    publish *and drops the message from its queues*. Delivering it anyway hands out a message the
    broker disowned: the publisher republishes it (a duplicate), and a restart loses it.
    """
    b = tmpfs_broker.start(*NO_DISK_ALARM)
    conn, ch = open_channel(b, confirm=True)
    ch.queue_declare("disk.q", durable=True)
    confirmed, nacked = publish_until_nacked(ch, "disk.q")
    assert confirmed
    conn, ch = open_channel(b)
    assert amqp_helpers.queue_depth(ch, "disk.q") == len(confirmed)
    conn.close()
    delivered = [body for _, body in bodies_in(b, "disk.q", ack=False)]
    assert nacked not in delivered
    assert delivered == confirmed
