"""warren-plugins (and the rabbitmq-plugins link): list, enable, disable and set the plugins by
RabbitMQ's names; DATA_DIR/enabled_plugins keeps the state; a change reaches the running broker
(listeners open and close) or, offline, the next start. Output lines as rabbitmq-plugins 3.10.8
prints them."""

import os
import socket
import subprocess

import pytest

import amqp_helpers
import mqtt_helpers
from mqtt_helpers import Client
from test_warrenctl import WARRENCTL

PLUGINS = os.path.join(os.path.dirname(WARRENCTL), "warren-plugins")
RABBITMQ_PLUGINS = os.path.join(os.path.dirname(WARRENCTL), "rabbitmq-plugins")

# Free ports for every plugin listener, given by the config file (not by flags, which would
# force them on whatever the plugins say).
CONF = """management.tcp.port = 0
prometheus.tcp.port = 0
mqtt.listeners.tcp.default = 127.0.0.1:0
stomp.listeners.tcp.default = 127.0.0.1:0
web_mqtt.tcp.port = 0
web_stomp.tcp.port = 0
"""


def plugins(data_dir, *args, binary=PLUGINS):
    p = subprocess.run([binary, "--data-dir", data_dir] + list(args), capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def listening(b, what):
    return [l for l in b.log if ("%s listening on" % what) in l]


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / "rabbitmq.conf"
    path.write_text(CONF)
    return str(path)


@pytest.fixture
def server(warren_factory, conf):
    return warren_factory("--config", conf, plugin_ports=False)


def test_defaults_enable_management_and_prometheus_only(server):
    code, out, err = plugins(server.data_dir, "list")
    assert code == 0, err
    assert out.splitlines()[:4] == [
        'Listing plugins with pattern ".*" ...',
        " Configured: E = explicitly enabled; e = implicitly enabled",
        " | Status: * = running on " + out.splitlines()[2].split("running on ")[1],
        " |/"]
    rows = {line[5:].split()[0]: line[:4] for line in out.splitlines()[4:]}
    assert rows["rabbitmq_management"] == "[E*]"
    assert rows["rabbitmq_management_agent"] == "[e*]"
    assert rows["rabbitmq_prometheus"] == "[E*]"
    assert rows["rabbitmq_mqtt"] == "[  ]"
    assert rows["rabbitmq_stomp"] == "[  ]"
    assert not listening(server, "MQTT")
    assert listening(server, "management HTTP API")


def test_enable_and_disable_on_the_running_broker(server):
    code, out, err = plugins(server.data_dir, "enable", "rabbitmq_web_mqtt")
    assert code == 0, err
    assert out.splitlines()[:2] == ["Enabling plugins on node " + out.split("node ")[1].split(":")[0] + ":",
                                    "rabbitmq_web_mqtt"]
    assert "The following plugins have been enabled:\n  rabbitmq_mqtt\n  rabbitmq_web_mqtt\n" in out
    assert out.rstrip().endswith("started 2 plugins.")
    with open(os.path.join(server.data_dir, "enabled_plugins")) as f:
        assert f.read() == "[rabbitmq_management,rabbitmq_prometheus,rabbitmq_web_mqtt].\n"
    amqp_helpers.wait_until(lambda: listening(server, "MQTT"))
    port = mqtt_helpers.mqtt_port(server)
    c = Client(port)
    assert c.connect() == 0
    code, out, err = plugins(server.data_dir, "list", "-E", "-m")
    assert out.split() == ["rabbitmq_management", "rabbitmq_prometheus", "rabbitmq_web_mqtt"]
    # Disabling MQTT disables what needs it (web MQTT) and closes the MQTT connections.
    code, out, err = plugins(server.data_dir, "disable", "rabbitmq_mqtt")
    assert code == 0, err
    assert "The following plugins have been disabled:\n  rabbitmq_mqtt\n  rabbitmq_web_mqtt\n" in out
    assert c.disconnected.wait(10), "the MQTT connection stayed open"
    c.disconnect()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    with open(os.path.join(server.data_dir, "enabled_plugins")) as f:
        assert f.read() == "[rabbitmq_management,rabbitmq_prometheus].\n"


def test_unknown_plugin_is_an_error_and_changes_nothing(server):
    code, out, err = plugins(server.data_dir, "enable", "rabbitmq_mqtt", "rabbitmq_shovel_x")
    assert code == 70
    assert err == "Error:\n{:plugins_not_found, [:rabbitmq_shovel_x]}\n"
    assert not os.path.exists(os.path.join(server.data_dir, "enabled_plugins"))


def test_state_survives_a_restart_and_offline_changes_apply_at_start(restartable_broker, conf):
    b = restartable_broker.start("--config", conf, plugin_ports=False)
    code, out, err = plugins(b.data_dir, "enable", "rabbitmq_stomp", binary=RABBITMQ_PLUGINS)
    assert code == 0, err
    amqp_helpers.wait_until(lambda: listening(b, "STOMP"))
    restartable_broker.stop()
    # Offline: written now, applied at the next start.
    code, out, err = plugins(b.data_dir, "enable", "rabbitmq_mqtt")
    assert code == 0, err
    assert "Offline change; changes will take effect at broker restart." in out
    b = restartable_broker.start("--config", conf, plugin_ports=False)
    amqp_helpers.wait_until(lambda: listening(b, "STOMP") and listening(b, "MQTT"))
    c = Client(mqtt_helpers.mqtt_port(b))
    assert c.connect() == 0
    c.disconnect()


def test_a_port_flag_turns_its_listener_on_whatever_the_plugins_say(warren_factory, conf):
    b = warren_factory("--config", conf, "--mqtt-port", "0", plugin_ports=False)
    amqp_helpers.wait_until(lambda: listening(b, "MQTT"))
    code, out, _ = plugins(b.data_dir, "list", "-e", "-m")
    assert "rabbitmq_mqtt" not in out.split()  # not enabled, yet listening


def test_disabling_management_closes_the_http_api(server):
    from test_management_api import mgmt_port
    port = mgmt_port(server)
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    code, out, err = plugins(server.data_dir, "set", "rabbitmq_prometheus")
    assert code == 0, err
    assert "rabbitmq_management" in out.split("have been disabled:")[1]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
