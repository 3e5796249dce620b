#!/usr/bin/python3
"""Crash test for journal compaction: kill -9 while compaction copies live messages forward.

A publisher (confirm mode) sends 20 persistent messages to 'busy' (drained by a consumer) for
every one to 'slow' (never consumed), so every 64 KiB segment holds a few live 'slow' messages
and compaction keeps copying them forward. Once the round's first 'slow' message is confirmed,
the broker is killed at a random moment (1.5-6 s into the round, compaction runs every 2 s),
restarted, and 'slow' must hold every confirmed id exactly once, in order: a copy and its
original must never both come back, nor neither.

A round fails when nothing was confirmed before the kill, when the publisher or the consumer
failed before the kill, when a client thread hangs after it, or when the broker does not start
(within warren_process.STARTUP_TIMEOUT) or does not exit cleanly on SIGTERM after the check.

Usage: /usr/bin/python3 bench/compaction_crash_test.py [ROUNDS [SEED [SERVER]]]
Exit status 0 when every round passed, 1 otherwise.
"""
import os
import random
import shutil
import sys
import tempfile
import threading
import time

import pika

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'tests', 'integration'))

import warren_process  # noqa: E402

BIN = sys.argv[3] if len(sys.argv) > 3 else warren_process.server_binary()
FIRST_CONFIRM_TIMEOUT = 60.0  # generous: a busy machine
THREAD_JOIN_TIMEOUT = 15.0
P = pika.BasicProperties(delivery_mode=2)


class RoundFailed(Exception):
    pass


def params(port):
    return pika.ConnectionParameters('127.0.0.1', port, connection_attempts=1,
                                     socket_timeout=10, stack_timeout=20,
                                     blocked_connection_timeout=120)


def start(data):
    return warren_process.start(['--segment-size', '65536'], data_dir=data, binary=BIN)


def stop_checked(b):
    b.stop()
    problem = b.exit_problem()
    if problem:
        raise RoundFailed('%s %s after SIGTERM; log tail:\n%s'
                          % (b.describe(), problem, b.log_tail(40)))


class Client(threading.Thread):
    """Runs `body(port)` until stop is set; an exception before `killed` is set is an error."""

    def __init__(self, name, body, stop, killed):
        super().__init__(name=name, daemon=True)
        self.body, self.stop, self.killed = body, stop, killed
        self.error = None

    def run(self):
        try:
            self.body()
        except Exception as exc:  # noqa: BLE001 - the kill surfaces as any pika/socket error
            if not self.killed.is_set():
                self.error = exc


def run_round(rnd, data, rng, confirmed_slow, next_id):
    """One round; returns the 'slow' ids confirmed so far (including unconfirmed ones that
    survived, which are kept from now on). Raises RoundFailed."""
    b = start(data)
    port = b.port
    stop, killed = threading.Event(), threading.Event()
    round_confirmed = []

    def publisher():
        c = pika.BlockingConnection(params(port))
        ch = c.channel()
        ch.confirm_delivery()
        ch.queue_declare('busy', durable=True)
        ch.queue_declare('slow', durable=True)
        while not stop.is_set():
            for _ in range(20):
                ch.basic_publish('', 'busy', b'x' * 400, P)
            i = next_id[0]
            next_id[0] += 1
            ch.basic_publish('', 'slow', b'slow-%06d' % i, P)  # returns once confirmed
            round_confirmed.append(i)
        c.close()

    def consumer():
        c = pika.BlockingConnection(params(port))
        ch = c.channel()
        ch.queue_declare('busy', durable=True)
        ch.basic_qos(prefetch_count=200)
        for m, _, _ in ch.consume('busy', inactivity_timeout=0.2):
            if stop.is_set():
                break
            if m:
                ch.basic_ack(m.delivery_tag)
        c.close()

    clients = [Client('publisher', publisher, stop, killed),
               Client('consumer', consumer, stop, killed)]
    started = time.monotonic()
    try:
        for t in clients:
            t.start()
        kill_at = started + rng.uniform(1.5, 6)
        deadline = started + FIRST_CONFIRM_TIMEOUT
        while not round_confirmed and time.monotonic() < deadline:
            if any(t.error for t in clients):
                break
            time.sleep(0.05)
        time.sleep(max(0.0, kill_at - time.monotonic()))
        for t in clients:
            if t.error is not None:
                raise RoundFailed('%s failed before the kill: %r' % (t.name, t.error))
        killed.set()  # before the kill, so errors it causes are not reported
        b.kill()
        confirmed_before_kill = len(round_confirmed)
    finally:
        stop.set()
        b.kill()
        for t in clients:
            t.join(THREAD_JOIN_TIMEOUT)
    for t in clients:
        if t.is_alive():
            raise RoundFailed('%s still running %.0f s after the kill'
                              % (t.name, THREAD_JOIN_TIMEOUT))
        if t.error is not None:
            raise RoundFailed('%s failed before the kill: %r' % (t.name, t.error))
    if confirmed_before_kill == 0:
        raise RoundFailed('no slow message confirmed within %.0f s before the kill; log tail:\n%s'
                          % (FIRST_CONFIRM_TIMEOUT, b.log_tail(40)))
    confirmed_slow = confirmed_slow + round_confirmed

    b = start(data)
    try:
        c = pika.BlockingConnection(params(b.port))
        ch = c.channel()
        ch.queue_declare('slow', durable=True)
        got = []
        while True:
            m = ch.basic_get('slow', auto_ack=False)
            if m[0] is None:
                break
            got.append(int(m[2][5:]))
        c.close()
    finally:
        stop_checked(b)
    segs = len([f for f in os.listdir(os.path.join(data, 'msgs')) if f.endswith('.seg')])
    missing = set(confirmed_slow) - set(got)
    made_up = set(got) - set(range(next_id[0]))
    dups = len(got) - len(set(got))
    ordered = got == sorted(got)
    print('round %d: slow %d, confirmed %d (%d this round), missing %d, made up %d, dups %d, '
          'ordered %s, segments %d, %.1f s'
          % (rnd, len(got), len(confirmed_slow), confirmed_before_kill, len(missing),
             len(made_up), dups, ordered, segs, time.monotonic() - started), flush=True)
    if missing or made_up or dups or not ordered:
        raise RoundFailed('missing %s, made up %s' % (sorted(missing)[:10], sorted(made_up)[:10]))
    # unconfirmed that made it are kept: count them as confirmed from now on
    return sorted(set(got))


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    rng = random.Random(seed)
    data = tempfile.mkdtemp(prefix='warren-compaction-crash-')
    confirmed_slow, next_id = [], [0]
    try:
        for rnd in range(rounds):
            confirmed_slow = run_round(rnd, data, rng, confirmed_slow, next_id)
    except (RoundFailed, warren_process.StartupError) as exc:
        print('FAIL (seed %d, data directory kept in %s): %s' % (seed, data, exc), flush=True)
        return 1
    shutil.rmtree(data)
    print('ok')
    return 0


if __name__ == '__main__':
    sys.exit(main())
