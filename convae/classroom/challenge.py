"""Class challenges: what is asked, how a submission is measured, how the board ranks.

A :class:`Challenge` names a dataset, a task (clean reconstruction, or denoising at a
given noise) and a ranking rule. A submitted model is measured by the server, never by
the student, on :func:`held_out_indices`: a fixed, seeded part of the test split that the
app never shows and no page trains on (:func:`public_indices` is the rest, what the app's
pages see). The numbers are :func:`convae.measuring.metrics.evaluate`'s, the same as everywhere
else in convae.

The rules:

- ``psnr`` / ``ssim``: the highest mean PSNR / SSIM wins;
- ``psnr-code-limit``: the highest PSNR among models whose code has at most ``limit``
  values (a larger code is listed, but not ranked);
- ``smallest-code``: the smallest code among models reaching ``limit`` dB of PSNR
  (higher PSNR breaks a tie); a model below the floor is listed, but not ranked.

A nickname may submit again: only its best entry counts (:func:`rank`).
No UI code lives here.
"""

from __future__ import annotations

import io
import math
import re
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from convae.base.errors import ConvaeError, check_choice
from convae.base.tensors import to_unit_float
from convae.data.grids import image_grid
from convae.data.noise import Noise
from convae.measuring.metrics import evaluate, reconstruct
from convae.nn.checkpoint import load_checkpoint
from convae.nn.models import Autoencoder

RULES = {
    "psnr": "highest PSNR",
    "ssim": "highest SSIM",
    "psnr-code-limit": "highest PSNR with a code of at most {limit:g} values",
    "smallest-code": "smallest code reaching {limit:g} dB of PSNR",
}
NEEDS_LIMIT = {"psnr-code-limit": "code-size limit (values)", "smallest-code": "PSNR floor (dB)"}
HELD_OUT_SIZE = 500  # images a submission is measured on: the largest shipped model takes
# 1.0-1.5 s of CPU on 1,000 (one thread), well under a second on 500; PSNR means of 500
# digits are still good to about 0.1 dB
MEASURE_BATCH = 100  # images per forward pass: faster than one big batch (the CPU caches)
HELD_OUT_SEED = 16_2026  # which test images are held out; also the measurement's noise seed
SHOWN_IMAGES = 8  # public test images every entry's reconstructions are shown on
MAX_NICKNAME = 24  # characters
MAX_TITLE = 80
_SLUG = re.compile(r"[^a-z0-9]+")


class ChallengeError(ConvaeError):
    """A challenge or a submission that cannot be accepted (the message says why)."""


@dataclass(frozen=True)
class Challenge:
    """What a class competes on.

    Attributes:
        slug: its stable name in links and in the database (``[a-z0-9-]``).
        title: what the board shows.
        dataset: ``mnist``, ``fashion-mnist`` or ``cifar10``.
        noise: the input's corruption; clean for plain reconstruction.
        rule: one of :data:`RULES`.
        limit: the code-size limit (``psnr-code-limit``) or the PSNR floor in dB
            (``smallest-code``); None for the other rules.
    """

    slug: str
    title: str
    dataset: str
    noise: Noise
    rule: str
    limit: float | None = None

    @property
    def task(self) -> str:
        return "reconstruct clean images" if self.noise.is_clean else f"denoise {self.noise}"

    def describe(self) -> str:
        """One line: dataset, task and rule."""
        rule = RULES[self.rule].format(limit=self.limit or 0)
        return f"{self.dataset}: {self.task}; ranked by {rule}"


def make_challenge(
    title: str, dataset: str, noise: str, rule: str, limit: float | None
) -> Challenge:
    """A teacher's new challenge, checked; its slug is made from the title.

    Raises:
        ChallengeError: an empty or over-long title, an unknown dataset or rule, a
            malformed noise, or a rule's limit missing or out of range.
    """
    from convae.data.datasets import DATASETS

    title = clean_text(title, MAX_TITLE, "title")
    check_choice("dataset", dataset, DATASETS, error=ChallengeError)
    check_choice("ranking rule", rule, RULES, error=ChallengeError)
    try:
        parsed = Noise.parse(noise)
    except ConvaeError as e:
        raise ChallengeError(str(e)) from None
    if rule in NEEDS_LIMIT:
        if limit is None or not math.isfinite(limit) or not 0 < limit <= 100_000:
            raise ChallengeError(f"the rule {rule!r} needs a {NEEDS_LIMIT[rule]} above 0")
    else:
        limit = None
    slug = _SLUG.sub("-", unicodedata.normalize("NFKD", title).lower()).strip("-")[:40]
    return Challenge(slug or f"challenge-{int(time.time())}", title, dataset, parsed, rule, limit)


