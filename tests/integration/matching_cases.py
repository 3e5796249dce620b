"""The topic and headers matching cases of tests/data/{topic,headers}_cases.json, shared with the
unit tests (tests/unit/topic_matcher_test.cc, headers_matcher_test.cc) so that the two suites
cannot drift. The file formats are described in the files' "about" entries."""

import json
import os

from rawamqp import Typed

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "data")

# The one-letter AMQP types a JSON object {"$<letter>": value} may name (RabbitMQ's set).
_TYPED = set("bBsuIilfdSxTDF")


def _load(name):
    with open(os.path.join(DATA_DIR, name), encoding="utf-8") as f:
        data = json.load(f)
    cases = data["cases"]
    assert cases, "no cases in %s" % name
    return cases


def topic_cases():
    """[(pattern, [matching keys], [non-matching keys])]"""
    out = []
    seen = set()
    for case in _load("topic_cases.json"):
        pattern = case["pattern"]
        assert pattern not in seen, "pattern %r listed twice" % pattern
        seen.add(pattern)
        match, no_match = list(case["match"]), list(case["no_match"])
        assert not set(match) & set(no_match), pattern
        out.append((pattern, match, no_match))
    return out


def typed(value):
    """A JSON value of headers_cases.json -> rawamqp.Typed (the exact AMQP field type)."""
    if value is None:
        return Typed("V", None)
    if isinstance(value, bool):
        return Typed("t", value)
    if isinstance(value, int):
        assert -2 ** 31 <= value < 2 ** 31, "a plain integer is an int32: %r" % value
        return Typed("I", value)
    if isinstance(value, float):
        return Typed("d", value)
    if isinstance(value, str):
        return Typed("S", value)
    if isinstance(value, list):
        return Typed("A", [typed(v) for v in value])
    assert isinstance(value, dict) and len(value) == 1, value
    (key, inner), = value.items()
    assert len(key) == 2 and key[0] == "$" and key[1] in _TYPED, value
    code = key[1]
    if code == "F":
        return Typed("F", table(inner))
    if code == "D":
        scale, unscaled = inner
        return Typed("D", (scale, unscaled))
    if code in "fd":
        return Typed(code, float(inner))
    return Typed(code, inner)


def table(obj):
    """A JSON object -> list of (key, Typed) pairs, in file order (rawamqp.table() input)."""
    assert isinstance(obj, dict), obj
    return [(k, typed(v)) for k, v in obj.items()]


def headers_cases():
    """[{"name", "binding": [(key, Typed)], "match": [table or None], "no_match": [...]}];
    a None header table means a message without the headers property."""
    out = []
    names = set()
    for case in _load("headers_cases.json"):
        name = case["name"]
        assert name not in names, "case %r listed twice" % name
        names.add(name)
        out.append({
            "name": name,
            "binding": table(case["binding"]),
            "match": [None if h is None else table(h) for h in case["match"]],
            "no_match": [None if h is None else table(h) for h in case["no_match"]],
        })
    return out
