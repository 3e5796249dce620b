"""The six RabbitMQ tutorials (Python / pika BlockingConnection), written the
way the tutorials write them, with unique names. Every timeout here only
bounds a hang (DEADLINE); what the tests prove comes from what the clients
receive and in which order, never from how long something took."""

import signal
import subprocess
import sys
import threading
import time
import uuid

import pika
import pytest

import amqp_helpers
from amqp_helpers import close_quietly, wait_until

DEADLINE = 30  # seconds to wait for something that must happen (bounds a hang only)

# ---------------------------------------------------------------------------
# 1. "Hello World!"


def test_hello_world(conn_params, uname):
    queue = uname("hello")

    # send.py
    connection = pika.BlockingConnection(conn_params)
    channel = connection.channel()
    channel.queue_declare(queue=queue)
    channel.basic_publish(exchange="", routing_key=queue,
                          body="Hello World!")
    connection.close()

    # receive.py
    connection = pika.BlockingConnection(conn_params)
    channel = connection.channel()
    channel.queue_declare(queue=queue)
    received = []

    def callback(ch, method, properties, body):
        received.append(body)
        ch.stop_consuming()

    channel.basic_consume(queue=queue, on_message_callback=callback,
                          auto_ack=True)
    timer = connection.call_later(DEADLINE, channel.stop_consuming)
    channel.start_consuming()
    connection.remove_timeout(timer)
    assert received == [b"Hello World!"]
    channel.queue_delete(queue=queue)
    connection.close()


# ---------------------------------------------------------------------------
# 2. Work queues


class Worker(threading.Thread):
    """worker.py from the tutorial, run in a thread with its own connection.

    A task's dots tell how long it takes (tutorial style, scaled to 50 ms per
    dot).  A task starting with b"hold" blocks until the test calls
    release_one() (one call per held task), so a test can keep a message
    unacknowledged for as long as it needs. prefetch=None is the tutorial's
    first worker, without basic.qos."""

    def __init__(self, params, queue, name, prefetch=1):
        super().__init__(name=name, daemon=True)
        self.params = params
        self.queue = queue
        self.prefetch = prefetch
        self.received = []
        self.permits = threading.Semaphore(0)
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.close_now = threading.Event()  # close mid-task, without ack
        self.error = None

    def run(self):
        try:
            connection = pika.BlockingConnection(self.params)
            channel = connection.channel()
            channel.queue_declare(queue=self.queue, durable=True)
            if self.prefetch is not None:
                channel.basic_qos(prefetch_count=self.prefetch)

            def callback(ch, method, properties, body):
                self.received.append((body, method.redelivered))
                if body.startswith(b"hold"):
                    while not (self.stop.is_set() or self.close_now.is_set()):
                        if self.permits.acquire(timeout=0.01):
                            break
                    if self.close_now.is_set():
                        connection.close()  # dies mid-task: no ack
                        return
                else:
                    time.sleep(body.count(b".") * 0.05)
                ch.basic_ack(delivery_tag=method.delivery_tag)

            channel.basic_consume(queue=self.queue,
                                  on_message_callback=callback)
            self.ready.set()
            while not self.stop.is_set() and connection.is_open:
                connection.process_data_events(time_limit=0.05)
            close_quietly(connection)
        except Exception as exc:  # reported by the test
            self.error = exc
            self.ready.set()

    def bodies(self):
        return [b for b, _ in self.received]

    def release_one(self):
        """Let one held task (the current or the next) finish and be acked."""
        self.permits.release()

    def finish(self):
        self.stop.set()
        self.join(DEADLINE)
        assert not self.is_alive()
        assert self.error is None, repr(self.error)


def new_task(params, queue, messages):
    """new_task.py: persistent messages to a durable queue."""
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    channel.queue_declare(queue=queue, durable=True)
    for message in messages:
        channel.basic_publish(
            exchange="", routing_key=queue, body=message,
            properties=pika.BasicProperties(
                delivery_mode=pika.spec.PERSISTENT_DELIVERY_MODE))
    connection.close()


@pytest.fixture
def task_queue(connect, uname):
    name = uname("task_queue")
    yield name
    try:
        connect().channel().queue_delete(name)
    except Exception:  # noqa: E722 - best-effort cleanup
        pass


