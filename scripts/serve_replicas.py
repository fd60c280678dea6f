"""One convae app process per core behind nginx, for a class; optionally load-tested.

Streamlit runs every session's script in one interpreter, so one process uses about one
core. This starts ``--replicas`` processes (default: one per core) of ``streamlit run
app.py``, each on its own loopback port, all sharing one ``server.cookieSecret`` and one
machine-wide training limit (``CONVAE_TRAINING_SLOTS``), and nginx in front of them with
session affinity (``deploy/nginx.conf``), listening where ``--host`` says (``0.0.0.0``:
the room's network). A replica that dies is started again on its port; its students'
tabs reconnect and get a fresh session of the view their link carries. Without
``--load`` it prints the students' link and its QR code and serves until Ctrl-C; with
``--load`` it runs ``benchmarks/classroom_load.py`` through nginx with the arguments after
``--load``, prints its report, checks that no session moved between replicas, and stops
everything.

    python scripts/serve_replicas.py --host 0.0.0.0        # the class command
    python scripts/serve_replicas.py                       # this computer only
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
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import app_server  # scripts/app_server.py: the one way the app is started

REPO = Path(__file__).resolve().parent.parent
NGINX_CONF = REPO / "deploy" / "nginx.conf"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from ui import room  # noqa: E402  (the app's own answer to "which address reaches the room")

RESTART_CHECK_S = 0.5  # how often the replicas are looked at


def wait_healthy(url: str, proc: subprocess.Popen, what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not app_server.is_up(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not answer {url}/_stcore/health")
        time.sleep(0.25)


def nginx_config(
    listen_port: int, replica_ports: list[int], prefix: Path, host: str = "127.0.0.1"
) -> str:
    """deploy/nginx.conf with this run's address, ports and folder filled in."""
    upstreams = "\n".join(f"        server 127.0.0.1:{p};" for p in replica_ports)
    return (
        NGINX_CONF.read_text()
        .replace("@UPSTREAMS@", upstreams)
        .replace("@LISTEN@", f"{host}:{listen_port}")
        .replace("@PREFIX@", str(prefix))
    )


class Supervisor(threading.Thread):
    """Starts a replica that died again, on the same port (nginx keeps sending its
    browsers there); meanwhile nginx passes them to a live one. Each restart gets its own
    log, so the dead replica's stays. ``procs[i]`` is always replica ``i``'s process."""

    def __init__(self, shared: dict[str, str], ports: list[int], procs: list, folder: Path):
        super().__init__(daemon=True, name="replica-supervisor")
        self.shared, self.ports, self.procs, self.folder = shared, ports, procs, folder
        self.restarts = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(RESTART_CHECK_S):
            for i, proc in enumerate(self.procs):
                if proc.poll() is None or self.stopping.is_set():
                    continue
                self.restarts += 1
                log = self.folder / f"replica-{i}.restart-{self.restarts}.log"
                print(
                    f"replica {i} stopped (exit {proc.returncode}); starting it again", flush=True
                )
                try:
                    again = app_server.start(self.shared, log, port=self.ports[i], timeout_s=120)
                except app_server.ServerError as e:
                    print(f"replica {i} could not be started again: {e}", flush=True)
                    continue
                self.procs[i] = again.proc


@contextlib.contextmanager
def replicas(
    n: int, port: int, folder: Path, env: dict[str, str] | None = None, host: str = "127.0.0.1"
) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """``n`` app processes and nginx on ``host:port``; yields (a URL of nginx on this
    machine, the replicas' processes: the list follows restarts). Everything is stopped on
    the way out; logs stay in ``folder``."""
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
    procs: list[subprocess.Popen] = []  # the replicas, replica i at i
    others: list[subprocess.Popen] = []  # nginx
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
        conf.write_text(nginx_config(port, ports, folder, host))
        front = subprocess.Popen(
            [nginx, "-p", str(folder), "-c", str(conf), "-g", "daemon off;"],
            stdout=open(folder / "nginx.out", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        others.append(front)
        here = "127.0.0.1" if host in ("0.0.0.0", "") or room.is_loopback(host) else host
        url = f"http://{here}:{port}"
        wait_healthy(url, front, f"nginx (see {folder}/error.log)")
        supervisor = Supervisor(shared, ports, procs, folder)
        supervisor.start()
        try:
            yield url, procs
        finally:
            supervisor.stopping.set()
            supervisor.join(timeout=130)
    finally:
        for proc in (*procs, *others):
            proc.terminate()
        for proc in (*procs, *others):
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
    ap.add_argument(
        "--host",
        default="127.0.0.1",
        help="where nginx listens: 0.0.0.0 for the room's network (default: this computer only)",
    )
    ap.add_argument("--port", type=int, default=8501, help="nginx's port")
    ap.add_argument("--logs", type=Path, help="keep logs here (default: a temporary folder)")
    args = ap.parse_args(argv)
    folder = args.logs or Path(tempfile.mkdtemp(prefix="convae-replicas-"))
    folder.mkdir(parents=True, exist_ok=True)
    # stopped with a signal (kill, a service manager): the replicas and nginx go too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    link = students_link(args.host, args.port)
    if not room.is_loopback(args.host):
        print(f"Listening on {args.host}:{args.port}: anyone on this network can open the app.")
    env = {room.PUBLIC_URL_ENV: link} if link else {}  # what Share this view puts in links
    with replicas(args.replicas, args.port, folder, env, args.host) as (url, procs):
        print(f"{args.replicas} replica(s) behind {url} (logs in {folder})", flush=True)
        if load_args is None:
            print_link(link, url)
            with contextlib.suppress(KeyboardInterrupt):
                while True:  # a replica that dies is started again meanwhile
                    time.sleep(1)
            return 0
        pids = [a for p in procs for a in ("--server-pid", str(p.pid))]
        cmd = [sys.executable, str(REPO / "benchmarks" / "classroom_load.py"), "--url", url]
        result = subprocess.run([*cmd, *pids, *load_args], cwd=REPO)
        moved = sessions_that_moved(folder / "access.log")
        print(json.dumps({"sessions_that_changed_replica": moved}))
        return result.returncode or (1 if moved else 0)


def students_link(host: str, port: int) -> str:
    """The address the room reaches nginx at: the network address for ``0.0.0.0`` (the
    first, Streamlit's "Network URL"), ``host`` itself for another address that is not
    loopback; empty where only this computer can reach it."""
    if room.is_loopback(host):
        return ""
    if host in ("0.0.0.0", ""):
        addresses = room.network_addresses()
        return f"http://{addresses[0]}:{port}" if addresses else ""
    return f"http://{host}:{port}"


def print_link(link: str, url: str) -> None:
    """The students' link and a QR code of it in the terminal (or why there is none)."""
    if not link:
        print(f"Open {url} on this computer; start with --host 0.0.0.0 to serve the room.")
        return
    import segno

    print(f"Students open {link} (or scan):", flush=True)
    segno.make(link, error="m").terminal(compact=True)


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
