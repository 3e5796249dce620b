"""Policies (RabbitMQ 3.10, https://www.rabbitmq.com/parameters.html#policies) seen by a pika
client: max-length, message-ttl, dead-lettering and alternate-exchange given by a policy, the
highest-priority policy alone applying, apply-to, and the per-key rule where a queue's argument
and its policy both set a key.

There is no control verb for policies on this branch yet, so against Warren the policies are
written to the `policies` table of a fresh data directory's metadata.db (store/metadata_store.h)
between a first start (which creates the schema) and the start under test. Against an external
RabbitMQ (WARREN_TEST_AMQP_PORT, with RABBITMQ_NODENAME and ERL_EPMD_PORT naming its node) the
same policies are set with rabbitmqctl set_policy, so every test here also runs against
RabbitMQ 3.10.8."""

import json
import os
import sqlite3
import subprocess
import uuid

import pika
import pika.exceptions
import pytest

from amqp_helpers import close_quietly, get_all, params, queue_depth, settle, wait_until
from conftest import RestartableBroker, external_port


def _rabbitmqctl(*args):
    subprocess.run(["rabbitmqctl"] + list(args), check=True, capture_output=True, timeout=120)


class PolicyBroker(object):
    """start(policies) -> AMQP port of a broker with those policies in vhost "/"; each policy is
    (name, pattern, definition dict, apply_to, priority). Names get a per-test prefix (the
    `prefix` attribute) so that patterns of concurrent tests on a shared broker do not overlap."""

    def __init__(self):
        self.prefix = "pol-%s-" % uuid.uuid4().hex[:8]
        self.external = external_port()
        self.rb = None
        self.set_names = []

    def start(self, policies):
        if self.external is not None:
            for name, pattern, definition, apply_to, priority in policies:
                _rabbitmqctl("set_policy", "-p", "/", "--apply-to", apply_to, "--priority",
                             str(priority), name, pattern, json.dumps(definition))
                self.set_names.append(name)
            return self.external
        self.rb = RestartableBroker()
        self.rb.start()
        self.rb.stop()
        db = sqlite3.connect(os.path.join(self.rb.data_dir, "metadata.db"))
        with db:
            for name, pattern, definition, apply_to, priority in policies:
                db.execute("INSERT INTO policies (vhost, name, pattern, apply_to, priority, "
                           "definition) VALUES ('/', ?, ?, ?, ?, ?)",
                           (name, pattern, apply_to, priority, json.dumps(definition)))
        db.close()
        return self.rb.start().port

    def restart(self):
        return self.rb.restart().port

    def cleanup(self):
        for name in self.set_names:
            _rabbitmqctl("clear_policy", "-p", "/", name)
        if self.rb is not None:
            self.rb.cleanup()


@pytest.fixture
def policy_broker():
    pb = PolicyBroker()
    yield pb
    pb.cleanup()


@pytest.fixture
def connect():
    opened = []

    def make(port):
        c = pika.BlockingConnection(params(port))
        opened.append(c)
        return c, c.channel()

    yield make
    for c in opened:
        close_quietly(c)


def publish(ch, routing_key, bodies, exchange=""):
    for b in bodies:
        ch.basic_publish(exchange, routing_key, b)
    settle(ch)


def test_max_length_policy_drops_head_and_dead_letters_as_maxlen(policy_broker, connect):
    p = policy_broker.prefix
    port = policy_broker.start([
        (p + "ml", "^" + p + "ml-q", {"max-length": 2, "dead-letter-exchange": "",
                                       "dead-letter-routing-key": p + "dlq"}, "queues", 0)])
    _, ch = connect(port)
    q, dlq = p + "ml-q", p + "dlq"
    ch.queue_declare(dlq, auto_delete=False)
    ch.queue_declare(q)
    try:
        publish(ch, q, [b"1", b"2", b"3", b"4", b"5"])
        assert wait_until(lambda: queue_depth(ch, dlq) == 3)
        assert [m[2] for m in get_all(ch, q)] == [b"4", b"5"]
        dead = get_all(ch, dlq)
        assert [m[2] for m in dead] == [b"1", b"2", b"3"]
        assert dead[0][1].headers["x-death"][0]["reason"] == "maxlen"
        assert dead[0][1].headers["x-death"][0]["queue"] == q
    finally:
        ch.queue_delete(q)
        ch.queue_delete(dlq)


