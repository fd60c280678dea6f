"""scripts/serve_replicas.py: app processes behind nginx, each browser kept on its own.

Starts two real replicas and nginx (deploy/nginx.conf) on loopback, in a temporary folder,
and stops them. Needs Debian's nginx (``scripts/install-test-deps.sh`` installs it).
"""

from __future__ import annotations

import importlib.util
import shutil
import time
import urllib.request
from http.cookies import SimpleCookie

import app_server
import pytest
from app_server import free_port
from support import REPO, missing, wait_until


def serve_replicas():
    spec = importlib.util.spec_from_file_location(
        "serve_replicas", REPO / "scripts" / "serve_replicas.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def front(data_root, tmp_path_factory):
    if shutil.which("nginx") is None:
        missing("nginx is not installed (apt-get install nginx)")
    folder = tmp_path_factory.mktemp("replicas")
    module = serve_replicas()
    with module.replicas(2, free_port(), folder, {"CONVAE_DATA_DIR": str(data_root)}) as (
        url,
        procs,
    ):
        yield url, procs, folder, module


def get(url: str, cookie: str | None = None):
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=20) as r:
        return r.status, r.headers, r.read()


def test_a_first_visit_gets_an_affinity_cookie_and_the_app(front):
    url, *_ = front
    status, headers, body = get(url + "/")
    assert status == 200 and b"<html" in body.lower()
    cookie = SimpleCookie(headers["Set-Cookie"])
    assert len(cookie["convae_replica"].value) == 32
    assert cookie["convae_replica"]["httponly"]
    status, headers, _ = get(url + "/", f"convae_replica={cookie['convae_replica'].value}")
    assert "Set-Cookie" not in headers  # a browser that has one keeps it


def test_each_browser_stays_on_one_replica_and_the_class_is_spread_over_both(front):
    url, procs, folder, module = front
    replica_of = {}
    for i in range(16):
        cookie = f"convae_replica=browser{i}"
        answers = {
            get(url + path, cookie)[1]["X-Convae-Replica"] for path in ("/", "/_stcore/health", "/")
        }
        assert len(answers) == 1, f"browser {i} was sent to {answers}"
        replica_of[i] = answers.pop()
    assert len(set(replica_of.values())) == 2  # 16 browsers, both replicas in use
    assert module.sessions_that_moved(folder / "access.log") == 0
    assert all(p.poll() is None for p in procs)


def test_a_killed_replica_is_started_again_and_the_class_is_served_meanwhile(front):
    url, procs, folder, module = front
    port = int(procs[0].args[procs[0].args.index("--server.port") + 1])
    victim = procs[0]
    victim.kill()  # SIGKILL: nothing of it runs again
    started = time.monotonic()
    # while it is down, every browser is still answered (nginx passes them to the other)
    for i in range(8):
        assert get(url + "/", f"convae_replica=meanwhile{i}")[0] == 200
    assert wait_until(lambda: procs[0] is not victim and procs[0].poll() is None, timeout=60)
    assert wait_until(lambda: app_server.is_up(f"http://127.0.0.1:{port}"), timeout=60)
    assert time.monotonic() - started < 10, "served again within 10 s"
    assert list(folder.glob("replica-0.restart-*.log"))  # the dead one's log is kept
    assert all(get(url + "/", f"convae_replica=after{i}")[0] == 200 for i in range(8))
