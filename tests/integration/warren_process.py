"""The one launcher for warren-server processes, used by the integration tests (conftest.py,
fuzz_helpers.py) and the bench scripts (bench/crash_test.py, bench/compaction_crash_test.py).

Standard library only (no pytest, no pika): a bench script imports it after
``sys.path.insert(0, "<repo>/tests/integration")``.

    b = warren_process.start(["--segment-size", "65536"], data_dir=None, env=None,
                             address_space=None, nofile=None, prefix=(), log_path=None)
    b.host, b.port        # where it listens (taken from its "AMQP listening on" log line)
    b.process             # the subprocess.Popen
    b.log                 # every line it printed so far (stdout and stderr), a list of str
    b.data_dir            # its data directory (a fresh temporary one unless data_dir was given)
    b.alive(), b.log_tail(lines)
    b.stop()              # SIGTERM, SIGKILL after stop_timeout; returns the exit code
    b.kill()              # SIGKILL on purpose (a crash test); not reported as a problem
    b.exit_problem()      # None when it exited cleanly (code 0 within the deadline after
                          # SIGTERM) or was killed on purpose, else what went wrong
    b.remove_data_dir()   # removes the data directory if start() created it

start() raises StartupError (with the log) when the server does not print its listening line
within startup_timeout seconds or exits first.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LISTEN_RE = re.compile(r"AMQP listening on (\S+):(\d+)")
STARTUP_TIMEOUT = 30.0  # generous: a busy 2-core machine, a journal to recover
STOP_TIMEOUT = 30.0  # SIGTERM -> exit; the broker itself gives clients up to 3 s


class StartupError(RuntimeError):
    pass


def server_binary():
    """$WARREN_SERVER, else <repo>/build/warren-server."""
    return os.environ.get("WARREN_SERVER") or os.path.join(REPO, "build", "warren-server")


def _connect_host(address):
    if address in ("0.0.0.0", ""):
        return "127.0.0.1"
    if address in ("::", "[::]"):
        return "::1"
    return address.strip("[]")


class WarrenProcess(object):
    """A running (or exited) warren-server; see the module docstring."""

    external = False

    def __init__(self, process, cmd, data_dir, owns_data_dir, log_file=None):
        self.process = process
        self.cmd = cmd
        self.data_dir = data_dir
        self.owns_data_dir = owns_data_dir
        self.host = None
        self.port = None
        self.log = []
        self.killed = False  # kill() was called: an exit by SIGKILL is expected
        self.terminated = False  # stop() sent SIGTERM
        self.stop_forced = False  # stop() had to SIGKILL after stop_timeout
        self.stop_timeout = STOP_TIMEOUT
        self._listening = threading.Event()
        self._log_file = log_file
        self._pump = threading.Thread(target=self._read_log, name="warren-log-pump",
                                      daemon=True)
        self._pump.start()

    def _read_log(self):
        # Reads for the process's whole life, so a full pipe never blocks the broker.
        for raw in iter(self.process.stdout.readline, b""):
            line = raw.decode("utf-8", "replace")
            self.log.append(line)
            if self._log_file is not None:
                self._log_file.write(line)
                self._log_file.flush()
            if not self._listening.is_set():
                match = LISTEN_RE.search(line)
                if match:
                    self.host = _connect_host(match.group(1))
                    self.port = int(match.group(2))
                    self._listening.set()
        self.process.stdout.close()
        if self._log_file is not None:
            self._log_file.close()

    def _wait_listening(self, timeout):
        deadline = time.monotonic() + timeout
        while not self._listening.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                exited = self.process.poll()
                self.kill()
                self._pump.join(5)
                raise StartupError(
                    "warren-server did not report 'AMQP listening on <address>:<port>' %s "
                    "(exit status %r); command: %s; log:\n%s"
                    % ("before it exited" if exited is not None
                       else "within %.0f s" % timeout, exited, " ".join(self.cmd),
                       "".join(self.log)))

    def listener_port(self, what, timeout=10.0):
        """The port of the first "<what> listening on <address>:<port>" log line ("MQTT",
        "STOMP", "web MQTT", ...); those lines follow the AMQP one at start-up."""
        pattern = re.compile(r"%s listening on (\S+):(\d+)" % re.escape(what))
        deadline = time.monotonic() + timeout
        while True:
            for line in list(self.log):
                match = pattern.search(line)
                if match:
                    return int(match.group(2))
            if time.monotonic() > deadline or not self.alive():
                raise StartupError("no '%s listening on' line in the log:\n%s"
                                   % (what, "".join(self.log[-50:])))
            time.sleep(0.05)

    # ---- state

    def alive(self):
        return self.process.poll() is None

    @property
    def pid(self):
        return self.process.pid

    def log_tail(self, lines=200):
        return "".join(self.log[-lines:])

    def exit_problem(self):
        """None when the process is gone cleanly: exit code 0 (after SIGTERM within
        stop_timeout, or on its own), or killed on purpose with kill(). Otherwise a sentence."""
        code = self.process.poll()
        if code is None:
            return "still running"
        if self.killed:
            return None
        if self.stop_forced:
            return ("did not exit within %.0f s of SIGTERM and was SIGKILLed"
                    % self.stop_timeout)
        if code < 0:
            return "was killed by signal %d" % -code
        if code != 0:
            return "exited with code %d" % code
        return None

    def describe(self):
        return "warren-server pid %d (port %s, data %s)" % (self.process.pid, self.port,
                                                            self.data_dir)

    # ---- stopping

    def _join_pump(self):
        self._pump.join(5)  # the rest of the log, up to EOF

    def stop(self, timeout=None):
        """SIGTERM, then SIGKILL when it has not exited after `timeout` (default stop_timeout)
        seconds. Returns the exit code (negative: killed by that signal)."""
        if timeout is not None:
            self.stop_timeout = timeout
        if self.process.poll() is None:
            self.terminated = True
            try:
                self.process.send_signal(signal.SIGTERM)
                self.process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.stop_forced = True
                self.process.kill()
                self.process.wait(30)
        self._join_pump()
        return self.process.returncode

    def kill(self):
        """SIGKILL on purpose (crash tests); waits for the process to be gone."""
        if self.process.poll() is None:
            self.killed = True
            self.process.kill()
            self.process.wait(30)
        self._join_pump()
        return self.process.returncode

    def remove_data_dir(self):
        if self.owns_data_dir and self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def start(extra_args=(), data_dir=None, env=None, address_space=None, nofile=None, prefix=(),
          binary=None, startup_timeout=STARTUP_TIMEOUT, log_path=None,
          data_dir_prefix="warren-it-data-", plugin_ports=True):
    """Starts warren-server on ephemeral ports and waits until it listens; returns a
    WarrenProcess.

    extra_args      appended to the command line (``--bind`` in them replaces the default
                    ``--bind 127.0.0.1``)
    data_dir        an existing data directory (a restart); default: a fresh temporary one,
                    which remove_data_dir() removes
    env             variables added to (value None: removed from) the inherited environment
    address_space   RLIMIT_AS in bytes for the server process
    nofile          RLIMIT_NOFILE for the server process
    prefix          a command the server runs under, e.g. ["ip", "netns", "exec", "ns1"]
                    (it must exec the server, not fork it, so that signals reach the server)
    binary          default: server_binary()
    log_path        also append the server's output to this file
    plugin_ports    give the management API, Prometheus, MQTT, web MQTT, STOMP and web STOMP a
                    free port each, which turns them on whatever DATA_DIR/enabled_plugins
                    says (False: the plugins decide; give ports in a config file)
    """
    binary = binary or server_binary()
    if not os.path.exists(binary):
        raise StartupError("warren-server binary not found at %s (set WARREN_SERVER)" % binary)
    owns = data_dir is None
    if owns:
        data_dir = tempfile.mkdtemp(prefix=data_dir_prefix)
    extra_args = [str(a) for a in extra_args]
    cmd = list(prefix) + [binary, "--amqp-port", "0", "--data-dir", data_dir]
    if plugin_ports:
        cmd += ["--management-port", "0", "--prometheus-port", "0"]
    if "--bind" not in extra_args:
        cmd += ["--bind", "127.0.0.1"]
    # MQTT, MQTT over WebSocket and STOMP on free ports too (test_mqtt.py, test_web_mqtt.py,
    # test_stomp.py), unless a test picks its own.
    for flag in ("--mqtt-port", "--web-mqtt-port", "--stomp-port", "--web-stomp-port"):
        if plugin_ports and flag not in extra_args:
            cmd += [flag, "0"]
    cmd += extra_args
    child_env = None
    if env:
        child_env = dict(os.environ)
        for key, value in env.items():
            if value is None:
                child_env.pop(key, None)
            else:
                child_env[key] = str(value)
    preexec = None
    if address_space is not None or nofile is not None:
        import resource

        def preexec():
            if address_space is not None:
                resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    log_file = open(log_path, "a") if log_path else None
    try:
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=child_env,
                                   preexec_fn=preexec)
    except OSError as exc:
        if owns:
            shutil.rmtree(data_dir, ignore_errors=True)
        raise StartupError("cannot run %s: %s" % (" ".join(cmd), exc))
    b = WarrenProcess(process, cmd, data_dir, owns, log_file)
    try:
        b._wait_listening(startup_timeout)
    except StartupError:
        b.remove_data_dir()
        raise
    return b
