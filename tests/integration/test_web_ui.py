"""The management web UI in a real browser: Debian's chromium driven by playwright-core
(tests/ui/run.mjs) against a broker this test starts. Screenshots of every page go to
tests/artifacts/ui/. Needs the UI built (scripts/build.sh builds www/ and installs tests/ui)."""

import os
import shutil
import subprocess

import pika
import pytest

from test_management_api import call, mgmt_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UI_TEST = os.path.join(ROOT, "tests", "ui")
ARTIFACTS = os.path.join(ROOT, "tests", "artifacts", "ui")


def test_static_files_served(warren_factory):
    server = warren_factory()
    import urllib.request
    import urllib.error
    base = "http://127.0.0.1:%d" % mgmt_port(server)
    with urllib.request.urlopen(base + "/") as r:
        assert r.status == 200
        assert r.headers["content-type"].startswith("text/html")
        assert b"app.js" in r.read()
    with urllib.request.urlopen(base + "/app.js") as r:
        assert r.headers["content-type"].startswith("text/javascript")
    for path in ("/missing.js", "/../CMakeLists.txt", "/%2e%2e/CMakeLists.txt", "//etc/passwd",
                 "/" + os.path.join(ROOT, "CMakeLists.txt")):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + path)
        assert e.value.code in (400, 404)
    # The API is still the API, with its own 404s.
    assert call(server, "GET", "/api/nope")[0] == 404


def ui_driver_installed():
    """tests/ui's playwright-core, installed from its lock file when scripts/build.sh did not
    (it does so only with WARREN_WITH_BROWSER=1)."""
    if os.path.isdir(os.path.join(UI_TEST, "node_modules", "playwright-core")):
        return True
    npm = shutil.which("npm")
    if npm is None:
        return False
    result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                            cwd=UI_TEST, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, "npm ci in tests/ui failed:\n" + result.stdout + result.stderr
    return True


def test_browser_session(warren_factory):
    node = shutil.which("node")
    if node is None or not os.path.exists("/usr/bin/chromium"):
        pytest.skip("node or /usr/bin/chromium missing (WARREN_WITH_BROWSER=1 scripts/install-deps.sh)")
    if not ui_driver_installed():
        pytest.skip("npm missing: cannot install tests/ui (run scripts/build.sh)")
    server = warren_factory("--collect-statistics-interval", "500")
    # A client to show on the connections and channels pages.
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", server.port))
    conn.channel()
    try:
        result = subprocess.run(
            [node, os.path.join(UI_TEST, "run.mjs"), "--url",
             "http://127.0.0.1:%d/" % mgmt_port(server), "--out", ARTIFACTS],
            cwd=UI_TEST, capture_output=True, text=True, timeout=240)
    finally:
        conn.close()
    print(result.stdout)
    print(result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    for page in ("overview", "connections", "channels", "exchanges", "queues", "queue-detail",
                 "admin"):
        assert os.path.getsize(os.path.join(ARTIFACTS, page + ".png")) > 10000
    assert call(server, "GET", "/api/queues/%2F/ui-ttl-queue")[0] == 404