def test_message_ttl_policy_expires_messages(policy_broker, connect):
    p = policy_broker.prefix
    port = policy_broker.start([(p + "ttl", "^" + p + "ttl-", {"message-ttl": 100}, "all", 0)])
    _, ch = connect(port)
    q, untouched = p + "ttl-q", p + "other-q"
    ch.queue_declare(q)
    ch.queue_declare(untouched)
    try:
        publish(ch, q, [b"a", b"b"])
        publish(ch, untouched, [b"c"])
        assert wait_until(lambda: queue_depth(ch, q) == 0)
        assert queue_depth(ch, untouched) == 1
    finally:
        ch.queue_delete(q)
        ch.queue_delete(untouched)


def test_alternate_exchange_policy_routes_unroutable_messages(policy_broker, connect):
    p = policy_broker.prefix
    port = policy_broker.start([
        (p + "ae", "^" + p + "x$", {"alternate-exchange": p + "ae"}, "exchanges", 0)])
    _, ch = connect(port)
    x, ae, q = p + "x", p + "ae", p + "ae-q"
    ch.exchange_declare(x, "direct")
    ch.exchange_declare(ae, "fanout")
    ch.queue_declare(q)
    ch.queue_bind(q, ae)
    try:
        publish(ch, "nowhere", [b"lost"], exchange=x)
        assert wait_until(lambda: queue_depth(ch, q) == 1)
    finally:
        ch.exchange_delete(x)
        ch.exchange_delete(ae)
        ch.queue_delete(q)


def test_only_the_highest_priority_policy_applies(policy_broker, connect):
    p = policy_broker.prefix
    port = policy_broker.start([
        (p + "low", "^" + p + "pr-", {"max-length": 1}, "queues", 1),
        (p + "high", "^" + p + "pr-both", {"max-length-bytes": 1000000}, "queues", 2)])
    _, ch = connect(port)
    both, low_only = p + "pr-both", p + "pr-low"
    ch.queue_declare(both)
    ch.queue_declare(low_only)
    try:
        publish(ch, both, [b"1", b"2", b"3"])
        publish(ch, low_only, [b"1", b"2", b"3"])
        # "high" replaces "low" on pr-both entirely: its max-length of 1 does not apply.
        assert queue_depth(ch, both) == 3
        assert queue_depth(ch, low_only) == 1
    finally:
        ch.queue_delete(both)
        ch.queue_delete(low_only)


def test_apply_to_limits_a_policy_to_queues_or_exchanges(policy_broker, connect):
    p = policy_broker.prefix
    port = policy_broker.start([
        (p + "xonly", "^" + p + "at-", {"max-length": 1, "alternate-exchange": p + "at-ae"},
         "exchanges", 0)])
    _, ch = connect(port)
    q, x, ae, aeq = p + "at-q", p + "at-x", p + "at-ae", p + "at-aeq"
    ch.queue_declare(q)
    ch.exchange_declare(x, "direct")
    ch.exchange_declare(ae, "fanout")
    ch.queue_declare(aeq)
    ch.queue_bind(aeq, ae)
    try:
        publish(ch, q, [b"1", b"2"])
        assert queue_depth(ch, q) == 2  # not limited: the policy is for exchanges
        publish(ch, "nowhere", [b"lost"], exchange=x)
        assert wait_until(lambda: queue_depth(ch, aeq) == 1)  # the exchange got its AE
    finally:
        for name in (q, aeq):
            ch.queue_delete(name)
        for name in (x, ae):
            ch.exchange_delete(name)


def test_argument_and_policy_lower_limit_wins_argument_dead_letter_exchange_wins(
        policy_broker, connect):
    p = policy_broker.prefix
    port = policy_broker.start([
        (p + "rule", "^" + p + "r-", {"max-length": 3, "dead-letter-exchange": "",
                                      "dead-letter-routing-key": p + "dl-p"}, "queues", 0)])
    _, ch = connect(port)
    lower_arg, higher_arg, pdlq, adlq = p + "r-lower", p + "r-higher", p + "dl-p", p + "dl-a"
    ch.queue_declare(pdlq)
    ch.queue_declare(adlq)
    ch.queue_declare(lower_arg, arguments={"x-max-length": 1, "x-dead-letter-routing-key": adlq,
                                           "x-dead-letter-exchange": ""})
    ch.queue_declare(higher_arg, arguments={"x-max-length": 10})
    try:
        publish(ch, lower_arg, [b"1", b"2", b"3", b"4", b"5"])
        publish(ch, higher_arg, [b"1", b"2", b"3", b"4", b"5"])
        assert queue_depth(ch, lower_arg) == 1  # the argument's 1 < the policy's 3
        assert queue_depth(ch, higher_arg) == 3  # the policy's 3 < the argument's 10
        # lower_arg's own dead-letter routing key wins; higher_arg uses the policy's.
        assert wait_until(lambda: queue_depth(ch, adlq) == 4)
        assert wait_until(lambda: queue_depth(ch, pdlq) == 2)
    finally:
        for name in (lower_arg, higher_arg, pdlq, adlq):
            ch.queue_delete(name)


