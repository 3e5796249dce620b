"""Users, vhost access and the configure/write/read table of
https://www.rabbitmq.com/access-control.html ("How Permissions Work"), with RabbitMQ 3.10's
error texts. Every rule is tried allowed and refused."""

import pika
import pytest

import amqp_helpers
from amqp_helpers import expect_channel_closed
from tenancy_helpers import Seed, connect, open_refused, seeded_broker


def refused(fn, conn, ch, *args, **kwargs):
    exc = expect_channel_closed(ch, conn, fn, *args, **kwargs)
    assert exc.reply_code == 403, exc
    return exc.reply_text


@pytest.fixture
def tenancy(restartable_broker):
    seed = (Seed()
            .user("alice", "apw", "management")
            .user("nobody", "npw")
            .user("nopass", "", raw_hash="")
            .vhost("v1")
            .permit("alice", "/", "^alice-", "^alice-|^amq\\.default$", "^alice-")
            .permit("alice", "v1", ".*", ".*", ".*")
            .permit("nopass", "/", ".*", ".*", ".*"))
    broker = seeded_broker(restartable_broker, seed)
    # Resources alice may not touch, made by guest (full permissions on "/").
    admin = connect(broker, "guest", "guest")
    ch = admin.channel()
    ch.exchange_declare("bob-x", "direct")
    ch.queue_declare("bob-q")
    ch.queue_declare("alice-q")
    ch.exchange_declare("alice-x", "direct")
    admin.close()
    return broker


def test_default_user_created_on_first_start_and_kept(restartable_broker):
    broker = restartable_broker.start()
    connect(broker, "guest", "guest").close()
    broker = restartable_broker.restart()
    connect(broker, "guest", "guest").close()


def test_login_with_seeded_user_and_wrong_password(tenancy):
    connect(tenancy, "alice", "apw").close()
    code, text = open_refused(tenancy, "alice", "wrong")
    assert code == 403, text


def test_user_without_password_cannot_log_in(tenancy):
    for pw in ("", "x"):
        code, text = open_refused(tenancy, "nopass", pw)
        assert code == 403, text


def test_vhost_without_permission_is_refused(tenancy):
    code, text = open_refused(tenancy, "nobody", "npw", "/")
    assert (code, text) == (530, "NOT_ALLOWED - access to vhost '/' refused for user 'nobody'")
    connect(tenancy, "alice", "apw", "v1").close()


def test_unknown_vhost_is_refused(tenancy):
    code, text = open_refused(tenancy, "guest", "guest", "nope")
    assert (code, text) == (530, "NOT_ALLOWED - vhost nope not found")


def test_configure_on_queue_declare_and_delete(tenancy):
    c = connect(tenancy, "alice", "apw")
    ch = c.channel()
    ch.queue_declare("alice-mine")
    ch.queue_delete("alice-mine")
    ch.queue_declare("bob-q", passive=True)  # passive needs no permission
    text = refused(ch.queue_declare, c, ch, "bob-new")
    assert text == "ACCESS_REFUSED - access to queue 'bob-new' in vhost '/' refused for user 'alice'"
    ch = c.channel()
    text = refused(ch.queue_declare, c, ch, "")
    assert text.startswith("ACCESS_REFUSED - access to queue 'amq.gen-"), text
    ch = c.channel()
    text = refused(ch.queue_delete, c, ch, "bob-q")
    assert "access to queue 'bob-q' in vhost '/' refused for user 'alice'" in text
    c.close()


def test_configure_on_exchange_declare_and_delete(tenancy):
    c = connect(tenancy, "alice", "apw")
    ch = c.channel()
    ch.exchange_declare("alice-x2", "fanout")
    ch.exchange_delete("alice-x2")
    ch.exchange_declare("bob-x", "direct", passive=True)
    text = refused(ch.exchange_declare, c, ch, "bob-x2", "fanout")
    assert text == ("ACCESS_REFUSED - access to exchange 'bob-x2' in vhost '/' refused for "
                    "user 'alice'")
    ch = c.channel()
    refused(ch.exchange_delete, c, ch, "bob-x")
    c.close()


def test_bind_needs_write_on_queue_and_read_on_exchange(tenancy):
    c = connect(tenancy, "alice", "apw")
    ch = c.channel()
    ch.queue_bind("alice-q", "alice-x", "k")
    ch.queue_unbind("alice-q", "alice-x", "k")
    text = refused(ch.queue_bind, c, ch, "alice-q", "bob-x", "k")
    assert "access to exchange 'bob-x' in vhost '/'" in text
    ch = c.channel()
    text = refused(ch.queue_bind, c, ch, "bob-q", "alice-x", "k")
    assert "access to queue 'bob-q' in vhost '/'" in text
    c.close()


def test_exchange_bind_needs_write_on_destination_read_on_source(tenancy):
    c = connect(tenancy, "alice", "apw")
    ch = c.channel()
    ch.exchange_declare("alice-x3", "fanout")
    ch.exchange_bind("alice-x3", "alice-x", "k")
    text = refused(ch.exchange_bind, c, ch, "alice-x3", "bob-x", "k")
    assert "access to exchange 'bob-x'" in text
    ch = c.channel()
    text = refused(ch.exchange_bind, c, ch, "bob-x", "alice-x", "k")
    assert "access to exchange 'bob-x'" in text
    c.close()


