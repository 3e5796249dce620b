"""Fixtures and hooks for the Warren integration tests.

The broker under test is either

* an already running broker at 127.0.0.1:$WARREN_TEST_AMQP_PORT (nothing is started; this is
  how the suite is validated against the real RabbitMQ), or
* a warren-server started by the session-scoped ``broker`` fixture (binary from
  $WARREN_SERVER, else <repo>/build/warren-server), through warren_process.py, the one
  launcher that the bench scripts use too.

Every broker a test session starts is checked when it is stopped: it must exit with code 0
within warren_process.STOP_TIMEOUT seconds of SIGTERM, or the test that owns it (for the shared
``broker``: the session) fails with its log tail. A broker that dies while a test runs fails
that test. Brokers killed on purpose (``restartable_broker.stop(kill=True)``, crash rounds)
are not reported.

With CI=true a skipped test fails instead (see pytest_runtest_makereport), except for skips
that only mean "a shared external broker is under test" (WARREN_TEST_AMQP_PORT set).
"""

import os
import shutil
import signal
import tempfile
import threading

import pika
import pytest

import amqp_helpers
import warren_process

PER_TEST_TIMEOUT = float(os.environ.get("WARREN_TEST_TIMEOUT", "180"))
CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


class Broker(object):
    """An external broker (WARREN_TEST_AMQP_PORT): same interface as
    warren_process.WarrenProcess, minus the process."""

    external = True
    process = None

    def __init__(self, host, port, external=True, process=None, log=None):
        self.host = host
        self.port = port
        self.log = log if log is not None else []

    def log_tail(self, lines=200):
        return "".join(self.log[-lines:])

    def alive(self):
        return True


def _server_binary():
    return warren_process.server_binary()


def external_port():
    value = os.environ.get("WARREN_TEST_AMQP_PORT")
    return int(value) if value else None


PRIVATE_SKIP_REASON = ("needs a private broker instance; "
                       "WARREN_TEST_AMQP_PORT points at a shared external "
                       "broker")


# ---------------------------------------------------------------------------
# Brokers started by this session, and their exit checks.


class _Registry(list):
    """The brokers that are running and expected to stay up (their logs go into failure
    reports). append() ignores a broker already registered: older callers register a broker
    that start_warren() registered already."""

    def append(self, b):
        if b not in self:
            list.append(self, b)

    def discard(self, b):
        if b in self:
            self.remove(b)


_current_brokers = _Registry()
# Every exit problem found this session, as messages; pytest_sessionfinish makes the session
# fail when there is any, even if the exception that reported it was swallowed somewhere.
_broker_failures = []
# Every broker started this session: any still running at the end is stopped (and reported).
_all_started = []


def _problem_message(b, problem, when):
    return ("%s %s %s; log tail:\n%s" % (b.describe(), problem, when, b.log_tail(150)))


def _record(b, problem, when):
    if not b.terminated:
        when = "while running (found %s)" % when
    else:
        when = "when stopped with SIGTERM " + when
    message = _problem_message(b, problem, when)
    b.reported = True
    _broker_failures.append(message)
    return message


def start_warren(extra_args=(), data_dir=None, env=None, address_space=None, nofile=None,
                 prefix=(), plugin_ports=True):
    """Starts a warren-server on ephemeral ports (see warren_process.start for the arguments)
    and registers it; returns a warren_process.WarrenProcess. Stop it with stop_broker()."""
    try:
        b = warren_process.start(extra_args, data_dir=data_dir, env=env,
                                 address_space=address_space, nofile=nofile, prefix=prefix,
                                 plugin_ports=plugin_ports)
    except warren_process.StartupError as exc:
        pytest.fail(str(exc), pytrace=False)
    _current_brokers.append(b)
    _all_started.append(b)
    return b


def stop_broker(b, when="by the test"):
    """Stops a broker from start_warren() (SIGTERM, SIGKILL after warren_process.STOP_TIMEOUT),
    removes the data directory it created, and fails (pytest.fail) unless it exited cleanly
    (code 0, in time) or was killed on purpose. A problem already reported (the broker died
    during a test, which failed) is not reported again."""
    _current_brokers.discard(b)
    b.stop()
    b.remove_data_dir()
    problem = b.exit_problem()
    if problem and not getattr(b, "reported", False):
        pytest.fail(_record(b, problem, when), pytrace=False)


@pytest.fixture(scope="session")
def broker():
    """The broker shared by the session (or the external one)."""
    port = external_port()
    if port is not None:
        yield Broker("127.0.0.1", port, external=True)
        return
    b = start_warren()
    yield b
    stop_broker(b, "at the end of the session")


@pytest.fixture
def warren_factory():
    """``warren_factory(*extra_args, data_dir=None, env=None, address_space=None, nofile=None,
    prefix=())`` starts a fresh broker owned by the calling test (see warren_process.start);
    each is stopped and checked at teardown. Skipped against an external broker."""
    if external_port() is not None:
        pytest.skip(PRIVATE_SKIP_REASON)
    started = []

    def make(*extra_args, **launch):
        b = start_warren(extra_args, **launch)
        started.append(b)
        return b

    yield make
    problems = []
    for b in started:
        try:
            stop_broker(b, "at the end of the test")
        except pytest.fail.Exception as exc:
            problems.append(str(exc))
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


