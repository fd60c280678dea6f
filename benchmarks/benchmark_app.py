"""How fast the app answers a slider move, measured on the server side.

Drives the app in-process with Streamlit's AppTest: opens a page, sets a batch of 16
images, then moves a slider (or types a value) back and forth and times each rerun
(median and 95th percentile): Explore, Activations, the learned filters, the latent map's size, a
decoded map point and the map of decodings, and the threshold, worst images and noise
level of "What it cannot reconstruct". A drawing on the pad is timed the same way:
AppTest puts what the pad sends (its picture as a PNG) into the session state,
alternating two drawings. AppTest reruns the whole script (sidebar + page) on every
change, while a browser only reruns the slider's fragment, so these figures are an upper
bound of what a user waits for on the server (network and drawing in the browser not included).

    python benchmarks/benchmark_app.py [--moves 20]
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import statistics
import sys
import time
from pathlib import Path

# No sys.path edit: this script imports neither convae nor ui itself. AppTest runs
# app.py with the app's folder on sys.path, as `streamlit run` does, so the app finds both.
ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def pad_value(lines: list[tuple[int, int, int, int]]) -> dict:
    """What the drawing pad sends after a stroke: its 280x280 picture as a PNG."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    for line in lines:
        ImageDraw.Draw(img).line(line, fill="white", width=20)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return {"drawing": {"raw": {"objects": []}, "data": url}, "backgroundFit": None}


DRAWINGS = [[(140, 40, 140, 240)], [(70, 60, 210, 60), (210, 60, 130, 240)]]  # a 1, a 7


def time_drawings(at, key: str, moves: int) -> list[float]:
    """Each "move" a new drawing on the pad ``key``, timed like a slider move."""
    times = []
    for i in range(moves):
        at.session_state[key] = pad_value(DRAWINGS[i % 2])
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
        if at.exception:
            raise SystemExit(f"the app raised: {[e.value for e in at.exception]}")
    return times


def time_moves(at, widget, values: list, moves: int) -> list[float]:
    times = []
    for i in range(moves):
        widget().set_value(values[i % len(values)])
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
        if at.exception:
            raise SystemExit(f"the app raised: {[e.value for e in at.exception]}")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=20, help="slider moves per page")
    parser.add_argument("--images", type=int, default=16, help="images on the Explore page")
    args = parser.parse_args(argv)
    if not os.environ.get("CONVAE_DATA_DIR"):
        shared = ROOT.parent / "shared" / "datasets"
        if shared.is_dir():
            os.environ["CONVAE_DATA_DIR"] = str(shared)
    os.environ.setdefault("CONVAE_DEBUG", "1")

    import torch
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    if at.exception or at.error:
        raise SystemExit(f"the app did not start cleanly: {[e.value for e in at.error]}")
    model = at.session_state["model_id"]
    rows = []

    at.switch_page("app_pages/explore.py").run()
    at.slider(key="explore_count").set_value(args.images)
    at.run()
    levels = [round(0.05 * i, 2) for i in range(1, 20)]
    time_moves(at, lambda: at.slider(key="explore_level"), levels[:3], 3)  # warm-up
    rows.append(
        (
            "Explore",
            f"noise level ({args.images} images)",
            time_moves(at, lambda: at.slider(key="explore_level"), levels, args.moves),
        )
    )

    at.selectbox(key="explore_source").set_value("Draw your own")
    at.run()
    time_drawings(at, "explore_pad", 3)
    rows.append(
        ("Explore", "a new drawing on the pad", time_drawings(at, "explore_pad", args.moves))
    )

    at.switch_page("app_pages/activations.py").run()
    at.selectbox(key="act_kind").set_value("gaussian")
    at.run()
    time_moves(at, lambda: at.slider(key="act_level"), levels[:3], 3)
    rows.append(
        (
            "Activations",
            "noise level (1 image, all layers)",
            time_moves(at, lambda: at.slider(key="act_level"), levels, args.moves),
        )
    )
    at.selectbox(key="act_layer").set_value("encoder.conv1")
    at.run()
    ranges = [(0, 15), (0, 7), (8, 15), (4, 11)]
    time_moves(at, lambda: at.slider(key="act_channels_16"), ranges, 3)
    rows.append(
        (
            "Activations",
            "channel range (16 maps)",
            time_moves(at, lambda: at.slider(key="act_channels_16"), ranges, args.moves),
        )
    )

    at.selectbox(key="act_layer").set_value("encoder.pool2")
    at.radio(key="act_source").set_value("Your drawing")
    at.run()
    time_drawings(at, "act_pad", 3)
    rows.append(
        ("Activations", "a new drawing (all layers)", time_drawings(at, "act_pad", args.moves))
    )
    layers = ["encoder.conv1", "encoder.conv2", "decoder.conv3", "decoder.conv4"]
    time_moves(at, lambda: at.selectbox(key="act_filter_layer"), layers[:3], 3)
    rows.append(
        (
            "Activations",
            "learned filters: layer (and untrained)",
            time_moves(at, lambda: at.selectbox(key="act_filter_layer"), layers, args.moves),
        )
    )
    rows.append(
        (
            "Activations",
            "learned filters: same scale on/off",
            time_moves(at, lambda: at.toggle(key="act_filter_same"), [True, False], args.moves),
        )
    )

    at.switch_page("app_pages/latent.py").run()
    sizes = [500, 1000, 2000, 5000, 10000]
    time_moves(at, lambda: at.select_slider(key="latent_n"), sizes, len(sizes))  # encodes once
    rows.append(
        (
            "Latent",
            "map size (500 to 10,000 points)",
            time_moves(at, lambda: at.select_slider(key="latent_n"), sizes, args.moves),
        )
    )
    # a click on the map sets these two inputs (its callback), then reruns: the same work
    points = [round(-12 + 1.3 * i, 2) for i in range(20)]
    rows.append(
        (
            "Latent",
            "decode a map point (as a click does)",
            time_moves(at, lambda: at.number_input(key="latent_x"), points, args.moves),
        )
    )
    grids = [8, 12, 16, 20, 4]
    rows.append(
        (
            "Latent",
            "tiles of the map of decodings (4-20)",
            time_moves(at, lambda: at.slider(key="latent_grid"), grids, args.moves),
        )
    )

    at.switch_page("app_pages/limits.py").run()  # reconstructs the test set once per model
    pcts = [50.0 + 2.5 * i for i in range(20)]
    rows.append(
        (
            "Limits",
            "alarm threshold",
            time_moves(at, lambda: at.slider(key="limits_pct"), pcts, args.moves),
        )
    )
    counts = [4, 8, 12, 16, 24]
    rows.append(
        (
            "Limits",
            "how many of the worst",
            time_moves(at, lambda: at.slider(key="limits_worst"), counts, args.moves),
        )
    )
    at.selectbox(key="limits_source").set_value("noise").run()
    rows.append(
        (
            "Limits",
            "noise level (500 new images each)",
            time_moves(at, lambda: at.slider(key="limits_level"), levels, args.moves),
        )
    )

    print(
        f"model: {model} · torch threads: {torch.get_num_threads()} · "
        f"CPUs: {os.cpu_count()} · {args.moves} moves each (full-script reruns)\n"
    )
    print(f"{'page':<12} {'control':<40} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}")
    for page, what, times in rows:
        ms = [t * 1000 for t in times]
        print(
            f"{page:<12} {what:<40} {statistics.median(ms):>10.0f} "
            f"{percentile(ms, 0.95):>8.0f} {max(ms):>8.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
