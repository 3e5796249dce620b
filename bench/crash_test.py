#!/usr/bin/python3
"""Crash test for Warren's persistent message journal: many rounds of "publish with confirms and
consume while the broker is killed with SIGKILL at a random moment, restart, drain, check".

Every round checks that no confirmed message is lost (each confirmed id was acked by the consumer
before the crash or is in the queue after the restart), that no body is corrupt or made up, and
that an id delivered twice carries redelivered=True the second time. The round logic lives in
tests/integration/crash_helpers.py, which the integration suite runs for a few rounds.

    /usr/bin/python3 bench/crash_test.py                  # 50 rounds
    /usr/bin/python3 bench/crash_test.py --rounds 200 --publishers 4 --segment-size 1048576

Needs python3-pika (use /usr/bin/python3). Exit status 0 when every round passed, 1 otherwise.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import crash_helpers  # noqa: E402
import warren_process  # noqa: E402


class Server(object):
    """A warren-server (started through warren_process, the tests' launcher) on a fixed data
    directory that can be killed and started again; its output is appended to log_path."""

    def __init__(self, binary, data_dir, extra_args, log_path):
        self.binary, self.data_dir, self.extra_args = binary, data_dir, list(extra_args)
        self.log_path = log_path
        self.current = None

    def start(self):
        """Starts the server (StartupError after warren_process.STARTUP_TIMEOUT s); returns its
        AMQP port."""
        self.current = warren_process.start(self.extra_args, data_dir=self.data_dir,
                                            binary=self.binary, log_path=self.log_path)
        return self.current.port

    def kill(self):
        if self.current is not None:
            self.current.kill()

    def stop(self):
        """SIGTERM (SIGKILL after warren_process.STOP_TIMEOUT s); returns None when it exited
        cleanly (or was killed on purpose), else what went wrong."""
        if self.current is None:
            return None
        self.current.stop()
        return self.current.exit_problem()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--publishers", type=int, default=3)
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: time based)")
    ap.add_argument("--server", default=warren_process.server_binary())
    ap.add_argument("--segment-size", type=int, default=None,
                    help="passed to the server; small values exercise segment rolls and GC")
    ap.add_argument("--min-load", type=float, default=0.2, help="shortest load before a kill (s)")
    ap.add_argument("--max-load", type=float, default=1.5, help="longest load before a kill (s)")
    ap.add_argument("--keep", action="store_true", help="keep the data directory and log")
    args = ap.parse_args()

    seed = args.seed if args.seed is not None else int(time.time())
    work = tempfile.mkdtemp(prefix="warren-crash-")
    extra = ["--segment-size", str(args.segment_size)] if args.segment_size else []
    server = Server(args.server, os.path.join(work, "data"), extra,
                    os.path.join(work, "server.log"))
    print("crash test: %d rounds, %d publishers, seed %d, server %s, work dir %s"
          % (args.rounds, args.publishers, seed, args.server, work), flush=True)
    started = time.monotonic()
    failed = False
    tester = None
    try:
        tester = crash_helpers.CrashTester(kill=server.kill, start=server.start,
                                           port=server.start(), seed=seed,
                                           publishers=args.publishers,
                                           min_load=args.min_load, max_load=args.max_load)
        for _ in range(args.rounds):
            result = tester.run_round()
            print(result.summary(), flush=True)
            failed |= not result.ok
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        failed = True
    except Exception:  # noqa: BLE001 - e.g. the broker did not come back: report, then summary
        traceback.print_exc()
        failed = True
    finally:
        problem = server.stop()
        if problem:
            print("warren-server %s when stopped with SIGTERM at the end" % problem, flush=True)
            failed = True
    rounds = tester.rounds if tester else []
    print("\nsummary: %d rounds (%d failed), %d confirmed ids, %d nacked, %d acked before a "
          "crash, %d recovered, lost=%d, duplicates=%d, %.1f s, seed %d"
          % (len(rounds), sum(1 for r in rounds if not r.ok), sum(r.confirmed for r in rounds),
             sum(r.nacked for r in rounds), sum(r.acked_before_crash for r in rounds),
             sum(r.recovered for r in rounds), sum(len(r.lost) for r in rounds),
             sum(r.duplicates for r in rounds), time.monotonic() - started, seed))
    if failed or args.keep:
        print("data directory and server log kept in %s" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
