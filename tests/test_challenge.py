"""Class challenges: the held-out images, the rules and the ranking, nicknames, the
measurement, hostile checkpoints, and submissions through the training queue."""

from __future__ import annotations

import re
import time

import pytest
import torch
from hostile import hostile_checkpoints
from support import REPO, wait_until

from convae import CheckpointError, ModelConfig, build_model, evaluate
from convae.classroom.board_store import BoardStore
from convae.classroom.challenge import (
    HELD_OUT_SEED,
    HELD_OUT_SIZE,
    SHIPPED,
    Challenge,
    ChallengeError,
    Entry,
    clean_nickname,
    held_out_indices,
    make_challenge,
    measure,
    measure_checkpoint,
    public_indices,
    rank,
)
from convae.classroom.queue import TrainingQueue
from convae.classroom.submission import Submission
from convae.data.noise import Noise
from convae.nn.checkpoint import to_bytes

BY_SLUG = {c.slug: c for c in SHIPPED}


def entry(i, nickname, psnr, code=196, ssim=0.9, hidden=False) -> Entry:
    return Entry(i, nickname, "conv-upsample", code, 1000, 0.01, psnr, ssim, float(i), hidden)


# ------------------------------------------------------------------ held-out images
def test_the_held_out_images_are_fixed_and_apart_from_what_the_pages_see():
    held = held_out_indices(10_000)
    assert len(held) == HELD_OUT_SIZE and len(set(held.tolist())) == HELD_OUT_SIZE
    assert torch.equal(held, held_out_indices(10_000))  # the same on every server
    assert held.min() >= 5000  # the first half stays public (shipped figures use it)
    public = public_indices(10_000)
    assert len(public) == 10_000 - HELD_OUT_SIZE
    assert set(public.tolist()).isdisjoint(held.tolist())
    assert torch.equal(torch.cat([public, held]).sort().values, torch.arange(10_000))
    assert torch.equal(public[:5000], torch.arange(5000))


# --------------------------------------------------------------------------- rules
def test_highest_psnr_and_highest_ssim_rank_differently():
    entries = [entry(1, "Ada", 25.0, ssim=0.80), entry(2, "Grace", 22.0, ssim=0.95)]
    denoise = BY_SLUG["mnist-denoise-0.5"]
    by_ssim = Challenge("s", "SSIM", "mnist", Noise(), "ssim")
    assert [r.entry.nickname for r in rank(denoise, entries)] == ["Ada", "Grace"]
    assert [r.entry.nickname for r in rank(by_ssim, entries)] == ["Grace", "Ada"]


def test_the_code_size_limit_lists_larger_codes_without_a_place():
    board = rank(
        BY_SLUG["mnist-196"],
        [entry(1, "Big", 30.0, code=256), entry(2, "Ada", 22.0, code=196), entry(3, "Al", 24.0)],
    )
    assert [(r.place, r.entry.nickname) for r in board] == [(1, "Al"), (2, "Ada"), (None, "Big")]


def test_the_smallest_code_above_the_floor_wins_and_psnr_breaks_a_tie():
    board = rank(
        BY_SLUG["mnist-smallest-20db"],
        [
            entry(1, "Tiny", 14.7, code=2),  # below 20 dB: not ranked
            entry(2, "Mid", 21.0, code=128),
            entry(3, "Small", 20.5, code=32),
            entry(4, "Same", 22.0, code=32),  # same size, higher PSNR
        ],
    )
    assert [(r.place, r.entry.nickname) for r in board] == [
        (1, "Same"),
        (2, "Small"),
        (3, "Mid"),
        (None, "Tiny"),
    ]


def test_each_nickname_counts_once_with_its_best_and_hidden_entries_are_left_out():
    board = rank(
        BY_SLUG["mnist-denoise-0.5"],
        [
            entry(1, "Ada", 18.0),
            entry(2, "ADA", 21.0),
            entry(3, "ada", 19.0),
            entry(4, "Grace", 20.0),
            entry(5, "Grace", 25.0, hidden=True),
            entry(6, "Tie", 20.0),  # same PSNR as Grace, later: after her
        ],
    )
    assert [(r.entry.id, r.submissions) for r in board] == [(2, 3), (4, 1), (6, 1)]


