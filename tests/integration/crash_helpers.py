"""Crash-consistency rounds for the persistent message journal.

One round: publishers (each on its own connection, in confirm mode) send persistent messages with
unique ids into a durable queue while a consumer acks them; the broker is killed with SIGKILL at a
random moment, restarted, and the queue is drained. The promise being checked is the one
publisher confirms make: every confirmed id was either acked by the consumer before the crash or
is in the queue after the restart. Beyond that, no body may be corrupt or made up, and an id seen
a second time must carry redelivered=True.

Used by test_durability_messages.py (a few rounds in CI) and bench/crash_test.py (many rounds).
Plain pika and the standard library only, no pytest: the bench script imports it too.
"""

import hashlib
import random
import threading
import time

import pika
import pika.exceptions

QUEUE = "crash.q"
THREAD_JOIN_TIMEOUT = 10.0


def connection_params(port):
    return pika.ConnectionParameters(
        host="127.0.0.1", port=port, credentials=pika.PlainCredentials("guest", "guest"),
        connection_attempts=1, socket_timeout=5, stack_timeout=10,
        blocked_connection_timeout=30)


# ---------------------------------------------------------------------------
# Self-checking bodies: "id|size|" + payload + "|" + digest. The payload is derived from the id,
# so a body can be rebuilt from its id and compared byte for byte.


def _payload_size(rng):
    roll = rng.random()
    if roll < 0.01:
        return rng.randint(131072, 200000)  # spans several frames (frame_max 131072)
    if roll < 0.05:
        return 0
    return rng.randint(1, 2000)


def make_body(msg_id):
    rng = random.Random(msg_id)
    payload = rng.randbytes(_payload_size(rng))
    head = ("%s|%d|" % (msg_id, len(payload))).encode()
    digest = hashlib.sha256(head + payload).hexdigest()[:16].encode()
    return head + payload + b"|" + digest


def body_id(body):
    """The id a body claims, or None when the body is not exactly what make_body() makes for
    that id (torn, mixed up with another record, or garbage)."""
    msg_id = body.split(b"|", 1)[0]
    try:
        msg_id = msg_id.decode("ascii")
    except UnicodeDecodeError:
        return None
    return msg_id if make_body(msg_id) == body else None


# ---------------------------------------------------------------------------
# Load: publishers and a consumer, each a thread with its own BlockingConnection.


class Publisher(threading.Thread):
    """Publishes ids "<prefix>-<n>" until its connection dies (the crash) or stop is set.
    basic_publish in confirm mode returns only after the broker's basic.ack (and raises
    NackError on basic.nack), so `confirmed` is exactly what the broker promised to keep."""

    def __init__(self, port, queue, prefix, stop, killed):
        super().__init__(name="crash-publisher-" + prefix, daemon=True)
        self.port, self.queue, self.prefix = port, queue, prefix
        self.stop, self.killed = stop, killed
        self.attempted = []  # in publish order; the last one may be in flight at the crash
        self.confirmed = []
        self.nacked = []
        self.error = None  # an exception that came before the kill

    def run(self):
        try:
            conn = pika.BlockingConnection(connection_params(self.port))
            ch = conn.channel()
            ch.confirm_delivery()
            n = 0
            while not self.stop.is_set():
                msg_id = "%s-%d" % (self.prefix, n)
                n += 1
                self.attempted.append(msg_id)
                props = pika.BasicProperties(delivery_mode=2, message_id=msg_id)
                try:
                    ch.basic_publish("", self.queue, make_body(msg_id), props)
                except pika.exceptions.NackError:
                    self.nacked.append(msg_id)
                    continue
                self.confirmed.append(msg_id)
            conn.close()
        except Exception as exc:  # noqa: BLE001 - the kill surfaces as any pika/socket error
            if not self.killed.is_set():
                self.error = exc