def test_policies_survive_a_restart_and_apply_to_restored_queues(policy_broker, connect):
    if policy_broker.external is not None:
        pytest.skip("restarts a private broker")
    p = policy_broker.prefix
    port = policy_broker.start([(p + "dur", "^" + p + "d-", {"max-length": 2}, "queues", 0)])
    c, ch = connect(port)
    q = p + "d-q"
    ch.queue_declare(q, durable=True)
    c.close()
    port = policy_broker.restart()
    _, ch = connect(port)
    publish(ch, q, [b"1", b"2", b"3"])
    assert queue_depth(ch, q) == 2


def test_a_policy_stored_while_stopped_applies_to_restored_messages(policy_broker, connect):
    """As RabbitMQ's queue init: a durable queue's recovered messages over the policy's
    max-length are dropped from the head at start."""
    if policy_broker.external is not None:
        pytest.skip("restarts a private broker")
    p = policy_broker.prefix
    port = policy_broker.start([])
    c, ch = connect(port)
    q = p + "rs-q"
    ch.queue_declare(q, durable=True)
    for body in (b"1", b"2", b"3", b"4", b"5"):
        ch.basic_publish("", q, body, pika.BasicProperties(delivery_mode=2))
    settle(ch)
    c.close()
    policy_broker.rb.stop()
    db = sqlite3.connect(os.path.join(policy_broker.rb.data_dir, "metadata.db"))
    with db:
        db.execute("INSERT INTO policies (vhost, name, pattern, apply_to, priority, definition) "
                   "VALUES ('/', ?, ?, 'queues', 0, ?)",
                   (p + "rs", "^" + p + "rs-", json.dumps({"max-length": 2})))
    db.close()
    port = policy_broker.rb.start().port
    _, ch = connect(port)
    assert [m[2] for m in get_all(ch, q)] == [b"4", b"5"]


def test_exchange_alternate_exchange_argument_wins_over_the_policy(policy_broker, connect):
    p = policy_broker.prefix
    port = policy_broker.start([
        (p + "aex", "^" + p + "aw-x", {"alternate-exchange": p + "aw-pol"}, "exchanges", 0)])
    _, ch = connect(port)
    x, own, pol = p + "aw-x", p + "aw-own", p + "aw-pol"
    own_q, pol_q = p + "aw-own-q", p + "aw-pol-q"
    for ae, q in ((own, own_q), (pol, pol_q)):
        ch.exchange_declare(ae, "fanout")
        ch.queue_declare(q)
        ch.queue_bind(q, ae)
    ch.exchange_declare(x, "direct", arguments={"alternate-exchange": own})
    try:
        publish(ch, "nowhere", [b"lost"], exchange=x)
        assert wait_until(lambda: queue_depth(ch, own_q) == 1)
        assert queue_depth(ch, pol_q) == 0
    finally:
        for name in (x, own, pol):
            ch.exchange_delete(name)
        for name in (own_q, pol_q):
            ch.queue_delete(name)


def test_expires_policy_deletes_an_unused_queue(policy_broker, connect):
    p = policy_broker.prefix
    port = policy_broker.start([(p + "exp", "^" + p + "exp-", {"expires": 200}, "queues", 0)])
    c, ch = connect(port)
    q, kept = p + "exp-q", p + "kept-q"
    ch.queue_declare(q)
    ch.queue_declare(kept)

    def gone():
        probe = c.channel()
        try:
            probe.queue_declare(q, passive=True)
            probe.close()
            return False
        except pika.exceptions.ChannelClosedByBroker as e:
            return e.reply_code == 404

    try:
        # A passive declare uses the queue (restarting its countdown): probe less often.
        assert wait_until(gone, interval=1.0)
        assert queue_depth(ch, kept) == 0  # still there
    finally:
        ch.queue_delete(kept)