def test_a_teachers_challenge_is_checked():
    new = make_challenge("  Best  denoiser, masks!  ", "fashion-mnist", "mask:0.3", "psnr", 99)
    assert (new.slug, new.title, new.noise, new.limit) == (
        "best-denoiser-masks",
        "Best denoiser, masks!",
        Noise("mask", 0.3),
        None,  # the PSNR rule has no limit
    )
    assert "fashion-mnist: denoise mask:0.3; ranked by highest PSNR" == new.describe()
    bad = [
        (("", "mnist", "none", "psnr", None), "cannot be empty"),
        (("x" * 81, "mnist", "none", "psnr", None), "at most 80"),
        (("T", "imagenet", "none", "psnr", None), "unknown dataset"),
        (("T", "mnist", "none", "fastest", None), "unknown ranking rule"),
        (("T", "mnist", "fog:2", "psnr", None), "noise"),
        (("T", "mnist", "none", "psnr-code-limit", None), "code-size limit"),
        (("T", "mnist", "none", "smallest-code", float("nan")), "PSNR floor"),
        (("T", "mnist", "none", "smallest-code", -3.0), "PSNR floor"),
    ]
    for args, message in bad:
        with pytest.raises(ChallengeError, match=message):
            make_challenge(*args)


# ------------------------------------------------------------------------ nicknames
def test_hostile_nicknames_become_plain_one_line_text_or_are_refused():
    assert clean_nickname("  Ada\tLovelace\n") == "Ada Lovelace"
    assert clean_nickname("<script>alert(1)</script") == "<script>alert(1)</script"  # text
    assert clean_nickname("**b** [x](javascript:1)") == "**b** [x](javascript:1)"
    assert clean_nickname("evil\u202egnp.exe") == "evilgnp.exe"  # no bidirectional override
    assert clean_nickname("zero\u200bwidth\x00\x1b[31m") == "zerowidth[31m"
    assert clean_nickname("Ｆｕｌｌｗｉｄｔｈ") == "Fullwidth"  # NFKC: one spelling per name
    for bad, message in [
        ("", "cannot be empty"),
        (" \u200b\n ", "cannot be empty"),
        ("x" * 25, "at most 24"),
        ("😀" * 1000, "at most 24"),
        (None, "must be text"),
        (["Ada"], "must be text"),
    ]:
        with pytest.raises(ChallengeError, match=message):
            clean_nickname(bad)


# ------------------------------------------------------------------------ measuring
@pytest.fixture(scope="module")
def held(mnist_test):
    return mnist_test.images[held_out_indices(len(mnist_test))], mnist_test.images[:8]


def shipped(name: str) -> bytes:
    path = REPO / "checkpoints" / name
    if not path.is_file():
        pytest.skip("the shipped checkpoints are not in this checkout")
    return path.read_bytes()


@pytest.fixture(scope="module")
def shipped_bytes() -> bytes:
    return shipped("mnist-conv-upsample.pt")


