"""Fixtures for the Warren integration tests.

The broker under test is either

* an already running broker at 127.0.0.1:$WARREN_TEST_AMQP_PORT (nothing is
  started; this is how the suite is validated against the real RabbitMQ), or
* a warren-server started by the session-scoped ``broker`` fixture: binary from
  $WARREN_SERVER, else <repo>/build/warren-server.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pika
import pytest

import amqp_helpers

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LISTEN_RE = re.compile(r"AMQP listening on 127\.0\.0\.1:(\d+)")
STARTUP_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
PER_TEST_TIMEOUT = float(os.environ.get("WARREN_TEST_TIMEOUT", "60"))


class Broker(object):
    """A broker the tests talk to (started by us or external)."""

    def __init__(self, host, port, external, process=None, log=None):
        self.host = host
        self.port = port
        self.external = external
        self.process = process
        self.log = log if log is not None else []

    def log_tail(self, lines=200):
        return "".join(self.log[-lines:])

    def alive(self):
        return self.external or self.process.poll() is None


def _server_binary():
    path = os.environ.get("WARREN_SERVER")
    if path:
        return path
    return os.path.join(REPO, "build", "warren-server")


def start_warren(extra_args=(), data_dir=None):
    """Start a warren-server on ephemeral ports; returns a Broker.
    extra_args are appended to the command line (e.g. limits for a test); data_dir reuses an
    existing data directory (a restart), otherwise a fresh one is made."""
    binary = _server_binary()
    if not os.path.exists(binary):
        pytest.fail("warren-server binary not found at %s (set WARREN_SERVER "
                    "or WARREN_TEST_AMQP_PORT)" % binary, pytrace=False)
    if data_dir is None:
        data_dir = tempfile.mkdtemp(prefix="warren-it-data-")
    cmd = [binary, "--amqp-port", "0", "--bind", "127.0.0.1",
           "--management-port", "0", "--data-dir", data_dir] + list(extra_args)
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    log = []
    port_found = threading.Event()
    found = {}

    def pump():
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode("utf-8", "replace")
            log.append(line)
            if not port_found.is_set():
                match = LISTEN_RE.search(line)
                if match:
                    found["port"] = int(match.group(1))
                    port_found.set()
        process.stdout.close()

    threading.Thread(target=pump, name="warren-log-pump", daemon=True).start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not port_found.wait(0.05):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            pytest.fail("warren-server did not report 'AMQP listening on "
                        "127.0.0.1:<port>' within %.0f s (exit=%r); log:\n%s"
                        % (STARTUP_TIMEOUT, process.poll(), "".join(log)),
                        pytrace=False)
    broker = Broker("127.0.0.1", found["port"], external=False,
                    process=process, log=log)
    broker.data_dir = data_dir
    return broker


def stop_process(process):
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT)


def stop_broker(b):
    """Stop a broker started by start_warren and remove its data dir."""
    if b in _current_brokers:
        _current_brokers.remove(b)
    stop_process(b.process)
    shutil.rmtree(getattr(b, "data_dir", ""), ignore_errors=True)


def external_port():
    value = os.environ.get("WARREN_TEST_AMQP_PORT")
    return int(value) if value else None


_current_brokers = []


@pytest.fixture(scope="session")
def broker():
    port = external_port()
    if port is not None:
        yield Broker("127.0.0.1", port, external=True)
        return
    b = start_warren()
    _current_brokers.append(b)
    try:
        yield b
    finally:
        stop_broker(b)


PRIVATE_SKIP_REASON = ("needs a private broker instance; "
                       "WARREN_TEST_AMQP_PORT points at a shared external "
                       "broker")


@pytest.fixture(scope="module")
def private_broker():
    """A fresh broker for this module (skipped against an external one)."""
    if external_port() is not None:
        pytest.skip(PRIVATE_SKIP_REASON)
    b = start_warren()
    _current_brokers.append(b)
    try:
        yield b
    finally:
        stop_broker(b)


@pytest.fixture
def warren_factory():
    """``warren_factory()`` starts a fresh broker owned by the calling test
    (stopped at teardown); skipped against an external broker."""
    if external_port() is not None:
        pytest.skip(PRIVATE_SKIP_REASON)
    started = []

    def make(*extra_args, data_dir=None):
        b = start_warren(extra_args, data_dir=data_dir)
        _current_brokers.append(b)
        started.append(b)
        return b

    yield make
    for b in started:
        stop_broker(b)


class RestartableBroker(object):
    """A private broker a test can stop and start again on the same data directory."""

    def __init__(self):
        self.data_dir = tempfile.mkdtemp(prefix="warren-it-durable-")
        self.extra_args = ()
        self.current = None

    def start(self, *extra_args):
        self.extra_args = extra_args
        self.current = start_warren(extra_args, data_dir=self.data_dir)
        _current_brokers.append(self.current)
        return self.current

    def stop(self, kill=False):
        """SIGTERM (clean) or SIGKILL (crash); waits for the process to exit."""
        b = self.current
        if b is None:
            return
        if b in _current_brokers:
            _current_brokers.remove(b)
        if kill:
            b.process.kill()
            b.process.wait(10)
        else:
            stop_process(b.process)
        self.current = None

    def restart(self, kill=False):
        self.stop(kill=kill)
        return self.start(*self.extra_args)

    def cleanup(self):
        self.stop(kill=True)
        shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture
def restartable_broker():
    """``restartable_broker.start()`` / ``.restart(kill=...)``: a private broker whose data
    directory survives restarts; skipped against an external broker."""
    if external_port() is not None:
        pytest.skip(PRIVATE_SKIP_REASON)
    rb = RestartableBroker()
    yield rb
    rb.cleanup()


@pytest.fixture(autouse=True)
def _broker_alive(request):
    """Fail fast (with the log) when the shared warren-server has died."""
    if "broker" not in request.fixturenames:
        yield
        return
    b = request.getfixturevalue("broker")
    if not b.alive():
        pytest.fail("warren-server exited with %r; log tail:\n%s"
                    % (b.process.poll(), b.log_tail()), pytrace=False)
    yield


@pytest.fixture
def amqp_port(broker):
    return broker.port


@pytest.fixture
def conn_params(broker):
    return amqp_helpers.params(broker.port)


class ConnectionFactory(object):
    """Opens pika BlockingConnections and closes them all at teardown."""

    def __init__(self, port):
        self.port = port
        self.connections = []

    def __call__(self, **kwargs):
        conn = pika.BlockingConnection(amqp_helpers.params(self.port,
                                                           **kwargs))
        self.connections.append(conn)
        return conn

    def close_all(self):
        for conn in self.connections:
            amqp_helpers.close_quietly(conn)


@pytest.fixture
def connect(broker):
    """Factory fixture: ``connect(**params)`` -> BlockingConnection."""
    factory = ConnectionFactory(broker.port)
    yield factory
    factory.close_all()


@pytest.fixture
def connection(connect):
    return connect()


@pytest.fixture
def channel(connection):
    return connection.channel()


@pytest.fixture
def raw_client(broker):
    """Factory fixture for rawamqp.RawClient sockets (closed at teardown)."""
    import rawamqp
    clients = []

    def make(timeout=5.0):
        client = rawamqp.RawClient(broker.host, broker.port, timeout=timeout)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close_socket()


@pytest.fixture
def make_exchange(connect):
    """``make_exchange(kind, **kwargs)`` declares a uniquely named,
    non-auto-delete exchange that is deleted at teardown."""
    created = []
    conn = connect()
    ch = [conn.channel()]

    def make(kind="direct", prefix="x", **kwargs):
        name = amqp_helpers.unique(prefix)
        if ch[0].is_closed:
            ch[0] = conn.channel()
        ch[0].exchange_declare(name, kind, **kwargs)
        created.append(name)
        return name

    yield make
    try:
        cleanup = conn.channel()
        for name in created:
            cleanup.exchange_delete(name)
    except Exception:  # noqa: E722 - best-effort cleanup
        pass


@pytest.fixture
def shared_queue(connect):
    """A uniquely named, non-exclusive queue (usable from several
    connections), deleted at teardown."""
    name = amqp_helpers.unique("shared")
    conn = connect()
    conn.channel().queue_declare(name)
    yield name
    try:
        if conn.is_open:
            conn.channel().queue_delete(name)
    except Exception:  # noqa: E722 - best-effort cleanup
        pass


@pytest.fixture
def uname(request):
    """``uname('q')`` -> a unique resource name for this test."""
    return lambda prefix="x": amqp_helpers.unique(prefix)


# ---------------------------------------------------------------------------
# Per-test timeout (no pytest-timeout plugin on Debian by default).


class PerTestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _per_test_timeout():
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise PerTestTimeout("test exceeded %.0f s" % PER_TEST_TIMEOUT)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, PER_TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------
# Attach the broker log to failing tests, and notice a crashed broker.


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _current_brokers:
        for b in _current_brokers:
            status = "running" if b.alive() else (
                "EXITED with %r" % b.process.poll())
            report.sections.append(
                ("warren-server (port %d, %s) log tail" % (b.port, status),
                 b.log_tail(150)))