def test_work_queue_round_robin(conn_params, task_queue):
    """Round-robin dispatching (the tutorial's worker before it adds
    basic.qos): each consumer gets every second message, whatever the
    speed of the workers."""
    workers = [Worker(conn_params, task_queue, "w%d" % i, prefetch=None)
               for i in range(2)]
    for w in workers:
        w.start()
        # ready is set after basic.consume-ok: the consumer is registered
        assert w.ready.wait(DEADLINE) and w.error is None
    tasks = [b"task %d ." % i for i in range(10)]
    new_task(conn_params, task_queue, tasks)
    assert wait_until(lambda: sum(len(w.received) for w in workers) == 10,
                      timeout=DEADLINE)
    for w in workers:
        w.finish()
    a, b = workers[0].bodies(), workers[1].bodies()
    assert sorted(a + b) == sorted(tasks)
    assert len(a) == len(b) == 5  # equal work for equal tasks


def test_work_queue_fair_dispatch(conn_params, task_queue):
    """prefetch_count=1: a busy worker gets nothing new while the other
    keeps receiving."""
    slow = Worker(conn_params, task_queue, "slow")
    slow.start()
    assert slow.ready.wait(DEADLINE) and slow.error is None
    new_task(conn_params, task_queue, [b"hold: a long task"])
    assert wait_until(lambda: slow.received, timeout=DEADLINE)

    fast = Worker(conn_params, task_queue, "fast")
    fast.start()
    assert fast.ready.wait(DEADLINE) and fast.error is None
    quick = [b"quick %d" % i for i in range(6)]
    new_task(conn_params, task_queue, quick)
    assert wait_until(lambda: len(fast.received) == 6, timeout=DEADLINE)
    # all six went to the fast worker: none was sent to the busy one
    assert fast.bodies() == quick
    assert slow.bodies() == [b"hold: a long task"]

    # once the slow worker finishes, it takes work again: two held tasks,
    # and each worker can hold only one of them at a time
    slow.release_one()
    more = [b"hold: more %d" % i for i in range(2)]
    new_task(conn_params, task_queue, more)
    assert wait_until(
        lambda: len(slow.received) + len(fast.received) == 9,
        timeout=DEADLINE)
    assert len(slow.received) == 2 and len(fast.received) == 7
    assert sorted([slow.bodies()[1], fast.bodies()[6]]) == more
    slow.release_one()
    fast.release_one()
    slow.finish()
    fast.finish()


def test_work_queue_worker_closed_mid_task_redelivers(conn_params,
                                                      task_queue):
    first = Worker(conn_params, task_queue, "first")
    first.start()
    assert first.ready.wait(DEADLINE) and first.error is None
    new_task(conn_params, task_queue, [b"hold: important"])
    assert wait_until(lambda: first.received, timeout=DEADLINE)
    second = Worker(conn_params, task_queue, "second")
    second.start()
    assert second.ready.wait(DEADLINE) and second.error is None
    assert second.received == []
    first.close_now.set()  # connection closed without acking
    assert wait_until(lambda: second.received, timeout=DEADLINE)
    first.finish()
    second.finish()
    assert first.received == [(b"hold: important", False)]
    assert second.received == [(b"hold: important", True)]


WORKER_SCRIPT = r"""
import sys, pika
params = pika.ConnectionParameters('127.0.0.1', int(sys.argv[1]),
    credentials=pika.PlainCredentials('guest', 'guest'))
connection = pika.BlockingConnection(params)
channel = connection.channel()
channel.queue_declare(queue=sys.argv[2], durable=True)
channel.basic_qos(prefetch_count=1)
def callback(ch, method, properties, body):
    sys.stdout.write('GOT %s\n' % body.decode())
    sys.stdout.flush()
    # works forever on it, never acks
    while True:
        connection.sleep(1)
channel.basic_consume(queue=sys.argv[2], on_message_callback=callback)
sys.stdout.write('READY\n')
sys.stdout.flush()
channel.start_consuming()
"""


