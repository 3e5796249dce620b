"""Global runtime parameters (RabbitMQ 3.10's rabbitmqctl set_global_parameter,
clear_global_parameter, list_global_parameters; /api/global-parameters; "global_parameters" in
definitions) end to end: warrenctl, the management API, definitions export and import, and a
restart.

Expected texts and outputs were taken from RabbitMQ 3.10.8 with rabbitmq_management: rabbitmqctl's
outputs (data/rabbitmqctl-3.10.8-global-parameters-outputs.txt, from a node whose
internal_cluster_id had been cleared, since Warren keeps none) and the API's statuses and bodies.
Where Warren differs on purpose: it lists by name where RabbitMQ lists in no particular order, and
it keeps no internal_cluster_id and stores no cluster_name until one is set."""

import json
import os
import shlex

import pytest

import warren_process
from test_management_api import call
from test_warrenctl import ctl
from test_warrenctl_tenancy import golden, normalized

NOT_FOUND = {"error": "Object Not Found", "reason": "Not Found"}


def ok(result):
    rc, out, err = result
    assert rc == 0, (out, err)
    return out


@pytest.fixture
def server(warren_factory):
    return warren_factory()


def comparable(cmd, out):
    """RabbitMQ lists in no particular order, Warren by name: table lines compare as sets, and a
    JSON listing as its rows sorted by name."""
    if "--formatter json" in cmd and out.startswith("["):
        return sorted(json.loads(out), key=lambda r: r["name"])
    return normalized(cmd, out)


# ---- warrenctl

def test_warrenctl_as_rabbitmqctl(server):
    """Replays rabbitmqctl 3.10.8's captured outputs; a usage error is compared by its exit code
    and first line (Warren's usage line names its own program and --data-dir)."""
    path = os.path.join(warren_process.HERE, "data",
                        "rabbitmqctl-3.10.8-global-parameters-outputs.txt")
    for r in golden(path):
        rc, out, err = ctl(server, *shlex.split(r["cmd"]))
        if r["rc"] == 64:
            assert (rc, out, err.splitlines()[:1]) == (
                64, r["stdout"], r["stderr"].splitlines()[:1]), r["cmd"]
            continue
        assert (rc, comparable(r["cmd"], out), err) == (
            r["rc"], comparable(r["cmd"], r["stdout"]), r["stderr"]), r["cmd"]


def test_warrenctl_lists_by_name_and_replaces(server):
    ok(ctl(server, "set_global_parameter", "b", '{"y": 1, "x": [true, null]}'))
    ok(ctl(server, "set_global_parameter", "a", '"first"'))
    ok(ctl(server, "set_global_parameter", "a", "2.5"))
    assert ok(ctl(server, "list_global_parameters", "-q")).splitlines() == [
        "name\tvalue", "a\t2.5", 'b\t{"x":[true,null],"y":1}']
    # The HTTP API sees the same values, parsed.
    assert call(server, "GET", "/api/global-parameters")[:2] == (200, [
        {"name": "a", "value": 2.5}, {"name": "b", "value": {"x": [True, None], "y": 1}}])


# ---- management API

def test_management_api(server):
    """Statuses and bodies as RabbitMQ 3.10.8's rabbit_mgmt_wm_global_parameter(s)."""
    assert call(server, "GET", "/api/global-parameters")[:2] == (200, [])
    assert call(server, "GET", "/api/global-parameters/nope")[:2] == (404, NOT_FOUND)
    # PUT: 201 when new, 204 when replaced; the path names it (a "name" in the body is ignored).
    assert call(server, "PUT", "/api/global-parameters/p1",
                {"value": {"b": 2, "a": "x"}})[:2] == (201, None)
    assert call(server, "PUT", "/api/global-parameters/p1", {"value": {"b": 3}})[:2] == (204, None)
    assert call(server, "PUT", "/api/global-parameters/p2",
                {"name": "other", "value": 7})[:2] == (201, None)
    assert call(server, "PUT", "/api/global-parameters/p6", {"value": None})[:2] == (201, None)
    assert call(server, "GET", "/api/global-parameters/other")[:2] == (404, NOT_FOUND)
    status, body, _ = call(server, "GET", "/api/global-parameters/p1")
    assert (status, body) == (200, {"value": {"b": 3}, "name": "p1"})
    assert list(body) == ["value", "name"]
    assert call(server, "GET", "/api/global-parameters")[:2] == (200, [
        {"name": "p1", "value": {"b": 3}}, {"name": "p2", "value": 7},
        {"name": "p6", "value": None}])
    # Errors.
    assert call(server, "PUT", "/api/global-parameters/p3", {"name": "p3"})[:2] == (
        400, {"error": "bad_request", "reason": "[{key_missing,value}]"})
    for body in (b"{oops", b"[1]"):
        assert call(server, "PUT", "/api/global-parameters/p4", body)[:2] == (
            400, {"error": "bad_request", "reason": "not_json"})
    assert call(server, "POST", "/api/global-parameters/p2")[0] == 405
    assert call(server, "PUT", "/api/global-parameters", {"value": 1})[0] == 405
    # DELETE: 204, then 404.
    assert call(server, "DELETE", "/api/global-parameters/p2")[:2] == (204, None)
    assert call(server, "DELETE", "/api/global-parameters/p2")[:2] == (404, NOT_FOUND)
    # warrenctl sees what the API set.
    assert ok(ctl(server, "list_global_parameters", "-q")).splitlines() == [
        "name\tvalue", 'p1\t{"b":3}', "p6\tnull"]
    # Policymakers and administrators only.
    denied = (401, {"error": "not_authorised", "reason": "User not authorised to access object"})
    for tag in ("monitoring", "management"):
        ok(ctl(server, "add_user", tag, "pw"))
        ok(ctl(server, "set_user_tags", tag, tag))
        assert call(server, "GET", "/api/global-parameters", user=tag, password="pw")[:2] == denied
        assert call(server, "PUT", "/api/global-parameters/x", {"value": 1}, user=tag,
                    password="pw")[:2] == denied
    ok(ctl(server, "add_user", "pm", "pw"))
    ok(ctl(server, "set_user_tags", "pm", "policymaker"))
    assert call(server, "PUT", "/api/global-parameters/x", {"value": 1}, user="pm",
                password="pw")[:2] == (201, None)
    assert call(server, "GET", "/api/global-parameters/x", user="pm", password="pw")[:2] == (
        200, {"value": 1, "name": "x"})