SHIPPED = (
    Challenge(
        "mnist-196", "Best 196-value code on MNIST", "mnist", Noise(), "psnr-code-limit", 196
    ),
    Challenge(
        "mnist-denoise-0.5",
        "Best denoiser at Gaussian 0.5",
        "mnist",
        Noise("gaussian", 0.5),
        "psnr",
    ),
    Challenge(
        "mnist-smallest-20db", "Smallest code above 20 dB", "mnist", Noise(), "smallest-code", 20
    ),
)


# ------------------------------------------------------------------------ held out
def held_out_indices(n_test: int, size: int = HELD_OUT_SIZE) -> torch.Tensor:
    """(size,) sorted indices of the test images kept for measuring submissions.

    Drawn with a fixed seed from the second half of the test split: the first images
    are the ones the shipped checkpoints' published figures and the pages' quick
    measurements use, and they stay public. A split of fewer than ``4 * size`` images
    keeps none back (the pages' measurements would reach into the second half).
    """
    if n_test < 4 * size:  # a small test split (a folder's, a test's) stays all public:
        return torch.zeros(0, dtype=torch.int64)  # the pages' first images are its whole
    half = n_test // 2
    g = torch.Generator().manual_seed(HELD_OUT_SEED)
    return (half + torch.randperm(n_test - half, generator=g)[:size]).sort().values


def public_indices(n_test: int) -> torch.Tensor:
    """(n_test - held out,) sorted indices of the test images the app may show."""
    keep = torch.ones(n_test, dtype=torch.bool)
    keep[held_out_indices(n_test)] = False
    return keep.nonzero().flatten()


# ----------------------------------------------------------------------- measuring
@dataclass(frozen=True)
class Result:
    """What the server measured of one submitted model."""

    arch: str
    code_size: int
    params: int
    n: int  # held-out images measured
    mse: float
    psnr: float
    ssim: float
    seconds: float  # how long the measurement took (wall clock)
    reconstructions: bytes  # PNG: the shown images (top row) and the model's output


def measure(
    model: Autoencoder, challenge: Challenge, held_out: torch.Tensor, shown: torch.Tensor
) -> Result:
    """Measure ``model`` on the challenge's task.

    Args:
        model: the submitted model; it must take the dataset's images.
        challenge: which task (its noise) to measure.
        held_out: (N, C, H, W) uint8 or float: the held-out test images.
        shown: (S, C, H, W) public test images whose reconstructions the board shows.

    Raises:
        ChallengeError: the model is for another image shape.
    """
    if tuple(model.config.in_shape) != tuple(held_out.shape[1:]):
        raise ChallengeError(
            f"this challenge is on {challenge.dataset} ({tuple(held_out.shape[1:])} images); "
            f"the model takes {tuple(model.config.in_shape)}"
        )
    start = time.perf_counter()
    with torch.inference_mode():
        ev = evaluate(
            model, held_out, challenge.noise, seed=HELD_OUT_SEED, batch_size=MEASURE_BATCH
        )
        x = to_unit_float(shown)
        noisy = challenge.noise.apply(x, seed=HELD_OUT_SEED)
        out = reconstruct(model, noisy)
    rows = torch.cat([noisy, out]) if not challenge.noise.is_clean else torch.cat([x, out])
    return Result(
        arch=model.config.arch,
        code_size=model.latent_size,
        params=model.num_params,
        n=ev.n,
        mse=ev.mse,
        psnr=ev.psnr,
        ssim=ev.ssim,
        seconds=time.perf_counter() - start,
        reconstructions=png_bytes(rows, nrow=len(x)),
    )


def measure_checkpoint(
    data: bytes, challenge: Challenge, held_out: torch.Tensor, shown: torch.Tensor
) -> Result:
    """:func:`measure` of a checkpoint's bytes, read with the safe loader (a training
    process receives weights as bytes, never as shared tensors)."""
    c, h, w = held_out.shape[1:]
    model = load_checkpoint(data, expect_shape=(c, h, w)).model
    return measure(model, challenge, held_out, shown)


def png_bytes(images: torch.Tensor, nrow: int) -> bytes:
    """A batch (B, C, H, W) in [0, 1] as one PNG, one pixel per pixel (small: it is kept
    in the database for every entry)."""
    grid = image_grid(images, nrow=nrow, scale=1, padding=1)
    picture = Image.fromarray(grid[:, :, 0] if images.shape[1] == 1 else grid)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


