"""Durable exchanges, queues and bindings survive restarts (clean and kill -9) with their
arguments; transient and exclusive ones do not, as in RabbitMQ."""
import subprocess

import pika
import pytest

import amqp_helpers
from amqp_helpers import params, unique
import conftest


def declare_world(ch):
    ch.exchange_declare("d.x", "topic", durable=True, arguments={"alternate-exchange": "d.ae"})
    ch.exchange_declare("d.ae", "fanout", durable=True)
    ch.exchange_declare("t.x", "direct", durable=False)
    ch.queue_declare("d.q", durable=True, arguments={"x-max-length": 100, "x-custom": "kept"})
    ch.queue_declare("d.ae.q", durable=True)
    ch.queue_declare("t.q", durable=False)
    ch.queue_declare("x.q", durable=True, exclusive=True)
    ch.queue_bind("d.q", "d.x", "a.*")
    ch.queue_bind("d.ae.q", "d.ae", "")
    ch.queue_bind("t.q", "d.x", "b.*")  # transient queue: the binding is transient too
    ch.exchange_bind("d.x", "amq.fanout", "")  # e2e binding between durable exchanges


def check_world_after_restart(port):
    conn = pika.BlockingConnection(params(port))
    ch = conn.channel()
    # Durable things are there before anything could create them again (a passive declare of a
    # missing one is 404), and with their arguments (redeclare with the same ones is ok, with
    # other ones is 406).
    for exchange in ("d.x", "d.ae"):
        ch.exchange_declare(exchange, passive=True)
    for queue in ("d.q", "d.ae.q"):
        ch.queue_declare(queue, passive=True)
    ch.exchange_declare("d.x", "topic", durable=True, arguments={"alternate-exchange": "d.ae"})
    ch.queue_declare("d.q", durable=True, arguments={"x-max-length": 100, "x-custom": "kept"})
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare("d.q", durable=True, arguments={"x-max-length": 5})
    assert info.value.reply_code == 406
    ch = conn.channel()
    for name in ("t.q", "x.q"):
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.queue_declare(name, passive=True)
        assert info.value.reply_code == 404, name
        ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.exchange_declare("t.x", passive=True)
    assert info.value.reply_code == 404
    ch = conn.channel()
    # Bindings route again: topic binding, alternate exchange, exchange-to-exchange binding.
    ch.basic_publish("d.x", "a.b", b"via-binding")
    ch.basic_publish("d.x", "zzz", b"via-ae")
    ch.basic_publish("amq.fanout", "a.c", b"via-e2e")
    got = []
    for q in ("d.q", "d.ae.q"):
        while True:
            m, _, body = ch.basic_get(q, auto_ack=True)
            if m is None:
                break
            got.append((q, body))
    assert sorted(got) == sorted([("d.q", b"via-binding"), ("d.ae.q", b"via-ae"),
                                  ("d.q", b"via-e2e")])
    conn.close()


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "kill-9"])
def test_durable_definitions_survive_restart(restartable_broker, kill):
    b = restartable_broker.start()
    conn = pika.BlockingConnection(params(b.port))
    declare_world(conn.channel())
    if kill:
        restartable_broker.stop(kill=True)  # the exclusive queue's connection dies with it
    else:
        conn.close()
    b = restartable_broker.restart(kill=kill)
    check_world_after_restart(b.port)
    # And once more: recovery itself must not lose anything.
    b = restartable_broker.restart()
    check_world_after_restart(b.port)


def test_deletes_and_unbinds_are_durable(restartable_broker):
    b = restartable_broker.start()
    conn = pika.BlockingConnection(params(b.port))
    ch = conn.channel()
    # Each deleted thing has a kept twin, so the 404s below cannot come from a broker that
    # simply forgot everything.
    ch.exchange_declare("gone.x", "direct", durable=True)
    ch.exchange_declare("kept.x", "direct", durable=True)
    ch.queue_declare("gone.q", durable=True)
    ch.queue_declare("kept.q", durable=True)
    ch.queue_bind("kept.q", "kept.x", "k")
    ch.queue_bind("kept.q", "amq.direct", "k1")
    ch.queue_bind("kept.q", "amq.direct", "k2")
    ch.queue_bind("gone.q", "gone.x", "k")
    ch.queue_unbind("kept.q", "amq.direct", "k2")
    ch.exchange_delete("gone.x")
    ch.queue_delete("gone.q")
    conn.close()
    b = restartable_broker.restart(kill=True)
    conn = pika.BlockingConnection(params(b.port))
    ch = conn.channel()
    for kind, name in (("exchange", "gone.x"), ("queue", "gone.q")):
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            if kind == "exchange":
                ch.exchange_declare(name, passive=True)
            else:
                ch.queue_declare(name, passive=True)
        assert info.value.reply_code == 404, name
        ch = conn.channel()
    ch.exchange_declare("kept.x", passive=True)
    ch.basic_publish("amq.direct", "k1", b"one")
    ch.basic_publish("amq.direct", "k2", b"two")
    ch.basic_publish("kept.x", "k", b"three")
    got = [body for _, _, body in amqp_helpers.get_all(ch, "kept.q")]
    assert got == [b"one", b"three"]
    conn.close()


def test_second_server_on_the_same_data_dir_refuses_to_start(restartable_broker):
    b = restartable_broker.start()
    proc = subprocess.run(
        [conftest._server_binary(), "--amqp-port", "0", "--management-port", "0",
         "--prometheus-port", "0", "--data-dir", restartable_broker.data_dir],
        capture_output=True, timeout=60)
    assert proc.returncode != 0
    assert b"in use by another warren-server" in proc.stdout + proc.stderr
    # The first one is unaffected.
    conn = pika.BlockingConnection(params(b.port))
    conn.channel().queue_declare(unique("ok"))
    conn.close()
