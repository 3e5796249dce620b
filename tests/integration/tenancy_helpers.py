"""Seeding users, vhosts and permissions for the multi-tenancy tests.

Until warrenctl exists, tests put them straight into a stopped broker's metadata.db (schema in
src/store/metadata_store.h): start the broker once (it creates the schema and the default user),
stop it, seed, start it again. That restart also proves the rows are restored at start.
"""

import base64
import hashlib
import os
import re
import sqlite3

import pika

import amqp_helpers


def password_hash(password):
    """RabbitMQ's rabbit_password_hashing_sha256 format."""
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


class Seed(object):
    def __init__(self):
        self.users, self.vhosts, self.permissions = [], [], []

    def user(self, name, password, tags="", raw_hash=None):
        self.users.append((name, password_hash(password) if raw_hash is None else raw_hash, tags))
        return self

    def vhost(self, name, max_connections=-1, max_queues=-1):
        self.vhosts.append((name, max_connections, max_queues))
        return self

    def permit(self, user, vhost, configure, write, read):
        self.permissions.append((user, vhost, configure, write, read))
        return self


def seeded_broker(restartable_broker, seed):
    """Starts a broker, stops it, writes `seed` into its store, and starts it again."""
    restartable_broker.start()
    restartable_broker.stop()
    db = sqlite3.connect(os.path.join(restartable_broker.data_dir, "metadata.db"))
    with db:
        db.executemany("INSERT INTO users VALUES (?, ?, ?)", seed.users)
        db.executemany("INSERT INTO vhosts VALUES (?, ?, ?)", seed.vhosts)
        db.executemany("INSERT OR REPLACE INTO permissions VALUES (?, ?, ?, ?, ?)",
                       seed.permissions)
    db.close()
    return restartable_broker.start()


def connect(broker, user, password, vhost="/"):
    return pika.BlockingConnection(amqp_helpers.params(
        broker.port, credentials=pika.PlainCredentials(user, password), virtual_host=vhost))


def open_refused(broker, user, password, vhost="/"):
    """The (code, text) with which connection.open (or the login) is refused."""
    try:
        c = connect(broker, user, password, vhost)
    except pika.exceptions.ConnectionClosedByBroker as e:
        return e.reply_code, e.reply_text
    except pika.exceptions.AMQPConnectionError as e:
        # pika wraps the connection.close in its workflow errors; its text keeps "(code) 'text'".
        m = re.search(r"\((\d+)\) (['\"])(.*)\2", str(e))
        assert m, str(e)
        return int(m.group(1)), m.group(3)
    c.close()
    raise AssertionError("connection was opened")
