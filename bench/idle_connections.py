"""Broker memory per idle AMQP connection: opens N connections with one channel each (pika,
heartbeats off so nothing moves), waits, and reports the broker's RSS growth per connection.

usage: idle_connections.py AMQP_PORT PID N LABEL
Prints one JSON line of results."""

import json
import resource
import sys
import time

import pika

amqp_port, pid, n, label = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 256)), hard))


def rss_kb():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


params = pika.ConnectionParameters("127.0.0.1", amqp_port, heartbeat=0, stack_timeout=120,
                                   blocked_connection_timeout=120, socket_timeout=60)
# One connection first, so what every broker sets up once is not counted.
first = pika.BlockingConnection(params)
first.channel()
time.sleep(2)
before = rss_kb()
conns = []
t0 = time.perf_counter()
error = None
for _ in range(n):
    try:
        c = pika.BlockingConnection(params)
        c.channel()
    except Exception as e:  # the broker stopped taking connections: report how far it got
        error = "%s after %d connections" % (type(e).__name__, len(conns))
        break
    conns.append(c)
opened = time.perf_counter() - t0
time.sleep(5)
after = rss_kb()
result = {"label": label, "connections": len(conns), "open_s": round(opened, 1),
          "rss_per_connection_kib": round((after - before) / max(1, len(conns)), 1),
          "rss_mb": round(after / 1024, 1)}
if error:
    result["error"] = error
print(json.dumps(result))
for c in conns:
    c.close()
first.close()
