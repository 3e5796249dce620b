"""AMQP over TLS (amqps) with pika's SSLOptions: certificates the test generates with the openssl
CLI (a CA, the server's, clients' signed by the CA, a self-signed one); PLAIN over TLS, client
certificate verification (verify_peer, fail_if_no_peer_cert), the EXTERNAL mechanism (the
certificate's CN names the user), and bad peers failing alone: plaintext on the TLS port, a
certificate from another CA, a client that never starts the handshake."""

import re
import socket
import ssl
import subprocess
import time

import pika
import pytest

from amqp_helpers import wait_until


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=cwd, timeout=60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=Warren test CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    (d / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")

    def signed(name, cn, ext=None):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn, "-keyout",
                name + ".key", "-out", name + ".csr", cwd=d)
        args = ["x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-out", name + ".pem"]
        if ext:
            args += ["-extfile", ext]
        openssl(*args, cwd=d)

    signed("server", "localhost", "server.ext")
    signed("client", "guest")
    signed("stranger", "nosuchuser")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=guest",
            "-keyout", "selfsigned.key", "-out", "selfsigned.pem", cwd=d)
    return d


def tls_args(certs, *extra):
    return ["--amqps-port", "0", "--ssl-certfile", str(certs / "server.pem"),
            "--ssl-keyfile", str(certs / "server.key"), "--ssl-cacertfile",
            str(certs / "ca.pem")] + list(extra)