# ---- definitions and restart

def test_definitions_round_trip_and_restart(restartable_broker, warren_factory, tmp_path):
    b = restartable_broker.start()
    # Nothing by default: no internal_cluster_id, and no cluster_name until one is set.
    assert call(b, "GET", "/api/definitions")[1]["global_parameters"] == []
    ok(ctl(b, "set_global_parameter", "mqtt_port_to_vhost_mapping", '{"1883": "/", "8883": "v"}'))
    ok(ctl(b, "set_global_parameter", "cluster_name", '"c1"'))
    ok(ctl(b, "set_global_parameter", "f", "[1.5, 1e3]"))
    expected = [
        {"name": "cluster_name", "value": "c1"},
        {"name": "f", "value": [1.5, 1000.0]},
        {"name": "mqtt_port_to_vhost_mapping", "value": {"1883": "/", "8883": "v"}}]
    # Kept in the metadata store: still there after a clean restart and after a kill.
    b = restartable_broker.restart()
    assert call(b, "GET", "/api/global-parameters")[1] == expected
    b = restartable_broker.restart(kill=True)
    assert ok(ctl(b, "list_global_parameters", "-q")).splitlines() == [
        "name\tvalue", 'cluster_name\t"c1"', "f\t[1.5,1.0e3]",
        'mqtt_port_to_vhost_mapping\t{"1883":"/","8883":"v"}']
    # Exported (warrenctl and the API alike) as RabbitMQ's objects {"name", "value"}.
    path = str(tmp_path / "defs.json")
    ok(ctl(b, "export_definitions", path))
    assert json.load(open(path))["global_parameters"] == expected
    assert call(b, "GET", "/api/definitions")[1]["global_parameters"] == expected
    # Imported elsewhere: through warrenctl, and through the API (replacing what is set).
    other = warren_factory()
    ok(ctl(other, "import_definitions", path))
    assert call(other, "GET", "/api/global-parameters")[1] == expected
    third = warren_factory()
    ok(ctl(third, "set_global_parameter", "f", '"old"'))
    ok(ctl(third, "set_global_parameter", "kept", "1"))
    defs = json.load(open(path))
    assert call(third, "POST", "/api/definitions", defs)[0] in (201, 204)
    assert call(third, "GET", "/api/global-parameters")[1] == sorted(
        expected + [{"name": "kept", "value": 1}], key=lambda p: p["name"])
    # A RabbitMQ export's extras (internal_cluster_id) import as ordinary parameters; one
    # without a value is refused.
    assert call(third, "POST", "/api/definitions", {"global_parameters": [
        {"name": "internal_cluster_id", "value": "rabbitmq-cluster-id-x"}]})[0] in (201, 204)
    assert call(third, "GET", "/api/global-parameters/internal_cluster_id")[1] == {
        "value": "rabbitmq-cluster-id-x", "name": "internal_cluster_id"}
    status, body, _ = call(third, "POST", "/api/definitions",
                           {"global_parameters": [{"name": "novalue"}]})
    assert (status, body) == (400, {"error": "bad_request",
                                    "reason": "global parameter 'novalue' has no value"})
    # Clearing removes it from the store too.
    ok(ctl(b, "clear_global_parameter", "f"))
    b = restartable_broker.restart()
    assert [p["name"] for p in call(b, "GET", "/api/global-parameters")[1]] == [
        "cluster_name", "mqtt_port_to_vhost_mapping"]
