"""Compare: several models on the same images and the same noise."""

import pandas as pd
import streamlit as st
import torch

from convae import CheckpointError, add_noise, image_metrics
from convae.figures import heatmap_grid, normalise
from convae.measuring.checkerboard import checkerboard_share, checkerboard_strength, decode_constant
from ui import baselines, catalogue, layout, nav, state, widgets
from ui.baselines import TEST_IMAGES
from ui.errors import guarded
from ui.links import URL

st.title(nav.title(__file__))
layout.explain(
    "Several models, the same test images, the same noise. The table says which "
    "reconstructs best; the checkerboard section shows *how* the decoders differ."
)

dataset = st.session_state["dataset"]
test = state.require_dataset(dataset)
choices = {**catalogue.model_choices(dataset), **catalogue.pca_choices(dataset)}


def default_selection() -> list[str]:
    picks = []
    for arch in ("conv-transpose", "conv-upsample"):
        trained = [i for i, c in choices.items() if i.startswith("file:") and c.arch == arch]
        picks.append(trained[0] if trained else f"untrained:{arch}")
    return picks


selected = st.multiselect(
    "Models to compare (pick two or more)",
    list(choices),
    default=default_selection(),
    key=f"compare_models_{dataset}",
    bind=URL,
    format_func=lambda i: choices[i].full_label if i in choices else i,
    help="Pretrained checkpoints, your session's models, untrained versions of every "
    "architecture, and PCA with each code size (the best linear code, no training), all "
    "for the dataset chosen in the sidebar.",
)
if len(selected) < 2:
    st.info("Pick at least two models to compare.", icon=":material/touch_app:")
    st.stop()

refs = []
for mid in selected:
    try:
        refs.append(catalogue.resolve(mid, dataset))
    except CheckpointError as e:
        st.warning(f"{choices[mid].full_label if mid in choices else mid} is left out: {e}")
if len(refs) < 2:
    st.info(
        "Fewer than two of the chosen models can be used: pick another one.",
        icon=":material/touch_app:",
    )
    st.stop()


def short_name(ref) -> str:
    return choices[ref.id].label if ref.id in choices else ref.label


def name(ref) -> str:
    return f"{ref.arch} · {short_name(ref)}"


picked = widgets.pick_images(test, "compare", default_count=6)
if picked is None:
    st.stop()


@st.fragment
@guarded
def side_by_side():
    noise, seed = widgets.noise_controls("compare", default_level=0.2)
    x = picked.images
    noisy = add_noise(x, noise.kind, noise.level, seed=seed)
    widgets.image_row("Original", x, "clean", label_width=1.4)
    if not noise.is_clean:
        widgets.image_row("Noisy input", noisy, str(noise), label_width=1.4)
    rows = []
    for ref in refs:
        with state.inference():
            out = ref.model(noisy).clamp(0, 1)
        m = image_metrics(out, x)
        trained_for = baselines.trained_for(ref)
        widgets.image_row(ref.arch, out, f"{short_name(ref)} · {trained_for}", label_width=1.4)
        ev = baselines.clean_quality(ref, dataset)
        rows.append(
            {
                "model": name(ref),
                "trained on": trained_for.removeprefix("trained on "),
                "parameters": ref.model.num_params,
                "code size": ref.model.latent_size,
                "PSNR here (dB)": m["psnr"].mean().item(),
                "SSIM here": m["ssim"].mean().item(),
                f"PSNR clean, {TEST_IMAGES} test images (dB)": ev["psnr"],
                # with a code as large as the image PCA keeps it all: nothing to compare
                "vs PCA (dB)": baselines.vs_pca(ref, dataset)
                if baselines.compresses(ref)
                else None,
                f"SSIM clean, {TEST_IMAGES} test images": ev["ssim"],
            }
        )
    measured = [k for k in rows[0] if ("PSNR" in k or "SSIM" in k)]
    st.dataframe(
        pd.DataFrame(rows)
        .style.format(precision=2)
        .highlight_max(subset=measured, color="#c8f0d8"),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        f"“Here” = the {len(x)} images above with the noise above. The clean columns: "
        f"the first {TEST_IMAGES} test images, the same for every model. Best in each column "
        "is highlighted. “vs PCA”: the clean PSNR minus that of PCA with the same code size "
        "(a linear projection, no training); negative = below PCA."
    )
    note = baselines.below_pca_summary(refs, [name(r) for r in refs], dataset)
    if note:
        layout.explain(note)