def amqps_port(broker):
    """From the log line "AMQPS listening on 127.0.0.1:N", logged just after the AMQP one."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for line in list(broker.log):
            m = re.search(r"AMQPS listening on 127\.0\.0\.1:(\d+)", line)
            if m:
                return int(m.group(1))
        time.sleep(0.02)
    raise AssertionError("no AMQPS listening line in the log")


def client_context(certs, cert=None):
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(certs / (cert + ".pem")), str(certs / (cert + ".key")))
    return ctx


def connect_tls(broker, certs, cert=None, credentials=None):
    params = pika.ConnectionParameters(
        host="127.0.0.1", port=amqps_port(broker),
        ssl_options=pika.SSLOptions(client_context(certs, cert), "localhost"),
        credentials=credentials or pika.PlainCredentials("guest", "guest"),
        connection_attempts=1, socket_timeout=10)
    return pika.BlockingConnection(params)


def round_trip(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.confirm_delivery()
    ch.basic_publish("", q, b"over tls")
    method, _, body = ch.basic_get(q, auto_ack=True)
    assert body == b"over tls"


def test_plain_login_over_tls(warren_factory, certs):
    b = warren_factory(*tls_args(certs))
    c = connect_tls(b, certs)
    round_trip(c)
    c.close()
    # The plain listener keeps working beside it.
    c = pika.BlockingConnection(pika.ConnectionParameters(host=b.host, port=b.port))
    round_trip(c)
    c.close()


def test_tls_connection_is_listed_as_ssl(warren_factory, certs):
    from test_warrenctl import ctl
    b = warren_factory(*tls_args(certs))
    c = connect_tls(b, certs)
    rc, out, _ = ctl(b, "-q", "list_connections", "user", "ssl", "auth_mechanism")
    assert out.splitlines()[1:] == ["guest\ttrue\tPLAIN"]
    c.close()


def test_verify_peer_and_fail_if_no_peer_cert(warren_factory, certs):
    b = warren_factory(*tls_args(certs, "--ssl-verify", "verify_peer",
                                 "--ssl-fail-if-no-peer-cert", "true"))
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        connect_tls(b, certs)  # no certificate
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        connect_tls(b, certs, "selfsigned")  # not signed by the CA
    c = connect_tls(b, certs, "client")
    round_trip(c)
    c.close()
    wait_until(lambda: any("TLS handshake failed" in l for l in b.log))


def test_external_mechanism_uses_the_certificate_cn(warren_factory, certs):
    b = warren_factory(*tls_args(certs, "--ssl-verify", "verify_peer"))
    c = connect_tls(b, certs, "client", credentials=pika.credentials.ExternalCredentials())
    round_trip(c)
    c.close()
    # A certificate whose CN names no user: the login refusal of a wrong password.
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        connect_tls(b, certs, "stranger", credentials=pika.credentials.ExternalCredentials())
    # verify_peer without fail_if_no_peer_cert: a client without a certificate may use PLAIN,
    # and is not offered EXTERNAL.
    c = connect_tls(b, certs)
    round_trip(c)
    c.close()


def start_mechanisms(port, context=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = context.wrap_socket(raw, server_hostname="localhost") if context else raw
    s.sendall(b"AMQP\x00\x00\x09\x01")
    data = b""
    while b"en_US" not in data:
        chunk = s.recv(4096)
        assert chunk
        data += chunk
    s.close()
    return data


def test_external_is_offered_only_with_a_verified_certificate(warren_factory, certs):
    b = warren_factory(*tls_args(certs, "--ssl-verify", "verify_peer"))
    assert b"PLAIN AMQPLAIN EXTERNAL" in start_mechanisms(amqps_port(b),
                                                          client_context(certs, "client"))
    offered = start_mechanisms(amqps_port(b), client_context(certs))
    assert b"PLAIN AMQPLAIN" in offered and b"EXTERNAL" not in offered
    offered = start_mechanisms(b.port)
    assert b"EXTERNAL" not in offered


def test_plaintext_on_the_tls_port_fails_alone(warren_factory, certs):
    b = warren_factory(*tls_args(certs))
    keep = pika.BlockingConnection(pika.ConnectionParameters(host=b.host, port=b.port))
    s = socket.create_connection(("127.0.0.1", amqps_port(b)), timeout=10)
    s.sendall(b"AMQP\x00\x00\x09\x01")
    s.settimeout(10)
    try:
        while s.recv(4096):
            pass
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    round_trip(keep)
    keep.close()
    c = connect_tls(b, certs)
    c.close()


def test_a_silent_client_is_dropped_after_the_handshake_timeout(warren_factory, certs):
    b = warren_factory(*tls_args(certs, "--ssl-handshake-timeout", "300"))
    s = socket.create_connection(("127.0.0.1", amqps_port(b)), timeout=10)
    start = time.monotonic()
    s.settimeout(10)
    try:
        assert s.recv(4096) == b""
    except ConnectionResetError:
        pass
    assert time.monotonic() - start < 8
    s.close()
    wait_until(lambda: any("TLS handshake timed out" in l for l in b.log))
    c = connect_tls(b, certs)
    round_trip(c)
    c.close()


def test_bad_certificate_file_stops_the_start(certs, tmp_path):
    import warren_process
    with pytest.raises(warren_process.StartupError) as e:
        warren_process.start(["--amqps-port", "0", "--ssl-certfile", str(tmp_path / "missing.pem"),
                              "--ssl-keyfile", str(certs / "server.key")], startup_timeout=20)
    assert "missing.pem" in str(e.value)


def test_certificate_expiration_health_check(warren_factory, certs):
    from test_management_api import call
    b = warren_factory(*tls_args(certs))
    # The test certificates are valid for two days.
    assert call(b, "GET", "/api/health/checks/certificate-expiration/1/days")[:2] == (
        200, {"status": "ok"})
    status, body, _ = call(b, "GET", "/api/health/checks/certificate-expiration/1/weeks")
    assert (status, body["status"], body["reason"]) == (503, "failed", "Certificates expiring")
    [listener] = body["expired"]
    assert (listener["protocol"], listener["port"]) == ("amqp/ssl", amqps_port(b))
    assert listener["certfile"] == str(certs / "server.pem")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d{1,2}:\d\d:\d\d", listener["certfile_expires_on"][0])
    assert len(listener["cacertfile_expires_on"]) == 1
    status, body, _ = call(b, "GET", "/api/health/checks/protocol-listener/amqps")
    assert status == 200 and "amqp/ssl" in body["protocols"]


# ---- MQTT and STOMP over TLS (mqtt.listeners.ssl / stomp.listeners.ssl, here --mqtts-port and
# --stomps-port), with the same ssl_options certificate as amqps.


def test_mqtt_over_tls_with_paho(warren_factory, certs):
    from mqtt_helpers import Client
    b = warren_factory(*tls_args(certs, "--mqtts-port", "0"))
    port = b.listener_port("MQTTS")
    sub, pub = Client(port), Client(b.listener_port("MQTT"))
    sub.c.tls_set(ca_certs=str(certs / "ca.pem"))
    try:
        assert sub.connect() == 0
        assert sub.subscribe("tls/+", 1) == [1]
        assert pub.connect() == 0
        pub.publish("tls/x", b"encrypted both ways", qos=1)
        [m] = sub.expect(1)
        assert (m.topic, m.payload) == ("tls/x", b"encrypted both ways")
    finally:
        sub.disconnect()
        pub.disconnect()
    # Plain MQTT on the TLS port gets no CONNACK: the handshake fails and the socket closes.
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
    s.settimeout(10)
    assert s.recv(4096)[:1] != b"\x20"
    s.close()


def test_mqtt_ssl_cert_login_uses_the_certificate_cn(warren_factory, certs, tmp_path):
    # mqtt.ssl_cert_login: a CONNECT without credentials over TLS logs in as the CN of the
    # client's verified certificate ("guest" here); credentials, when given, still come first.
    from mqtt_helpers import Client
    conf = tmp_path / "rabbitmq.conf"
    conf.write_text("mqtt.ssl_cert_login = true\n")
    b = warren_factory("--config", str(conf),
                       *tls_args(certs, "--mqtts-port", "0", "--ssl-verify", "verify_peer"))
    port = b.listener_port("MQTTS")

    def login(cert, **credentials):
        c = Client(port, **credentials)
        if cert:
            c.c.tls_set(ca_certs=str(certs / "ca.pem"), certfile=str(certs / (cert + ".pem")),
                        keyfile=str(certs / (cert + ".key")))
        else:
            c.c.tls_set(ca_certs=str(certs / "ca.pem"))
        rc = c.connect()
        c.disconnect()
        return rc

    assert login("client", username=None, password=None) == 0
    assert login("stranger", username=None, password=None) == 4  # no user of that name
    assert login(None, username=None, password=None) == 4  # no certificate, no anonymous
    assert login("stranger", username="guest", password="guest") == 0
    assert login("client", username="guest", password="wrong") == 4
    # mqtt_default_vhosts maps the certificate's name to a vhost (before the port mapping).
    from test_warrenctl import ctl
    for args in (("add_vhost", "certs"),
                 ("set_permissions", "-p", "certs", "guest", ".*", ".*", ".*"),
                 ("set_global_parameter", "mqtt_default_vhosts", '{"guest": "certs"}'),
                 ("set_global_parameter", "mqtt_port_to_vhost_mapping", '{"%d": "nowhere"}' % port)):
        code, _, err = ctl(b, *args)
        assert code == 0, err
    c = Client(port, client_id="by-cert", username=None, password=None)
    c.c.tls_set(ca_certs=str(certs / "ca.pem"), certfile=str(certs / "client.pem"),
                keyfile=str(certs / "client.key"))
    assert c.connect() == 0
    code, out, _ = ctl(b, "list_mqtt_connections", "client_id", "vhost", "-q")
    c.disconnect()
    assert "by-cert\tcerts" in out.splitlines()
    # Without mqtt.ssl_cert_login the certificate is no login.
    plain = warren_factory(*tls_args(certs, "--mqtts-port", "0", "--ssl-verify", "verify_peer"))
    port = plain.listener_port("MQTTS")
    assert login("client", username=None, password=None) == 4


def test_stomp_over_tls(warren_factory, certs):
    b = warren_factory(*tls_args(certs, "--stomps-port", "0"))
    raw = socket.create_connection(("127.0.0.1", b.listener_port("STOMPS")), timeout=10)
    s = client_context(certs).wrap_socket(raw, server_hostname="localhost")
    try:
        s.sendall(b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\x00")
        assert s.recv(4096).startswith(b"CONNECTED\n")
    finally:
        s.close()
    status, body, _ = __import__("test_management_api").call(b, "GET", "/api/overview")
    protocols = {l["protocol"] for l in body["listeners"]}
    assert {"mqtt", "stomp", "stomp/ssl", "amqp/ssl"} <= protocols