class Consumer(threading.Thread):
    """Consumes with manual acks, acking in random batches (basic.ack multiple=true), so at the
    crash some deliveries are acked, some unacked, and some acks are in flight. A random
    per-message delay (per round) usually makes it slower than the publishers, so that a backlog
    of confirmed, never delivered messages builds up too."""

    def __init__(self, port, queue, stop, killed, rng, prefetch=200):
        super().__init__(name="crash-consumer", daemon=True)
        self.port, self.queue, self.stop, self.killed = port, queue, stop, killed
        self.rng = random.Random(rng.random())
        self.prefetch = prefetch
        self.deliveries = []  # (id or None if corrupt, redelivered, message_id property)
        self.acked = set()  # ids whose ack was handed to pika (it may not have reached the broker)
        self.error = None
        self._pending = []
        self._batch = 1
        self._delay = self.rng.uniform(0.0002, 0.003)

    def _on_message(self, ch, method, props, body):
        time.sleep(self._delay)
        msg_id = body_id(body)
        self.deliveries.append((msg_id, method.redelivered, props.message_id))
        self._pending.append(msg_id)
        if len(self._pending) >= self._batch:
            ch.basic_ack(method.delivery_tag, multiple=True)
            self.acked.update(self._pending)
            self._pending = []
            self._batch = self.rng.randint(1, 30)

    def run(self):
        try:
            conn = pika.BlockingConnection(connection_params(self.port))
            ch = conn.channel()
            ch.basic_qos(prefetch_count=self.prefetch)
            ch.basic_consume(self.queue, self._on_message)
            while not self.stop.is_set():
                conn.process_data_events(time_limit=0.05)
            conn.close()
        except Exception as exc:  # noqa: BLE001
            if not self.killed.is_set():
                self.error = exc


# ---------------------------------------------------------------------------
# Draining after the restart.


def drain(port, queue, timeout=30.0):
    """Consumes everything in `queue` (acking it) on a fresh broker with no other clients.
    Returns ([(id or None, redelivered, message_id property, body)], depth left afterwards)."""
    conn = pika.BlockingConnection(connection_params(port))
    try:
        ch = conn.channel()
        ch.basic_qos(prefetch_count=1000)
        depth = ch.queue_declare(queue, durable=True, passive=True).method.message_count
        got = []
        last_tag = acked_tag = 0
        deadline = time.monotonic() + timeout
        if depth:
            for method, props, body in ch.consume(queue, inactivity_timeout=0.5):
                if method is not None:
                    got.append((body_id(body), method.redelivered, props.message_id, body))
                    last_tag = method.delivery_tag
                    if last_tag - acked_tag >= 500:  # keep the prefetch window open
                        ch.basic_ack(last_tag, multiple=True)
                        acked_tag = last_tag
                if len(got) >= depth or time.monotonic() > deadline:
                    break
            if last_tag > acked_tag:
                ch.basic_ack(last_tag, multiple=True)
            ch.cancel()
        left = ch.queue_declare(queue, durable=True, passive=True).method.message_count
        conn.close()
        return got, left
    except Exception:
        if conn.is_open:
            conn.close()
        raise


# ---------------------------------------------------------------------------
# Rounds and their verdicts.


class RoundResult(object):
    def __init__(self, number):
        self.number = number
        self.confirmed = 0
        self.nacked = 0
        self.acked_before_crash = 0
        self.recovered = 0
        self.lost = []
        self.duplicates = 0  # deliveries of an id already delivered before (allowed if redelivered)
        self.problems = []
        self.seconds = 0.0

    @property
    def ok(self):
        return not self.problems

    def summary(self):
        return ("round %d: %d confirmed, %d nacked, %d acked before the crash, %d recovered, "
                "%d lost, %d duplicates, %.2f s%s"
                % (self.number, self.confirmed, self.nacked, self.acked_before_crash,
                   self.recovered, len(self.lost), self.duplicates, self.seconds,
                   "" if self.ok else ", PROBLEMS:\n  " + "\n  ".join(self.problems)))


