"""One real upload of a malicious checkpoint through a real browser.

AppTest sets the uploader's value directly; this goes the way a visitor does: headless
Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright) puts a crafted torch zip
(its pickle would run ``touch MARKER``) into the sidebar's ``input[type=file]``, the
browser sends it to a real ``streamlit run app.py`` on 127.0.0.1, and the page must say
that it was refused, show no exception, keep the model, and run nothing.

Skipped without Chromium, Playwright or MNIST, except when ``$CI`` is set (then it fails).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hostile import ROOT, RunsCode, data_root, torch_bytes

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 120_000


def _missing(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so the browser test must not be skipped")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    if not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("Playwright is not installed (pip install -r requirements-dev.txt)")
    from convae import ModelConfig, build_model
    from convae.checkpoint import save_checkpoint
    from convae.zoo import write_index

    folder = tmp_path / "checkpoints"
    save_checkpoint(folder / "mnist-conv-upsample.pt",
                    build_model(ModelConfig("conv-upsample"), seed=0), {"dataset": "mnist"})
    write_index([{"file": "mnist-conv-upsample.pt", "arch": "conv-upsample",
                  "dataset": "mnist", "train_noise": "none", "metrics": {}}], folder)
    port = _free_port()
    env = dict(os.environ, CONVAE_DATA_DIR=str(data_root()), CONVAE_CHECKPOINT_DIR=str(folder),
               CONVAE_CACHE_DIR=str(tmp_path / "cache"))
    log = tmp_path / "streamlit.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield url, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def test_a_malicious_checkpoint_uploaded_in_the_browser_is_refused(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from convae.checkpoint import FORMAT

    url, log = server
    marker = tmp_path / "MARKER"
    evil = torch_bytes({"format": FORMAT, "format_version": 1, "model": RunsCode(marker)})
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            done = '[data-testid="stApp"][data-test-script-state="notRunning"]'
            page.wait_for_selector(done, timeout=TIMEOUT_MS)
            sidebar = page.locator('[data-testid="stSidebar"]')
            current = page.get_by_role("heading", name="One image through the current model")
            expect(current).to_contain_text("mnist-conv-upsample.pt", timeout=TIMEOUT_MS)
            sidebar.get_by_text("Upload a checkpoint (.pt)").click()
            sidebar.locator('input[type="file"]').set_input_files(
                {"name": "evil.pt", "mimeType": "application/octet-stream", "buffer": evil})
            message = sidebar.get_by_text("evil.pt was not loaded")
            expect(message).to_be_visible(timeout=TIMEOUT_MS)
            page.wait_for_selector(done, timeout=TIMEOUT_MS)
            assert "could run code when loaded, so it was refused" in message.inner_text()
            assert page.locator('[data-testid="stException"]').count() == 0
            expect(current).to_contain_text("mnist-conv-upsample.pt")  # model unchanged
        finally:
            browser.close()
    assert not marker.exists(), "the upload ran code on the server"
    assert "Traceback" not in log.read_text()