def test_work_queue_worker_killed_mid_task_redelivers(conn_params,
                                                      task_queue,
                                                      amqp_port):
    """A worker process killed with SIGKILL: the broker notices the dead
    TCP connection and redelivers its unacked task."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER_SCRIPT, str(amqp_port), task_queue],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout.readline().strip() == b"READY"
        survivor = Worker(conn_params, task_queue, "survivor")
        new_task(conn_params, task_queue, [b"crash-task"])
        assert proc.stdout.readline().strip() == b"GOT crash-task"
        survivor.start()
        assert survivor.ready.wait(DEADLINE) and survivor.error is None
        assert survivor.received == []
        proc.send_signal(signal.SIGKILL)
        proc.wait(DEADLINE)
        assert wait_until(lambda: survivor.received, timeout=DEADLINE)
        survivor.finish()
        assert survivor.received == [(b"crash-task", True)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(DEADLINE)
        proc.stdout.close()


# ---------------------------------------------------------------------------
# 3. Publish/Subscribe


class LogReceiver(object):
    """receive_logs*.py: an exclusive server-named queue bound to an
    exchange, consumed with auto_ack."""

    def __init__(self, params, exchange, exchange_type, binding_keys=("",)):
        self.connection = pika.BlockingConnection(params)
        self.channel = self.connection.channel()
        self.channel.exchange_declare(exchange=exchange,
                                      exchange_type=exchange_type)
        result = self.channel.queue_declare(queue="", exclusive=True)
        self.queue_name = result.method.queue
        for key in binding_keys:
            self.channel.queue_bind(exchange=exchange, queue=self.queue_name,
                                    routing_key=key)
        self.received = []
        self.channel.basic_consume(
            queue=self.queue_name, auto_ack=True,
            on_message_callback=lambda ch, method, props, body:
            self.received.append((method.routing_key, body)))

    def pump(self, seconds):
        amqp_helpers.collect(self.connection, seconds)

    def close(self):
        close_quietly(self.connection)


def emit(params, exchange, exchange_type, messages):
    """emit_log*.py"""
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    channel.exchange_declare(exchange=exchange, exchange_type=exchange_type)
    for routing_key, body in messages:
        channel.basic_publish(exchange=exchange, routing_key=routing_key,
                              body=body)
    connection.close()


def wait_for(receivers, counts, timeout=DEADLINE):
    """Pump the receivers until each holds at least its count (or the
    deadline passes); returns how many each holds.

    No waiting for extra messages: every test's last published message
    goes to every receiver, and a queue delivers in publish order, so a
    message routed wrongly would arrive before that last one and show up
    in the received lists, which the tests compare exactly."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(len(r.received) >= n for r, n in zip(receivers, counts)):
            break
        for r in receivers:
            r.pump(0.02)
    return [len(r.received) for r in receivers]


@pytest.fixture
def exchange_cleanup(connect):
    names = []
    yield names
    ch = connect().channel()
    for name in names:
        ch.exchange_delete(name)


def test_publish_subscribe_fanout(conn_params, uname, exchange_cleanup,
                                  connect):
    logs = uname("logs")
    exchange_cleanup.append(logs)
    receivers = [LogReceiver(conn_params, logs, "fanout") for _ in range(2)]
    try:
        for r in receivers:
            assert r.queue_name.startswith("amq.gen-")
        assert receivers[0].queue_name != receivers[1].queue_name
        messages = [("", b"info: Hello World!"),
                    ("ignored-key", b"warning: disk")]
        emit(conn_params, logs, "fanout", messages)
        assert wait_for(receivers, [2, 2]) == [2, 2]
        for r in receivers:
            assert [b for _, b in r.received] == [b for _, b in messages]
    finally:
        for r in receivers:
            r.close()
    # exclusive queues went away with their connections
    probe = connect()
    for r in receivers:
        ch = probe.channel()
        assert wait_until(lambda: queue_gone(ch, r.queue_name),
                          timeout=DEADLINE)


def queue_gone(channel, name):
    try:
        channel.queue_declare(name, passive=True)
        return False
    except pika.exceptions.ChannelClosedByBroker as exc:
        assert exc.reply_code == 404
        return True


def test_publish_subscribe_messages_before_binding_are_lost(
        conn_params, uname, exchange_cleanup):
    logs = uname("logs")
    exchange_cleanup.append(logs)
    emit(conn_params, logs, "fanout", [("", b"nobody listens")])
    r = LogReceiver(conn_params, logs, "fanout")
    try:
        emit(conn_params, logs, "fanout", [("", b"heard")])
        assert wait_for([r], [1]) == [1]
        assert r.received == [("", b"heard")]
    finally:
        r.close()


# ---------------------------------------------------------------------------
# 4. Routing