class RestartableBroker(object):
    """A private broker a test can stop and start again on the same data directory."""

    def __init__(self):
        self.data_dir = tempfile.mkdtemp(prefix="warren-it-durable-")
        self.extra_args = ()
        self.launch = {}
        self.current = None

    def start(self, *extra_args, **launch):
        """Starts the broker; extra_args and launch (env=..., see warren_process.start) are kept
        for restart()."""
        self.extra_args = extra_args
        self.launch = launch
        self.current = start_warren(extra_args, data_dir=self.data_dir, **launch)
        return self.current

    def stop(self, kill=False):
        """SIGTERM (clean: must exit with code 0, else the test fails) or SIGKILL (a crash on
        purpose); waits for the process to exit."""
        b = self.current
        if b is None:
            return
        self.current = None
        if kill:
            _current_brokers.discard(b)
            b.kill()
        else:
            stop_broker(b)

    def restart(self, kill=False):
        self.stop(kill=kill)
        return self.start(*self.extra_args, **self.launch)

    def cleanup(self):
        """Stops the broker (SIGTERM, checked) and removes the data directory. A bad exit is
        recorded, not raised, so that the caller's own cleanup still runs; the test then fails
        at teardown (_broker_checks)."""
        b = self.current
        self.current = None
        if b is not None:
            _current_brokers.discard(b)
            b.stop()
            problem = b.exit_problem()
            if problem and not getattr(b, "reported", False):
                _pending_test_failures.append(
                    _record(b, problem, "at the end of the test"))
        shutil.rmtree(self.data_dir, ignore_errors=True)


_pending_test_failures = []


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
def _broker_checks(request):
    """Before a test that uses the shared broker: fail fast (with the log) when it has died.
    After every test: fail it when a broker that should be running died during it (the shared
    one included), or when a broker it owned did not stop cleanly."""
    if "broker" in request.fixturenames:
        b = request.getfixturevalue("broker")
        if not b.alive():
            pytest.fail("warren-server exited with %r before this test; log tail:\n%s"
                        % (b.process.poll(), b.log_tail()), pytrace=False)
    del _pending_test_failures[:]
    yield
    problems = list(_pending_test_failures)
    del _pending_test_failures[:]
    for b in list(_current_brokers):
        if not b.alive():
            _current_brokers.discard(b)
            problem = b.exit_problem()
            if problem:
                problems.append(_record(b, problem, "during %s" % request.node.nodeid))
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


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
def broker_still_serves(connect):
    """After the test, a fresh pika connection must still work: declare, publish, get."""
    yield
    conn = connect()
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"still alive")
    _, _, body = ch.basic_get(q, auto_ack=True)
    assert body == b"still alive"
    conn.close()


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
def uname():
    """``uname('q')`` -> a unique resource name for this test."""
    return lambda prefix="x": amqp_helpers.unique(prefix)


# ---------------------------------------------------------------------------
# Per-test timeout (no pytest-timeout plugin on Debian by default): WARREN_TEST_TIMEOUT seconds
# (default 180, room for fsync-bound tests on a busy 2-core machine), or the test's own
# @pytest.mark.timeout(seconds).


class PerTestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _per_test_timeout(request):
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    marker = request.node.get_closest_marker("timeout")
    seconds = float(marker.args[0]) if marker is not None else PER_TEST_TIMEOUT

    def on_alarm(signum, frame):
        raise PerTestTimeout("test exceeded %.0f s" % seconds)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------
# Reports: skips fail under CI=true, failing tests get the broker logs, and a broker that did
# not exit cleanly fails the session.


def _skip_allowed(reason):
    """Under CI=true only a skip that says "an external broker is under test" is allowed."""
    return external_port() is not None and PRIVATE_SKIP_REASON in reason


def _fail_skip_under_ci(report):
    if not (CI and report.skipped) or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    if _skip_allowed(reason):
        return
    report.outcome = "failed"
    report.longrepr = ("CI=true: a test must run, not skip (install what it needs, run as "
                       "root; see scripts/install-deps.sh). Skip reason: %s" % reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_skip_under_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    _fail_skip_under_ci(report)
    if report.failed and _current_brokers:
        for b in _current_brokers:
            status = "running" if b.alive() else (
                "EXITED with %r" % b.process.poll())
            report.sections.append(
                ("warren-server (port %d, %s) log tail" % (b.port, status),
                 b.log_tail(150)))


def pytest_sessionfinish(session, exitstatus):
    for b in _all_started:
        # The stats sampler cross-checks the vhosts' running queue totals every tick.
        drift = [line for line in b.log if "queue totals drifted" in line]
        if drift:
            _broker_failures.append(_problem_message(b, "logged", drift[0].strip()))
        if b.alive():  # leaked, e.g. a per-test timeout interrupted its stop
            b.stop()
            b.remove_data_dir()
            _broker_failures.append(_problem_message(
                b, "was still running at the end of the session", "(leaked; now stopped)"))
    if _broker_failures and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if _broker_failures:
        terminalreporter.section("warren-server exit problems", red=True)
        for message in _broker_failures:
            terminalreporter.line(message.splitlines()[0])
