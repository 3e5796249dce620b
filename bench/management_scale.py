"""Management API at scale, one broker: declares N idle queues over AMQP, then times
GET /api/queues?page=1&page_size=100, the full /api/queues, /api/overview and the Prometheus
/metrics (median of BENCH_REPEAT calls each), measures the broker's RSS per idle queue, and the
worst and 99th-percentile round trip of a ping-pong client (its own process) while the full list
is fetched BENCH_REPEAT times, and while idle for as long.

usage: management_scale.py AMQP_PORT MGMT_PORT METRICS_URL PID N LABEL
Prints one JSON line of results."""

import base64
import json
import multiprocessing
import os
import statistics
import sys
import time
import urllib.request

import pika

amqp_port, mgmt_port, metrics_url, pid, n, label = (int(sys.argv[1]), int(sys.argv[2]),
                                                    sys.argv[3], int(sys.argv[4]),
                                                    int(sys.argv[5]), sys.argv[6])
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()


def rss_kb():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fetch(url, auth=True):
    req = urllib.request.Request(url)
    if auth:
        req.add_header("authorization", AUTH)
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        body = r.read()
    return time.perf_counter() - t, len(body)


def timed(url, auth=True):
    times = []
    size = 0
    for _ in range(REPEAT):
        dt, size = fetch(url, auth)
        times.append(dt)
    return {"median_ms": round(statistics.median(times) * 1000, 2),
            "max_ms": round(max(times) * 1000, 2), "bytes": size}


api = "http://127.0.0.1:%d/api" % mgmt_port
rss_before = rss_kb()
conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", amqp_port))
ch = conn.channel()
t0 = time.perf_counter()
for i in range(n):
    ch.queue_declare("scale-%06d" % i)
declare_s = time.perf_counter() - t0
conn.close()
time.sleep(12)  # let a stats interval or two pass (RabbitMQ's stats DB catches up)
rss_after = rss_kb()

result = {"label": label, "queues": n, "declare_s": round(declare_s, 1),
          "rss_per_queue_bytes": round((rss_after - rss_before) * 1024 / n),
          "rss_mb": round(rss_after / 1024, 1)}
result["queues_page_100"] = timed(api + "/queues?page=1&page_size=100")
result["overview"] = timed(api + "/overview")
result["metrics"] = timed(metrics_url, auth=False)

# Delivery pauses while the full list is built: a client publishes to a queue it consumes from,
# one message at a time, and records the longest round trip.
# The pinger is its own process: in this one, reading a 45 MB reply holds Python's GIL and
# would show up as a broker pause.
def ping(stop, out):
    c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", amqp_port))
    chan = c.channel()
    q = chan.queue_declare("", exclusive=True).method.queue
    lat = []
    while not stop.is_set():
        t = time.perf_counter()
        chan.basic_publish("", q, b"p")
        while chan.basic_get(q, auto_ack=True)[0] is None:
            pass
        lat.append(time.perf_counter() - t)
    lat.sort()
    out.put((lat[-1] * 1000, lat[int(len(lat) * 0.99)] * 1000))
    c.close()


def pings_during(action, warmup=0.5):
    """(action's result, worst round trip ms, 99th percentile ms) of a pinger running meanwhile."""
    stop = multiprocessing.Event()
    out = multiprocessing.Queue()
    pinger = multiprocessing.Process(target=ping, args=(stop, out))
    pinger.start()
    time.sleep(warmup)
    result = action()
    stop.set()
    worst, p99 = out.get()
    pinger.join()
    return result, round(worst, 2), round(p99, 2)


# The machine's own noise first (the same duration as the listing below), then three full lists.
_, result["ping_worst_idle_ms"], result["ping_p99_idle_ms"] = pings_during(
    lambda: time.sleep(max(2.0, 3 * fetch(api + "/queues")[0])))
result["queues_full"], result["ping_worst_during_full_list_ms"], \
    result["ping_p99_during_full_list_ms"] = pings_during(lambda: timed(api + "/queues"))
print(json.dumps(result))