def test_routing_direct_severities(conn_params, uname, exchange_cleanup):
    direct_logs = uname("direct_logs")
    exchange_cleanup.append(direct_logs)
    errors_only = LogReceiver(conn_params, direct_logs, "direct", ["error"])
    everything = LogReceiver(conn_params, direct_logs, "direct",
                             ["info", "warning", "error"])
    try:
        messages = [("info", b"Run. Run. Or it will explode."),
                    ("error", b"It exploded."),
                    ("warning", b"Careful."),
                    ("debug", b"nobody binds debug"),
                    ("error", b"Again.")]
        emit(conn_params, direct_logs, "direct", messages)
        assert wait_for([errors_only, everything], [2, 4]) == [2, 4]
        assert errors_only.received == [("error", b"It exploded."),
                                        ("error", b"Again.")]
        assert everything.received == [m for m in messages
                                       if m[0] != "debug"]
    finally:
        errors_only.close()
        everything.close()


# ---------------------------------------------------------------------------
# 5. Topics


TUTORIAL_TOPIC_KEYS = {
    # routing key: (Q1 "*.orange.*", Q2 "*.*.rabbit" + "lazy.#")
    "quick.orange.rabbit": (1, 1),
    "lazy.orange.elephant": (1, 1),
    "quick.orange.fox": (1, 0),
    "lazy.brown.fox": (0, 1),
    "lazy.pink.rabbit": (0, 1),  # matches both Q2 bindings, delivered once
    "quick.brown.fox": (0, 0),
    "orange": (0, 0),
    "quick.orange.male.rabbit": (0, 0),
    "lazy.orange.male.rabbit": (0, 1),
}
# published last, matches a binding of each queue: once both received it,
# every earlier message has been routed (see wait_for)
TOPIC_SENTINEL = "sentinel.orange.rabbit"


def test_topics_tutorial(conn_params, uname, exchange_cleanup):
    topic_logs = uname("topic_logs")
    exchange_cleanup.append(topic_logs)
    q1 = LogReceiver(conn_params, topic_logs, "topic", ["*.orange.*"])
    q2 = LogReceiver(conn_params, topic_logs, "topic",
                     ["*.*.rabbit", "lazy.#"])
    try:
        emit(conn_params, topic_logs, "topic",
             [(key, key.encode()) for key in TUTORIAL_TOPIC_KEYS]
             + [(TOPIC_SENTINEL, b"last")])
        want1 = [k for k, (a, _) in TUTORIAL_TOPIC_KEYS.items() if a]
        want2 = [k for k, (_, b) in TUTORIAL_TOPIC_KEYS.items() if b]
        want1.append(TOPIC_SENTINEL)
        want2.append(TOPIC_SENTINEL)
        assert wait_for([q1, q2], [len(want1), len(want2)]) == [
            len(want1), len(want2)]
        assert [k for k, _ in q1.received] == want1
        assert [k for k, _ in q2.received] == want2
    finally:
        q1.close()
        q2.close()


@pytest.mark.parametrize("binding,matching,not_matching", [
    ("#", ["", "a", "a.b.c", ".", "quick.orange.rabbit"], []),
    ("a.#.b", ["a.b", "a.x.b", "a.x.y.b", "a..b"],
     ["a", "b", "a.b.c", "x.a.b", ""]),
    ("*", ["a", "orange"], ["", "a.b", "."]),
    ("*.*", ["a.b", ".", "a.", ".a"], ["", "a", "a.b.c"]),
    ("", [""], ["a", "."]),
    ("#.rabbit", ["rabbit", "a.rabbit", "a.b.rabbit"],
     ["rabbit.a", "rabbits", ""]),
], ids=["hash-alone", "a.#.b", "star", "star.star", "empty-binding",
        "hash-prefix"])
def test_topic_edge_cases(conn_params, uname, exchange_cleanup, binding,
                          matching, not_matching):
    x = uname("topic_edge")
    exchange_cleanup.append(x)
    r = LogReceiver(conn_params, x, "topic", [binding])
    try:
        # the non-matching keys first: the last message published matches
        emit(conn_params, x, "topic",
             [(k, b"") for k in not_matching + matching])
        assert wait_for([r], [len(matching)]) == [len(matching)]
        assert [k for k, _ in r.received] == matching
    finally:
        r.close()


# ---------------------------------------------------------------------------
# 6. RPC


def fib(n):
    if n == 0:
        return 0
    elif n == 1:
        return 1
    else:
        return fib(n - 1) + fib(n - 2)