class CrashTester(object):
    """Runs rounds against one data directory. `kill()` SIGKILLs the broker and `start()`
    starts it again on the same data directory, returning its AMQP port. State carries over
    between rounds: an ack the drain sent just before the next crash may not have reached the
    disk, so an id from an earlier round may legitimately come back (with redelivered=True)."""

    def __init__(self, kill, start, port, seed=None, publishers=3, queue=QUEUE,
                 min_load=0.2, max_load=1.2):
        self.kill, self.start, self.port = kill, start, port
        self.rng = random.Random(seed)
        self.publishers, self.queue = publishers, queue
        self.min_load, self.max_load = min_load, max_load
        self.published = set()  # every id ever attempted, all rounds
        self.delivered = set()  # every id ever delivered, all rounds
        self.rounds = []
        conn = pika.BlockingConnection(connection_params(port))
        conn.channel().queue_declare(queue, durable=True)
        conn.close()

    def run_round(self):
        result = RoundResult(len(self.rounds) + 1)
        started = time.monotonic()
        stop, killed = threading.Event(), threading.Event()
        pubs = [Publisher(self.port, self.queue, "r%dp%d" % (result.number, i), stop, killed)
                for i in range(self.publishers)]
        consumer = Consumer(self.port, self.queue, stop, killed, self.rng)
        for t in pubs + [consumer]:
            t.start()
        time.sleep(self.rng.uniform(self.min_load, self.max_load))
        killed.set()  # before the kill, so errors it causes are not reported as problems
        self.kill()
        stop.set()
        for t in pubs + [consumer]:
            t.join(THREAD_JOIN_TIMEOUT)
            if t.is_alive():
                result.problems.append("%s still running %.0f s after the kill"
                                       % (t.name, THREAD_JOIN_TIMEOUT))
            if t.error is not None:
                result.problems.append("%s failed before the kill: %r" % (t.name, t.error))
        self.port = self.start()
        recovered, left = drain(self.port, self.queue)
        self._judge(result, pubs, consumer, recovered, left)
        result.seconds = time.monotonic() - started
        self.rounds.append(result)
        return result

    def _judge(self, result, pubs, consumer, recovered, left):
        problems = result.problems
        confirmed = set()
        for p in pubs:
            self.published.update(p.attempted)
            confirmed.update(p.confirmed)
            result.nacked += len(p.nacked)
        result.confirmed = len(confirmed)
        result.acked_before_crash = len(consumer.acked)
        result.recovered = len(recovered)

        def check_delivery(where, msg_id, redelivered, prop_id):
            if msg_id is None:
                problems.append("%s: corrupt body (message_id property %r)" % (where, prop_id))
                return
            if prop_id != msg_id:
                problems.append("%s: body of %s carries message_id %r" % (where, msg_id, prop_id))
            if msg_id not in self.published:
                problems.append("%s: %s was never published" % (where, msg_id))
            if msg_id in self.delivered:
                result.duplicates += 1
                if not redelivered:
                    problems.append("%s: %s delivered again with redelivered=False"
                                    % (where, msg_id))
            self.delivered.add(msg_id)

        for msg_id, redelivered, prop_id in consumer.deliveries:
            check_delivery("before the crash", msg_id, redelivered, prop_id)
        seen_after = set()
        last_seq = {}
        for msg_id, redelivered, prop_id, _body in recovered:
            if msg_id in seen_after:
                problems.append("after the restart: %s is in the queue twice" % msg_id)
            seen_after.add(msg_id)
            check_delivery("after the restart", msg_id, redelivered, prop_id)
            if msg_id is None:
                continue
            # One queue keeps each publisher's messages in publish order, across the restart too.
            prefix, _, seq = msg_id.rpartition("-")
            if prefix in last_seq and int(seq) <= last_seq[prefix]:
                problems.append("after the restart: %s came after %s-%d"
                                % (msg_id, prefix, last_seq[prefix]))
            last_seq[prefix] = int(seq)
        result.lost = sorted(confirmed - consumer.acked - seen_after)
        if result.lost:
            problems.append("%d confirmed ids lost, e.g. %s" % (len(result.lost), result.lost[:10]))
        if left:
            problems.append("queue still holds %d messages after the drain" % left)