side_by_side()

st.header(":material/grid_on: Checkerboard artifacts: transposed convolution vs upsampling")
st.markdown(
    "A **transposed convolution** with stride 2 paints each output pixel with one of a few "
    "kernel positions, so it can print a repeating grid: the *checkerboard artifact* "
    "(worse when the kernel size is not a multiple of the stride, so neighbours overlap "
    "unevenly). **Nearest upsampling followed by a convolution** treats every pixel alike "
    "and cannot print a grid. Two ways to see it:"
)
tab_const, tab_zoom = st.tabs(["1 · Decode a blank code", "2 · Zoom in on a reconstruction"])


@st.fragment
@guarded
def constant_code():
    st.caption(
        "Every value of the code is set to the same number, so the code carries no "
        "picture: whatever pattern comes out is printed by the decoder itself. Each "
        "output is contrast-stretched to show it. Under it: how much of the output's "
        "variation repeats every 4 pixels (0% = no grid), and the grid's real size in "
        "pixel values before stretching (one grey level is 1/255 = 3.9e-03)."
    )
    value = st.slider(
        "Value of every code entry", 0.0, 2.0, 1.0, 0.1, key="compare_const", bind=URL
    )
    shape = state.dataset_shape(dataset)
    shown, captions = [], []
    twins = {}
    decoders = [r for r in refs if r.kind != "pca"]  # PCA has no decoder of its own to test
    for ref in decoders:
        twins.setdefault(f"{ref.arch} untrained", catalogue.untrained_model(ref.arch, shape))
    models = [(name(r), r.model) for r in decoders if r.trained] + list(twins.items())
    for label, model in models:
        out = decode_constant(model, value)
        shown.append(normalise(out)[0])
        captions.append(
            f"{label} — grid: {checkerboard_share(out):.0%} of the variation, "
            f"size {checkerboard_strength(out):.1e}"
        )
    cols = st.columns(len(shown))
    for col, img, cap in zip(cols, shown, captions, strict=True):
        widgets.picture(img.unsqueeze(0), cap, scale=6, where=col)


@st.fragment
@guarded
def zoom():
    st.caption(
        "The centre of each model's reconstruction of the first image above (clean "
        "input), enlarged, with the error |output - original| underneath. A grid in "
        "the error that follows the 2- and 4-pixel structure is the artifact."
    )
    x = picked.images[:1]
    h = x.shape[-1]
    crop = slice(h // 4, h - h // 4)
    outs, errs, titles = [], [], []
    for ref in refs:
        with state.inference():
            out = ref.model(x).clamp(0, 1)
        outs.append(out[0, :, crop, crop])
        errs.append((out - x).abs()[0].mean(0)[crop, crop])
        titles.append(name(ref))
    cols = st.columns(len(outs) + 1)
    widgets.picture(x[:, :, crop, crop], "original (centre)", scale=10, where=cols[0])
    for col, o, t in zip(cols[1:], outs, titles, strict=True):
        widgets.picture(o.unsqueeze(0), t, scale=10, where=col)
    st.plotly_chart(
        heatmap_grid(
            torch.stack(errs),
            titles,
            cols=len(errs),
            colorscale="Inferno",
            width=1000,
            max_panel=300,
        ),
        key="compare_err",
    )


with tab_const:
    constant_code()
with tab_zoom:
    zoom()