class RpcServer(threading.Thread):
    """rpc_server.py in a thread with its own connection."""

    def __init__(self, params, queue):
        super().__init__(name="rpc-server", daemon=True)
        self.params = params
        self.queue = queue
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.served = 0
        self.error = None

    def run(self):
        try:
            connection = pika.BlockingConnection(self.params)
            channel = connection.channel()
            channel.queue_declare(queue=self.queue)

            def on_request(ch, method, props, body):
                n = int(body)
                response = fib(n)
                self.served += 1
                ch.basic_publish(
                    exchange="", routing_key=props.reply_to,
                    properties=pika.BasicProperties(
                        correlation_id=props.correlation_id),
                    body=str(response))
                ch.basic_ack(delivery_tag=method.delivery_tag)

            channel.basic_qos(prefetch_count=1)
            channel.basic_consume(queue=self.queue,
                                  on_message_callback=on_request)
            self.ready.set()
            while not self.stop.is_set():
                connection.process_data_events(time_limit=0.05)
            channel.queue_delete(queue=self.queue)
            connection.close()
        except Exception as exc:
            self.error = exc
            self.ready.set()


class FibonacciRpcClient(object):
    """rpc_client.py, extended to allow several calls in flight."""

    def __init__(self, params, queue, reply_to=None):
        self.queue = queue
        self.connection = pika.BlockingConnection(params)
        self.channel = self.connection.channel()
        if reply_to is None:
            result = self.channel.queue_declare(queue="", exclusive=True)
            self.callback_queue = result.method.queue
        else:
            self.callback_queue = reply_to  # direct reply-to
        self.channel.basic_consume(queue=self.callback_queue,
                                   on_message_callback=self.on_response,
                                   auto_ack=True)
        self.responses = {}

    def on_response(self, ch, method, props, body):
        self.responses[props.correlation_id] = int(body)

    def send(self, n):
        corr_id = str(uuid.uuid4())
        self.channel.basic_publish(
            exchange="", routing_key=self.queue,
            properties=pika.BasicProperties(reply_to=self.callback_queue,
                                            correlation_id=corr_id),
            body=str(n))
        return corr_id

    def wait(self, corr_ids, timeout=DEADLINE):
        deadline = time.monotonic() + timeout
        while not all(c in self.responses for c in corr_ids):
            if time.monotonic() > deadline:
                raise AssertionError("RPC responses missing")
            self.connection.process_data_events(time_limit=0.05)
        return [self.responses[c] for c in corr_ids]

    def call(self, n):
        return self.wait([self.send(n)])[0]

    def close(self):
        close_quietly(self.connection)


@pytest.fixture
def rpc_server(conn_params, uname):
    server = RpcServer(conn_params, uname("rpc_queue"))
    server.start()
    assert server.ready.wait(DEADLINE)
    assert server.error is None, repr(server.error)
    yield server
    server.stop.set()
    server.join(DEADLINE)
    assert not server.is_alive()
    assert server.error is None, repr(server.error)


def test_rpc_single_call(conn_params, rpc_server):
    client = FibonacciRpcClient(conn_params, rpc_server.queue)
    try:
        assert client.callback_queue.startswith("amq.gen-")
        assert client.call(30 // 3) == 55
    finally:
        client.close()


def test_rpc_several_calls_in_flight(conn_params, rpc_server):
    client = FibonacciRpcClient(conn_params, rpc_server.queue)
    try:
        ns = [0, 1, 2, 5, 10, 15, 20, 7]
        corr_ids = [client.send(n) for n in ns]
        assert len(set(corr_ids)) == len(ns)
        assert client.wait(corr_ids) == [fib(n) for n in ns]
        assert rpc_server.served == len(ns)
    finally:
        client.close()


def test_rpc_two_clients_get_their_own_answers(conn_params, rpc_server):
    c1 = FibonacciRpcClient(conn_params, rpc_server.queue)
    c2 = FibonacciRpcClient(conn_params, rpc_server.queue)
    try:
        ids1 = [c1.send(n) for n in (3, 4, 5)]
        ids2 = [c2.send(n) for n in (6, 7, 8)]
        assert c1.wait(ids1) == [2, 3, 5]
        assert c2.wait(ids2) == [8, 13, 21]
        assert set(c1.responses) == set(ids1)
        assert set(c2.responses) == set(ids2)
    finally:
        c1.close()
        c2.close()


def test_rpc_with_direct_reply_to(conn_params, rpc_server):
    """The direct_reply_to capability: consume the pseudo-queue
    amq.rabbitmq.reply-to (no-ack) and use it as reply_to."""
    client = FibonacciRpcClient(conn_params, rpc_server.queue,
                                reply_to="amq.rabbitmq.reply-to")
    try:
        ids = [client.send(n) for n in (9, 11, 12)]
        assert client.wait(ids) == [34, 89, 144]
    finally:
        client.close()
