"""Broker memory per idle STOMP, MQTT-over-WebSocket or STOMP-over-WebSocket connection: opens N
logged-in connections (heart-beats and keep-alive off) and reports the broker's RSS growth per
connection, after one warm-up connection. bench/mqtt_idle_connections.py does plain MQTT (and
RabbitMQ); bench/idle_connections.py AMQP.

usage: idle_protocols.py stomp|web-mqtt|web-stomp PORT PID N
Prints one JSON line."""

import json
import os
import resource
import socket
import sys
import time

import websocket  # python3-websocket

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import mqtt_helpers  # noqa: E402

protocol, port, pid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
n = min(n, hard - 64)
STOMP_CONNECT = (b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n"
                 b"heart-beat:0,0\n\n\x00")


def rss_kb():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_one(i):
    if protocol == "stomp":
        s = socket.socket()
        s.bind(("127.0.0.%d" % (1 + i % 8), 0))
        s.connect(("127.0.0.1", port))
        s.sendall(STOMP_CONNECT)
        assert s.recv(4096).startswith(b"CONNECTED")
        return s
    sub = "mqtt" if protocol == "web-mqtt" else "v12.stomp"
    ws = websocket.create_connection("ws://127.0.0.1:%d/ws" % port, subprotocols=[sub],
                                     timeout=30)
    if protocol == "web-mqtt":
        ws.send_binary(mqtt_helpers.connect_packet(client_id="idle-%d" % i, keepalive=0))
        assert ws.recv() == b"\x20\x02\x00\x00"
    else:
        ws.send(STOMP_CONNECT.decode())
        assert ws.recv().startswith("CONNECTED")
    return ws


first = open_one(-1)
time.sleep(2)
before = rss_kb()
t0 = time.perf_counter()
conns = [open_one(i) for i in range(n)]
opened = time.perf_counter() - t0
time.sleep(5)
after = rss_kb()
print(json.dumps({"protocol": protocol, "connections": n, "open_s": round(opened, 1),
                  "rss_per_connection_kib": round((after - before) / n, 1),
                  "rss_mb": round(after / 1024, 1)}))
for c in conns:
    c.close()
first.close()
