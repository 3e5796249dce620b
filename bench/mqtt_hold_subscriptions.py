"""Holds N MQTT connections, each subscribed (QoS 0) to its own topic dev/<i>/cmd, for SECONDS:
the bindings a broker with one MQTT client per device has on amq.topic. Run warren-mqtt-perf
meanwhile to see what routing past them costs (bench/RESULTS.md, the topic trie).

usage: mqtt_hold_subscriptions.py MQTT_PORT N SECONDS   (prints "subscribed N" when ready)"""
import socket, struct, sys, time, resource
port, n, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE); resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
def utf8(s): b = s.encode(); return struct.pack("!H", len(b)) + b
def pkt(first, body):
    out = bytearray([first]); l = len(body)
    while True:
        b = l % 128; l //= 128; out.append(b | (0x80 if l else 0))
        if not l: break
    return bytes(out) + body
socks = []
for i in range(n):
    s = socket.socket(); s.bind(("127.0.0.%d" % (1 + i % 8), 0)); s.connect(("127.0.0.1", port))
    s.sendall(pkt(0x10, utf8("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 0) + utf8("hold-%d" % i) +
                   utf8("guest") + utf8("guest")) +
              pkt(0x82, struct.pack("!H", 1) + utf8("dev/%d/cmd" % i) + b"\x00"))
    socks.append(s)
    if i % 200 == 199:
        for t in socks[-200:]: t.recv(64)
print("subscribed", n, flush=True)
time.sleep(hold)
