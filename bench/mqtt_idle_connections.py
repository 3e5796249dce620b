"""Broker memory per idle MQTT connection: opens N MQTT 3.1.1 connections (raw sockets on one
epoll loop, CONNECT with a clean session and keep-alive off, optionally one QoS 0 or QoS 1
subscription each), waits, and reports the broker's RSS growth per connection.

usage: mqtt_idle_connections.py MQTT_PORT PID N LABEL [SUBSCRIBE_QOS]
Prints one JSON line of results. Source addresses rotate over 127.0.0.1-127.0.0.8 so that more
connections than one address has ephemeral ports can be opened."""

import json
import resource
import selectors
import socket
import struct
import sys
import time

port, pid, n, label = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sub_qos = int(sys.argv[5]) if len(sys.argv) > 5 else -1
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
if n + 64 > hard:
    n = hard - 64  # this machine's limit on open files; reported in the result


def rss_kb():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def utf8(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def packet(first, body):
    out = bytearray([first])
    length = len(body)
    while True:
        b = length % 128
        length //= 128
        out.append(b | (0x80 if length else 0))
        if not length:
            break
    return bytes(out) + body


def connect_packet(client_id):
    # Clean session, user name and password (guest, from loopback).
    return packet(0x10, utf8("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 0) + utf8(client_id) +
                  utf8("guest") + utf8("guest"))


def subscribe_packet(topic, qos):
    return packet(0x82, struct.pack("!H", 1) + utf8(topic) + bytes([qos]))


sel = selectors.DefaultSelector()
socks = []
# The expected reply bytes: CONNACK (4), and SUBACK (5) when subscribing.
expect = 4 + (5 if sub_qos >= 0 else 0)
pending = {}
error = None
first = socket.create_connection(("127.0.0.1", port))
first.sendall(connect_packet("idle-bench-first"))
first.recv(4)
time.sleep(2)
before = rss_kb()
t0 = time.perf_counter()
BATCH = 500


def drain(timeout):
    for key, _ in sel.select(timeout):
        s = key.fileobj
        data = s.recv(64)
        if not data:
            raise ConnectionError("closed by the broker")
        pending[s] -= len(data)
        if pending[s] <= 0:
            sel.unregister(s)
            del pending[s]


try:
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.%d" % (1 + i % 8), 0))
        s.connect(("127.0.0.1", port))
        data = connect_packet("idle-%s-%d" % (label, i))
        if sub_qos >= 0:
            data += subscribe_packet("idle/%d" % i, sub_qos)
        s.sendall(data)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        pending[s] = expect
        socks.append(s)
        if len(pending) >= BATCH:
            while len(pending) > BATCH // 2:
                drain(10)
    deadline = time.monotonic() + 120
    while pending and time.monotonic() < deadline:
        drain(1)
    if pending:
        error = "%d connections got no CONNACK" % len(pending)
except Exception as e:  # the broker stopped taking connections: report how far it got
    error = "%s after %d connections" % (e, len(socks))
opened = time.perf_counter() - t0
time.sleep(5)
after = rss_kb()
count = len(socks) - len(pending)
result = {"label": label, "protocol": "mqtt", "connections": count, "open_s": round(opened, 1),
          "subscription_qos": sub_qos if sub_qos >= 0 else None,
          "rss_per_connection_kib": round((after - before) / max(1, count), 1),
          "rss_mb": round(after / 1024, 1), "fd_limit": hard}
if error:
    result["error"] = error
print(json.dumps(result))
for s in socks:
    s.close()
first.close()