# ------------------------------------------------------------------------- ranking
@dataclass(frozen=True)
class Entry:
    """A measured submission as the board keeps it."""

    id: int
    nickname: str
    arch: str
    code_size: int
    params: int
    mse: float
    psnr: float
    ssim: float
    created: float  # seconds since the epoch
    hidden: bool = False


@dataclass(frozen=True)
class Ranked:
    """An entry on the board: ``place`` 1 is the best; None: it does not meet the rule."""

    place: int | None
    entry: Entry
    submissions: int  # how many times this nickname submitted


def qualifies(challenge: Challenge, entry: Entry) -> bool:
    """Whether ``entry`` meets the rule's condition (always, for PSNR and SSIM)."""
    if challenge.rule == "psnr-code-limit":
        return entry.code_size <= (challenge.limit or 0)
    if challenge.rule == "smallest-code":
        return entry.psnr >= (challenge.limit or 0)
    return True


def sort_key(challenge: Challenge, entry: Entry) -> tuple:
    """Smaller is better: qualifying entries first, then by the rule, then the earlier."""
    if challenge.rule == "ssim":
        by: tuple = (-entry.ssim,)
    elif challenge.rule == "smallest-code":
        by = (entry.code_size, -entry.psnr)
    else:
        by = (-entry.psnr,)
    return (not qualifies(challenge, entry), *by, entry.created, entry.id)


def nickname_key(nickname: str) -> str:
    """The identity of a nickname: "Ada" and "ada " are the same student."""
    return clean_nickname(nickname).casefold()


def rank(challenge: Challenge, entries: Iterable[Entry]) -> list[Ranked]:
    """The board: each nickname's best entry, best first (hidden entries left out).

    Entries that do not meet the rule follow the ranked ones, without a place.
    """
    best: dict[str, Entry] = {}
    count: dict[str, int] = {}
    for entry in entries:
        if entry.hidden:
            continue
        key = entry.nickname.casefold()
        count[key] = count.get(key, 0) + 1
        if key not in best or sort_key(challenge, entry) < sort_key(challenge, best[key]):
            best[key] = entry
    ordered = sorted(best.values(), key=lambda e: sort_key(challenge, e))
    board, place = [], 0
    for entry in ordered:
        ok = qualifies(challenge, entry)
        place += ok
        board.append(Ranked(place if ok else None, entry, count[entry.nickname.casefold()]))
    return board


def score_text(challenge: Challenge, entry: Entry) -> str:
    """The number the rule ranks by, as the board says it."""
    if challenge.rule == "ssim":
        return f"SSIM {entry.ssim:.3f}"
    if challenge.rule == "smallest-code":
        return f"{entry.code_size} values at {entry.psnr:.1f} dB"
    return f"{entry.psnr:.2f} dB"


# ------------------------------------------------------------------------ nicknames
def clean_text(raw: object, max_len: int, what: str) -> str:
    """Plain one-line text: Unicode-normalised (NFKC), without control or formatting
    characters (which include the bidirectional overrides that reorder a line), spaces
    collapsed, at most ``max_len`` characters.

    Raises:
        ChallengeError: not a string, empty, or too long.
    """
    if not isinstance(raw, str):
        raise ChallengeError(f"the {what} must be text")
    text = unicodedata.normalize("NFKC", raw)
    spaced = (" " if c.isspace() else c for c in text)  # tabs and newlines are controls too
    text = "".join(c for c in spaced if unicodedata.category(c)[0] != "C")
    text = " ".join(text.split())
    if not text:
        raise ChallengeError(f"choose a {what}: it cannot be empty")
    if len(text) > max_len:
        raise ChallengeError(f"the {what} is {len(text)} characters long; at most {max_len}")
    return text


def clean_nickname(raw: object) -> str:
    """A nickname as the board keeps it (see :func:`clean_text`); shown as plain text."""
    return clean_text(raw, MAX_NICKNAME, "nickname")


def columns(challenge: Challenge, board: Sequence[Ranked]) -> list[dict[str, object]]:
    """The board as rows of plain values (the page's table and the CSV export)."""
    return [
        {
            "place": r.place,
            "nickname": r.entry.nickname,
            "score": score_text(challenge, r.entry),
            "arch": r.entry.arch,
            "code_size": r.entry.code_size,
            "params": r.entry.params,
            "psnr": round(r.entry.psnr, 3),
            "ssim": round(r.entry.ssim, 4),
            "mse": round(r.entry.mse, 6),
            "submissions": r.submissions,
            "meets_rule": r.place is not None,
        }
        for r in board
    ]
