"""One convae app process per core behind nginx, on loopback; optionally load-tested.

Streamlit runs every session's script in one interpreter, so one process uses about one
core. This starts ``--replicas`` processes (default: one per core) of ``streamlit run
app.py``, each on its own loopback port, all sharing one ``server.cookieSecret`` and one
machine-wide training limit (``CONVAE_TRAINING_SLOTS``), and nginx in front of them with
session affinity (``deploy/nginx.conf``). Without ``--load`` it serves until Ctrl-C; with
``--load`` it runs ``benchmarks/classroom_load.py`` through nginx with the arguments after
``--load``, prints its report, checks that no session moved between replicas, and stops
everything.

    python scripts/serve_replicas.py                       # serve on 127.0.0.1:8501
    python scripts/serve_replicas.py --load --students 80 --trainers 4 --duration 60

Needs Debian's ``nginx`` (``apt-get install nginx``); runs without root.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import app_server  # scripts/app_server.py: the one way the app is started

REPO = Path(__file__).resolve().parent.parent
NGINX_CONF = REPO / "deploy" / "nginx.conf"


def wait_healthy(url: str, proc: subprocess.Popen, what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not app_server.is_up(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not answer {url}/_stcore/health")
        time.sleep(0.25)


def nginx_config(listen_port: int, replica_ports: list[int], prefix: Path) -> str:
    """deploy/nginx.conf with this run's ports and folder filled in."""
    upstreams = "\n".join(f"        server 127.0.0.1:{p};" for p in replica_ports)
    return (
        NGINX_CONF.read_text()
        .replace("@UPSTREAMS@", upstreams)
        .replace("@LISTEN@", f"127.0.0.1:{listen_port}")
        .replace("@PREFIX@", str(prefix))
    )


@contextlib.contextmanager
def replicas(
    n: int, port: int, folder: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """``n`` app processes and nginx on ``127.0.0.1:port``; yields (nginx URL, replicas).
    Everything is stopped on the way out; logs stay in ``folder``."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit("nginx is not installed (apt-get install nginx)")
    slots = folder / "training-slots"
    shared = {
        # every replica must sign and check the same cookies (XSRF, uploads)
        "STREAMLIT_SERVER_COOKIE_SECRET": secrets.token_hex(32),
        "CONVAE_TRAINING_SLOTS": str(slots),
        **(env or {}),
    }
    procs: list[subprocess.Popen] = []
    try:
        started = []
        for i in range(n):
            try:
                replica = app_server.start(shared, folder / f"replica-{i}.log", timeout_s=120)
            except app_server.ServerError as e:
                raise SystemExit(f"replica {i} did not start: {e}") from None
            started.append(replica)
            procs.append(replica.proc)
        ports = [r.port for r in started]
        conf = folder / "nginx.conf"
        conf.write_text(nginx_config(port, ports, folder))
        front = subprocess.Popen(
            [nginx, "-p", str(folder), "-c", str(conf), "-g", "daemon off;"],
            stdout=open(folder / "nginx.out", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        procs.append(front)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, front, f"nginx (see {folder}/error.log)")
        yield url, procs[:-1]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    load_args: list[str] | None = None
    if "--load" in argv:
        at = argv.index("--load")
        argv, load_args = argv[:at], argv[at + 1 :]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--replicas", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--port", type=int, default=8501, help="nginx's loopback port")
    ap.add_argument("--logs", type=Path, help="keep logs here (default: a temporary folder)")
    args = ap.parse_args(argv)
    folder = args.logs or Path(tempfile.mkdtemp(prefix="convae-replicas-"))
    folder.mkdir(parents=True, exist_ok=True)
    with replicas(args.replicas, args.port, folder) as (url, procs):
        print(f"{args.replicas} replica(s) behind {url} (logs in {folder})", flush=True)
        if load_args is None:
            with contextlib.suppress(KeyboardInterrupt):
                while all(p.poll() is None for p in procs):
                    time.sleep(1)
            return 0
        pids = [a for p in procs for a in ("--server-pid", str(p.pid))]
        cmd = [sys.executable, str(REPO / "benchmarks" / "classroom_load.py"), "--url", url]
        result = subprocess.run([*cmd, *pids, *load_args], cwd=REPO)
        moved = sessions_that_moved(folder / "access.log")
        print(json.dumps({"sessions_that_changed_replica": moved}))
        return result.returncode or (1 if moved else 0)


def sessions_that_moved(access_log: Path) -> int:
    """Affinity cookies whose requests reached more than one replica (nginx's log)."""
    seen: dict[str, set[str]] = {}
    for line in access_log.read_text().splitlines():
        parts = line.rsplit(" ", 2)
        if len(parts) == 3 and parts[2] not in ("", "-"):
            seen.setdefault(parts[2], set()).add(parts[1])
    return sum(1 for upstreams in seen.values() if len(upstreams) > 1)


if __name__ == "__main__":
    raise SystemExit(main())
