"""The class challenge in real browsers, on two app processes sharing one board.

One browser context submits a checkpoint on the first server (the ``app_server``
fixture); another, already looking at the board of a second app process started on the
same board folder (the same SQLite file, as two replicas of one machine are), sees the
entry appear without a reload. Skipped without Chromium or MNIST, except with ``$CI``.
"""

from __future__ import annotations

import uuid

from support import REPO, streamlit_server

DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
VIEWPORT = {"width": 1400, "height": 900}
TIMEOUT_MS = 180_000  # a measurement waits for a free worker on a busy machine
LINK = "Best+196-value+code+on+MNIST"  # a bound menu carries its option's label


def test_a_submission_shows_on_the_other_replicas_board_without_a_reload(
    browser, app_server, data_root, tmp_path
):
    from playwright.sync_api import expect

    env = {"CONVAE_DATA_DIR": str(data_root), "CONVAE_CHECKPOINT_DIR": str(app_server.checkpoints)}
    nickname = f"Replica {uuid.uuid4().hex[:6]}"
    checkpoint = REPO / "checkpoints" / "mnist-conv-bn.pt"  # the best shipped: on the podium
    with streamlit_server(env, tmp_path / "second.log") as second_url:
        viewer = browser.new_context(viewport=VIEWPORT)
        student = browser.new_context(viewport=VIEWPORT)
        try:
            board = viewer.new_page()
            board.goto(f"{second_url}/board?board_challenge={LINK}")
            board.wait_for_selector(DONE, timeout=TIMEOUT_MS)
            board.evaluate("window.__notReloaded = true")
            assert nickname not in board.inner_text("body")

            page = student.new_page()
            page.goto(f"{app_server.url}/board?board_challenge={LINK}")
            page.wait_for_selector(DONE, timeout=TIMEOUT_MS)
            main = page.locator('[data-testid="stMain"]')
            main.locator('input[type="file"]').set_input_files(str(checkpoint))
            expect(main.get_by_text("mnist-conv-bn.pt")).to_be_visible(timeout=TIMEOUT_MS)
            page.wait_for_selector(DONE, timeout=TIMEOUT_MS)
            field = main.get_by_role("textbox", name="Nickname")
            field.fill(nickname)
            field.press("Enter")
            page.wait_for_selector(DONE, timeout=TIMEOUT_MS)
            main.get_by_role("button", name="Submit").click()
            expect(main.get_by_text(f"Submitted as {nickname}")).to_be_visible(timeout=TIMEOUT_MS)

            # the other replica's board, never reloaded, shows it on the podium
            expect(board.get_by_text(nickname).first).to_be_visible(timeout=TIMEOUT_MS)
            assert board.evaluate("window.__notReloaded === true")
            assert board.locator('[data-testid="stException"]').count() == 0
            assert page.locator('[data-testid="stException"]').count() == 0
        finally:
            viewer.close()
            student.close()
    assert "Traceback" not in (tmp_path / "second.log").read_text()
    assert "Traceback" not in app_server.output()
