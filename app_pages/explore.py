"""Denoise & explore: corrupt test images, watch the model clean them up."""

import pandas as pd
import streamlit as st

from convae import add_noise, image_metrics
from convae.figures import sweep_figure
from convae.measuring.denoise import (
    CLASSICAL_FILTERS,
    SWEEP_IMAGES,
    SWEEP_LEVELS,
    SWEEP_SEED,  # the curve's noise; the slider's seed only changes the pictures above
    noise_sweep,
)
from convae.measuring.tuning import TUNE_IMAGES, classical_outputs, classical_sweep_for
from ui import baselines, catalogue, layout, nav, state, widgets
from ui.errors import guarded
from ui.links import URL

st.title(nav.title(__file__))
layout.explain(
    "Take test images the model never saw, add noise, and compare what comes out of "
    "the autoencoder with the clean original. PCA with the model's code size and three "
    "classical filters (no learning) are shown too, so you can see what learning buys."
)

ref = state.current_model()
dataset = st.session_state["dataset"]
test = state.require_dataset(dataset)
if not ref.trained:
    st.warning(
        "The current model is **untrained**: expect grey blurs. Pick a pretrained "
        "model in the sidebar or train one on the **Train** page.",
        icon=":material/casino:",
    )

picked = widgets.pick_images(test, "explore")
if picked is None:
    st.stop()


# The sweep is a property of the model, measured once per server for each noise kind
# (0.1-0.3 s of CPU for most shipped MNIST models, 1.5 s for the denoiser, 2.2 s for
# conv-res) and shared by every session: with the slider's seed in its key, each
# student trying a seed would cost the whole class that much again.
@st.cache_data(show_spinner="Measuring the model at 11 noise levels...", max_entries=64)
def cached_sweep(model_key: str, dataset: str, kind: str, _model):
    images = state.get_dataset(dataset).floats(slice(0, SWEEP_IMAGES))
    k = _model.latent_size
    references = {f"PCA-{k}": catalogue.pca_model(dataset, k)}
    return noise_sweep(_model, images, kind, SWEEP_LEVELS, seed=SWEEP_SEED, references=references)


# The classical filters do not depend on the model: the index ships their curves for its
# datasets; for another, they are measured once per server for each noise kind (7 s).
@st.cache_data(
    show_spinner="Measuring the classical filters at 11 noise levels (once per server)...",
    max_entries=16,
)
def cached_classical_sweep(dataset: str, kind: str, n_images: int, _test=None, _train=None):
    # the images (an upload's, else None) are named by the dataset id: its content's hash
    return classical_sweep_for(dataset, kind, _test, _train, n_images)