def test_publish_needs_write_on_exchange(tenancy):
    c = connect(tenancy, "alice", "apw")
    ch = c.channel()
    ch.basic_publish("", "alice-q", b"via default")  # amq.default is permitted
    ch.basic_publish("alice-x", "k", b"ok")
    text = refused(ch.basic_publish, c, ch, "bob-x", "k", b"no")
    assert text == ("ACCESS_REFUSED - access to exchange 'bob-x' in vhost '/' refused for "
                    "user 'alice'")
    ch = c.channel()
    assert ch.basic_get("alice-q", auto_ack=True)[2] == b"via default"
    c.close()


def test_default_exchange_is_checked_as_amq_default(tenancy, restartable_broker):
    restartable_broker.stop()
    import os, sqlite3
    db = sqlite3.connect(os.path.join(restartable_broker.data_dir, "metadata.db"))
    with db:
        db.execute("UPDATE permissions SET write = '^alice-' WHERE user = 'alice' AND vhost = '/'")
    db.close()
    broker = restartable_broker.start()
    c = connect(broker, "alice", "apw")
    ch = c.channel()
    text = refused(ch.basic_publish, c, ch, "", "alice-q", b"x")
    assert text == ("ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/' refused "
                    "for user 'alice'")
    c.close()


def test_get_consume_purge_need_read_on_queue(tenancy):
    c = connect(tenancy, "alice", "apw")
    ch = c.channel()
    ch.basic_get("alice-q")
    ch.queue_purge("alice-q")
    ch.basic_consume("alice-q", lambda *a: None)
    for fn, args in ((ch.basic_get, ("bob-q",)), (ch.queue_purge, ("bob-q",)),
                     (ch.basic_consume, ("bob-q", lambda *a: None))):
        ch2 = c.channel()
        fn = getattr(ch2, fn.__name__)
        text = refused(fn, c, ch2, *args)
        assert text == ("ACCESS_REFUSED - access to queue 'bob-q' in vhost '/' refused for "
                        "user 'alice'")
    c.close()


def test_patterns_are_unanchored_and_empty_matches_nothing(restartable_broker):
    seed = (Seed().user("u", "p")
            .permit("u", "/", "foo", "", ""))
    broker = seeded_broker(restartable_broker, seed)
    c = connect(broker, "u", "p")
    ch = c.channel()
    ch.queue_declare("xfoox")  # "foo" matches anywhere, as Erlang's re:run
    text = refused(ch.basic_get, c, ch, "xfoox")  # read "" permits nothing
    assert "access to queue 'xfoox'" in text
    ch = c.channel()
    refused(ch.queue_declare, c, ch, "bar")
    c.close()


def test_seeded_state_survives_another_restart(tenancy, restartable_broker):
    broker = restartable_broker.restart()
    connect(broker, "alice", "apw", "v1").close()
    code, _ = open_refused(broker, "nobody", "npw", "/")
    assert code == 530


def test_dead_letter_and_alternate_exchange_permissions_in_rabbitmqs_order(tenancy):
    """rabbit_channel checks read on the declared queue (exchange) before write on its DLX (AE):
    a user with configure only is refused on the queue (exchange) itself, as RabbitMQ 3.10.8."""
    c = connect(tenancy, "alice", "apw")
    ch = c.channel()
    # alice may write to alice-* exchanges and read alice-* queues: allowed.
    ch.queue_declare("alice-dq", arguments={"x-dead-letter-exchange": "alice-x"})
    text = refused(ch.queue_declare, c, ch, "alice-dq2",
                   arguments={"x-dead-letter-exchange": "bob-x"})
    assert text == ("ACCESS_REFUSED - access to exchange 'bob-x' in vhost '/' refused for "
                    "user 'alice'")
    ch = c.channel()
    ch.exchange_declare("alice-ax", "direct", arguments={"alternate-exchange": "alice-x"})
    text = refused(ch.exchange_declare, c, ch, "alice-ax2", "direct",
                   arguments={"alternate-exchange": "bob-x"})
    assert text == ("ACCESS_REFUSED - access to exchange 'bob-x' in vhost '/' refused for "
                    "user 'alice'")
    c.close()


def test_read_on_the_queue_is_checked_before_write_on_the_dlx(restartable_broker):
    seed = Seed().user("cfg", "pw").permit("cfg", "/", ".*", "^$", "^$")
    b = seeded_broker(restartable_broker, seed)
    c = connect(b, "cfg", "pw")
    ch = c.channel()
    text = refused(ch.queue_declare, c, ch, "dq", arguments={"x-dead-letter-exchange": "dlx"})
    assert text == "ACCESS_REFUSED - access to queue 'dq' in vhost '/' refused for user 'cfg'"
    ch = c.channel()
    text = refused(ch.exchange_declare, c, ch, "ex1", "direct",
                   arguments={"alternate-exchange": "ae"})
    assert text == "ACCESS_REFUSED - access to exchange 'ex1' in vhost '/' refused for user 'cfg'"
    c.close()
