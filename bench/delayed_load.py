#!/usr/bin/python3
"""Publishes COUNT delayed messages to an x-delayed-message exchange and prints one JSON line
with what it did. Used by bench/delayed_memory.sh (against Warren, and against RabbitMQ with the
rabbitmq-delayed-message-exchange plugin).

    /usr/bin/python3 bench/delayed_load.py --port 5672 --count 1000000 --size 100 \\
        --delay 3600000 --persistent

The exchange (x-delayed-type direct; durable with --persistent) is bound to a queue, so the
messages have somewhere to go when due; with an hour's delay none is due during the bench.
Publishing is pipelined on one raw AMQP connection in confirm mode, BATCH publishes at a time
(each batch is confirmed before the next is sent, which also bounds what is in flight). Each
body is SIZE bytes and unique (its number, padded); delays vary by up to a minute around DELAY
so the index is not fed in order.
"""

import argparse
import json
import os
import struct
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import pika  # noqa: E402
import rawamqp  # noqa: E402

CONFIRM_SELECT = (85, 10)
CONFIRM_SELECT_OK = (85, 11)
BASIC_NACK = (60, 120)
HEADERS_FLAG = 1 << 13
DELIVERY_MODE_FLAG = 1 << 12


def declare(port, exchange, queue, durable):
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", port, credentials=pika.PlainCredentials("guest", "guest")))
    ch = conn.channel()
    ch.exchange_declare(exchange, "x-delayed-message", durable=durable,
                        arguments={"x-delayed-type": "direct"})
    ch.queue_declare(queue, durable=durable)
    ch.queue_bind(queue, exchange, "k")
    conn.close()


def publish(port, exchange, count, size, delay, mode, batch):
    client = rawamqp.RawClient("127.0.0.1", port, timeout=300)
    client.handshake()
    client.channel_open(1)
    client.send_method(1, CONFIRM_SELECT, rawamqp.bits(False))
    client.read_method(CONFIRM_SELECT_OK)
    method = rawamqp.method_frame(1, rawamqp.BASIC_PUBLISH, struct.pack(">H", 0)
                                  + rawamqp.shortstr(exchange) + rawamqp.shortstr("k")
                                  + rawamqp.bits(False, False))
    nacks = 0
    sent = 0
    while sent < count:
        n = min(batch, count - sent)
        frames = []
        for i in range(sent, sent + n):
            body = (b"%d|" % i).ljust(size, b".")[:size]
            headers = rawamqp.table({"x-delay": delay + (i * 7919) % 60000})
            header = rawamqp.content_header_frame(1, len(body),
                                                  flags=HEADERS_FLAG | DELIVERY_MODE_FLAG,
                                                  props=headers + bytes([mode]))
            frames += [method, header, rawamqp.body_frame(1, body)]
        client.send(b"".join(frames))
        sent += n
        confirmed = 0
        while confirmed < sent:
            frm = client.read_method()
            if frm.class_method == BASIC_NACK:
                nacks += 1
            elif frm.class_method != rawamqp.BASIC_ACK:
                raise RuntimeError("unexpected %r" % (frm,))
            confirmed = frm.args.longlong()
    client.close_socket()
    return nacks


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=1000000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--delay", type=int, default=3600000, help="ms (a minute of spread added)")
    ap.add_argument("--persistent", action="store_true",
                    help="persistent messages on a durable exchange (default: transient)")
    ap.add_argument("--batch", type=int, default=10000)
    ap.add_argument("--exchange", default="bench.delayed")
    ap.add_argument("--queue", default="bench.delayed.q")
    args = ap.parse_args()
    declare(args.port, args.exchange, args.queue, args.persistent)
    t0 = time.monotonic()
    nacks = publish(args.port, args.exchange, args.count, args.size, args.delay,
                    2 if args.persistent else 1, args.batch)
    seconds = time.monotonic() - t0
    print(json.dumps({"count": args.count, "size": args.size, "persistent": args.persistent,
                      "nacks": nacks, "seconds": round(seconds, 2),
                      "rate": round(args.count / seconds)}))


if __name__ == "__main__":
    main()
