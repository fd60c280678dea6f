"""Denoise & explore: corrupt test images, watch the model clean them up."""

import pandas as pd
import streamlit as st

from convae import add_noise, image_metrics
from convae.denoise import CLASSICAL_FILTERS, noise_sweep
from convae.figures import sweep_figure
from ui import catalogue, layout, nav, state, widgets
from ui.errors import guarded
from ui.links import URL

SWEEP_IMAGES = 256
SWEEP_SEED = 0  # the curve's noise; the slider's seed only changes the pictures above
SWEEP_LEVELS = [0.05, *(round(0.1 * i, 2) for i in range(1, 11))]  # 0 would be a perfect copy

st.title(nav.title(__file__))
layout.explain(
    "Take test images the model never saw, add noise, and compare what comes out of "
    "the autoencoder with the clean original. A classical filter (no learning) is "
    "shown too, so you can see what learning buys."
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
# (about 1.5 s of CPU) and shared by every session: with the slider's seed in its key,
# each student trying a seed cost the whole class a second and a half.
@st.cache_data(show_spinner="Measuring the model at 11 noise levels...", max_entries=64)
def cached_sweep(model_key: str, dataset: str, kind: str, _model):
    images = state.get_dataset(dataset).floats(slice(0, SWEEP_IMAGES))
    k = _model.latent_size
    references = {f"PCA-{k}": catalogue.pca_model(dataset, k)}
    return noise_sweep(_model, images, kind, SWEEP_LEVELS, seed=SWEEP_SEED, references=references)


@st.fragment
@guarded
def noisy_view():
    noise, seed = widgets.noise_controls("explore")
    filt_name = st.session_state.get("explore_filter", next(iter(CLASSICAL_FILTERS)))
    x = picked.images
    noisy = add_noise(x, noise.kind, noise.level, seed=seed)
    k = ref.model.latent_size
    pca = catalogue.pca_model(dataset, k)
    with state.inference():
        out = ref.model(noisy).clamp(0, 1)
        filtered = CLASSICAL_FILTERS[filt_name](noisy)
        pca_out = pca(noisy)
    m_noisy, m_out, m_filt, m_pca = (image_metrics(v, x) for v in (noisy, out, filtered, pca_out))

    with layout.main_picture():
        widgets.image_row("Original", x, picked.about)
        widgets.image_row(
            "Noisy input",
            noisy,
            (str(noise) if not noise.is_clean else "no noise")
            + f" · {m_noisy['psnr'].mean():.1f} dB",
        )
        widgets.image_row("Model output", out, f"{ref.label} · {m_out['psnr'].mean():.1f} dB")
        widgets.image_row(
            f"PCA, {k} values",
            pca_out,
            f"same code size, no training · {m_pca['psnr'].mean():.1f} dB",
        )
        widgets.image_row(
            filt_name, filtered, f"classical filter, no learning · {m_filt['psnr'].mean():.1f} dB"
        )
    cards = st.columns(5)
    cards[0].metric(
        "Noisy input: PSNR",
        f"{m_noisy['psnr'].mean():.1f} dB",
        help="Peak signal-to-noise ratio against the clean image, mean over the "
        "images shown. Higher is better; +3 dB halves the squared error.",
    )
    cards[1].metric(
        "Model output: PSNR",
        f"{m_out['psnr'].mean():.1f} dB",
        f"{(m_out['psnr'] - m_noisy['psnr']).mean():+.1f} dB vs noisy",
    )
    cards[2].metric(
        f"{filt_name}: PSNR",
        f"{m_filt['psnr'].mean():.1f} dB",
        f"{(m_filt['psnr'] - m_noisy['psnr']).mean():+.1f} dB vs noisy",
    )
    cards[3].metric(
        f"PCA ({k} values): PSNR",
        f"{m_pca['psnr'].mean():.1f} dB",
        f"{(m_pca['psnr'] - m_noisy['psnr']).mean():+.1f} dB vs noisy",
        help="PCA: the best linear code with as many values as the model's, computed from "
        "the training images in closed form, with no training loop. The model is worth "
        "its training where it beats this.",
    )
    cards[4].metric(
        "Model output: SSIM",
        f"{m_out['ssim'].mean():.3f}",
        f"{(m_out['ssim'] - m_noisy['ssim']).mean():+.3f} vs noisy",
        help="Structural similarity: 1 means identical structure, 0 unrelated.",
    )

    if not noise.is_clean and ref.meta.get("train_noise", "none") in ("none", None):
        layout.explain(
            ":material/info: This model only ever saw clean images, so removing "
            "noise is a side effect of its narrow code. A model trained on noisy "
            "input does better: pick the **denoiser** architecture, or train with "
            "*training noise* on the Train page."
        )
    per_image = pd.DataFrame(
        [
            m_noisy["psnr"].tolist(),
            m_out["psnr"].tolist(),
            m_filt["psnr"].tolist(),
            m_pca["psnr"].tolist(),
            m_noisy["ssim"].tolist(),
            m_out["ssim"].tolist(),
            m_filt["ssim"].tolist(),
            m_pca["ssim"].tolist(),
        ],
        index=[
            "PSNR noisy (dB)",
            "PSNR model (dB)",
            f"PSNR {filt_name} (dB)",
            f"PSNR PCA-{k} (dB)",
            "SSIM noisy",
            "SSIM model",
            f"SSIM {filt_name}",
            f"SSIM PCA-{k}",
        ],
        columns=[name.split(" ")[0] for name in picked.names],
    )
    # rounded, not styled: a pandas Styler renders HTML first, a tenth of this run's time
    st.dataframe(per_image.round(2), width="stretch")
    st.caption(
        "Per image, left to right as above. PSNR and SSIM compare each version with "
        "the clean original; higher is better for both."
    )

    st.subheader("What learning buys: quality against noise level")
    c1, c2 = st.columns([1, 3])
    metric = c1.radio("Measure", ["PSNR", "SSIM"], horizontal=True, key="explore_metric", bind=URL)
    c1.selectbox(
        "Classical filter shown above", list(CLASSICAL_FILTERS), key="explore_filter", bind=URL
    )
    kind = noise.kind if noise.kind != "none" else "gaussian"
    sweep = cached_sweep(ref.key, dataset, kind, ref.model)
    c1.caption(
        f"Each point is the mean over the first {sweep.n_images} test images with "
        f"{kind} noise (seed {SWEEP_SEED}), compared with the clean images. The dashed line "
        "is the slider's level. Where the green line is above the red one, the model "
        "improves its input. Dotted lines need no learning: classical filters, and PCA "
        f"with the model's code size ({ref.model.latent_size} values)."
    )
    c2.plotly_chart(
        sweep_figure(
            sweep,
            metric.lower(),
            noise.level if noise.kind != "none" else None,
            model_name=f"model ({ref.label})",
        ),
        key="explore_sweep",
    )


noisy_view()