@st.fragment
@guarded
def noisy_view():
    noise, seed = widgets.noise_controls("explore")
    x = picked.images
    noisy = add_noise(x, noise.kind, noise.level, seed=seed)
    k = ref.model.latent_size
    pca = catalogue.pca_model(dataset, k)
    with state.inference():
        outputs = {
            "Model output": ref.model(noisy).clamp(0, 1),
            f"PCA, {k} values": pca(noisy),
            **classical_outputs(noisy, dataset, noise, state.uploaded_images(dataset, True)),
        }
    m_noisy = image_metrics(noisy, x)
    scores = {name: image_metrics(out, x) for name, out in outputs.items()}
    trained_for = baselines.trained_for(ref)
    about = {
        "Model output": f"{ref.label} · {trained_for}",
        f"PCA, {k} values": "same code size, no training",
        **{name: "classical filter, no learning" for name in CLASSICAL_FILTERS},
    }

    with layout.main_picture():
        widgets.image_row("Original", x, picked.about)
        widgets.image_row(
            "Noisy input",
            noisy,
            (str(noise) if not noise.is_clean else "no noise")
            + f" · {m_noisy['psnr'].mean():.1f} dB",
        )
        for name, out in outputs.items():
            widgets.image_row(name, out, f"{about[name]} · {scores[name]['psnr'].mean():.1f} dB")
    cards = st.columns(len(outputs) + 1)
    cards[0].metric(
        "Noisy input: PSNR",
        f"{m_noisy['psnr'].mean():.1f} dB",
        help="Peak signal-to-noise ratio against the clean image, mean over the "
        "images shown. Higher is better; +3 dB halves the squared error.",
    )
    helps = {
        "Model output": f"The model shown, {trained_for}.",
        f"PCA, {k} values": "PCA: the best linear code with as many values as the model's, "
        "computed from the training images in closed form, with no training loop. The "
        "model is worth its training where it beats this.",
        **{
            name: f"A classical filter: {f.about}."
            + (
                f" Its strength is the best of a small grid on {TUNE_IMAGES} training images "
                "with this noise, never on the images shown."
                if len(f.strengths) > 1
                else ""
            )
            for name, f in CLASSICAL_FILTERS.items()
        },
    }
    labels = {
        f"PCA, {k} values": f"PCA-{k}",
        **{name: f.short for name, f in CLASSICAL_FILTERS.items()},
    }
    for card, (name, m) in zip(cards[1:], scores.items(), strict=True):
        label = labels.get(name, name)
        card.metric(
            f"{label}: PSNR",
            f"{m['psnr'].mean():.1f} dB",
            f"{(m['psnr'] - m_noisy['psnr']).mean():+.1f} dB vs noisy",
            help=helps[name],
        )

    if not noise.is_clean and ref.meta.get("train_noise", "none") in ("none", None):
        layout.explain(
            ":material/info: This model only ever saw clean images, so removing "
            "noise is a side effect of its narrow code. A model trained on noisy "
            "input does better: pick **denoiser-blind** (trained on every level from 0 "
            "to 0.6) or **denoiser** (trained at 0.5), or train with *training noise* on "
            "the Train page."
        )
    short = {"Model output": "model", f"PCA, {k} values": f"PCA-{k}"}
    rows = {"noisy": m_noisy, **{short.get(n, n): m for n, m in scores.items()}}
    per_image = pd.DataFrame(
        [m["psnr"].tolist() for m in rows.values()] + [m["ssim"].tolist() for m in rows.values()],
        index=[f"PSNR {n} (dB)" for n in rows] + [f"SSIM {n}" for n in rows],
        columns=[name.split(" ")[0] for name in picked.names],
    )
    # rounded, not styled: a pandas Styler renders HTML first, a tenth of this run's time
    st.dataframe(per_image.round(2), width="stretch")
    st.caption(
        "Per image, left to right as above. PSNR and SSIM compare each version with "
        "the clean original; higher is better for both (SSIM: 1 means identical structure)."
    )

    st.subheader("What learning buys: quality against noise level")
    c1, c2 = st.columns([1, 3])
    metric = c1.radio("Measure", ["PSNR", "SSIM"], horizontal=True, key="explore_metric", bind=URL)
    kind = noise.kind if noise.kind != "none" else "gaussian"
    model_sweep = cached_sweep(ref.key, dataset, kind, ref.model)
    sweep = model_sweep.joined(
        cached_classical_sweep(
            dataset,
            kind,
            model_sweep.n_images,  # a test set smaller than the shipped curves' is measured
            state.uploaded_images(dataset, False),
            state.uploaded_images(dataset, True),
        )
    )
    c1.caption(
        f"Each point is the mean over the first {sweep.n_images} test images with "
        f"{kind} noise (seed {SWEEP_SEED}), compared with the clean images. The dashed line "
        "is the slider's level. Where the green line is above the red one, the model "
        "improves its input. Dotted lines need no learning: the classical filters (their "
        f"strength chosen at each level on {TUNE_IMAGES} training images), and PCA with "
        f"the model's code size ({k} values). The model is {trained_for}."
    )
    c2.plotly_chart(
        sweep_figure(
            sweep,
            metric.lower(),
            noise.level if noise.kind != "none" else None,
            model_name=f"model ({ref.label}, {trained_for})",
        ),
        key="explore_sweep",
    )


noisy_view()