def test_a_measurement_is_the_usual_evaluation_on_the_held_out_images_in_under_a_second(held):
    images, shown = held
    shipped_bytes = shipped("mnist-denoiser.pt")  # the slowest shipped model to run
    denoise = BY_SLUG["mnist-denoise-0.5"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the worker process (more threads spin-wait on CPU)
    try:
        measure_checkpoint(shipped_bytes, denoise, images, shown)  # warm: first calls allocate
        cpu = time.process_time()
        result = measure_checkpoint(shipped_bytes, denoise, images, shown)
        cpu = time.process_time() - cpu
    finally:
        torch.set_num_threads(threads)
    from convae import load_checkpoint

    model = load_checkpoint(shipped_bytes).model
    expected = evaluate(model, images, Noise("gaussian", 0.5), seed=HELD_OUT_SEED)
    assert result.n == HELD_OUT_SIZE and result.psnr == pytest.approx(expected.psnr)
    assert result.ssim == pytest.approx(expected.ssim)
    assert (result.arch, result.code_size, result.params) == ("denoiser", 256, 31009)
    assert result.reconstructions.startswith(b"\x89PNG")
    assert cpu < 1.0, f"one measurement took {cpu:.2f} s of CPU"


def test_a_model_for_other_images_is_refused(held):
    images, shown = held
    cifar = build_model(ModelConfig("conv-upsample", (3, 32, 32)))
    with pytest.raises(ChallengeError, match="on mnist"):
        measure(cifar, BY_SLUG["mnist-196"], images, shown)


def test_every_hostile_checkpoint_is_refused_with_a_message_and_runs_nothing(held, tmp_path):
    images, shown = held
    marker = tmp_path / "pwned"
    for name, data in hostile_checkpoints(marker).items():
        with pytest.raises((CheckpointError, ChallengeError)) as caught:
            measure_checkpoint(data, BY_SLUG["mnist-196"], images, shown)
        text = str(caught.value)
        assert text and "\n" not in text and "Traceback" not in text, name
        assert not marker.exists(), name


# ------------------------------------------------------------ through the queue
def test_a_submission_is_measured_in_a_worker_process_and_put_on_the_board(
    held, shipped_bytes, tmp_path
):
    images, shown = held
    store = BoardStore(f"sqlite:///{tmp_path / 'b.sqlite'}", tmp_path / "w")
    queue = TrainingQueue(max_running=1, max_waiting=4)
    try:
        job = Submission(store, BY_SLUG["mnist-196"], " Ada ", shipped_bytes, images, shown)
        queue.submit("s1:challenge", job, patient=True)
        assert wait_until(lambda: job.finished, timeout=120)
        snap = job.snapshot()
        assert snap.state == "done", snap.error
        [ranked] = store.board("mnist-196")[1]
        assert (ranked.entry.id, ranked.entry.nickname) == (snap.entry_id, "Ada")
        assert ranked.entry.psnr == pytest.approx(snap.result.psnr)
        assert store.weights_path(snap.entry_id).read_bytes() == shipped_bytes

        store.set_open("mnist-196", False)  # closed meanwhile: measured, not put on
        late = Submission(
            store, BY_SLUG["mnist-196"], "Late", shipped_bytes, images, shown, isolate=False
        )
        queue.submit("s2:challenge", late, patient=True)
        assert wait_until(lambda: late.finished, timeout=120)
        assert late.snapshot().state == "failed" and "closed" in late.snapshot().error
    finally:
        queue.close()
        store.close()


@pytest.mark.slow
def test_a_flood_of_submissions_queues_and_every_one_lands(tmp_path):
    store = BoardStore(f"sqlite:///{tmp_path / 'b.sqlite'}", tmp_path / "w")
    queue = TrainingQueue(max_running=4, max_waiting=40, drop_after_s=0.5)
    images = torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8)
    model = build_model(ModelConfig("linear", hidden=4), seed=0)
    jobs = []
    try:
        start = time.monotonic()
        for i in range(40):  # a class pressing Submit at once: nobody waits to be queued
            job = Submission(
                store,
                BY_SLUG["mnist-smallest-20db"],
                f"student {i}",
                to_bytes(model, {"n": i}),
                images,
                images[:2],
                isolate=False,
            )
            queue.submit(f"s{i}:challenge", job, patient=True)
            jobs.append(job)
        assert time.monotonic() - start < 5.0
        time.sleep(1.0)  # longer than drop_after_s: patient jobs are never dropped
        assert wait_until(lambda: all(j.finished for j in jobs), timeout=120)
        assert all(j.snapshot().state == "done" for j in jobs)
        assert len(store.board("mnist-smallest-20db")[1]) == 40
    finally:
        queue.close()
        store.close()


def test_the_shipped_challenges_ask_what_the_tutorials_suggest():
    assert [(c.title, c.rule, c.limit, str(c.noise)) for c in SHIPPED] == [
        ("Best 196-value code on MNIST", "psnr-code-limit", 196, "none"),
        ("Best denoiser at Gaussian 0.5", "psnr", None, "gaussian:0.5"),
        ("Smallest code above 20 dB", "smallest-code", 20, "none"),
    ]
    assert all(re.fullmatch(r"[a-z0-9.-]+", c.slug) for c in SHIPPED)  # safe in a link


def test_a_small_test_split_keeps_no_images_back():
    assert len(held_out_indices(4 * HELD_OUT_SIZE - 1)) == 0
    assert torch.equal(public_indices(40), torch.arange(40))
