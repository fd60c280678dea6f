"""What the model cannot reconstruct: its worst test images, and how well the
reconstruction error tells images it learned from images it never saw."""

import pandas as pd
import streamlit as st
import torch

from convae import DatasetError, Noise
from convae.data.datasets import DATASETS, on_disk
from convae.figures import error_histogram, roc_figure
from convae.measuring.outliers import (
    detection_at,
    random_images,
    reconstruction_errors,
    roc_auc,
    roc_curve,
    threshold_at,
    worst,
)
from ui import layout, nav, state, widgets
from ui.errors import guarded
from ui.links import URL

# images of each unknown kind: enough for the AUC; a new noise level reconstructs them
# all, and 1,000 took up to 1.1 s on a busy 2-core CPU (measured)
UNKNOWN_IMAGES = 500

st.title(nav.title(__file__))
layout.explain(
    "An autoencoder only learns to rebuild what looks like its training images. Measure "
    "how far each reconstruction is from its image (the mean squared error over the "
    "pixels) and the images the model finds hard stand out, and so do images of a kind "
    "it never saw."
)

ref = state.current_model()
dataset = st.session_state["dataset"]
test = state.require_dataset(dataset)
if not ref.trained:
    st.warning(
        "The current model is **untrained**: it reconstructs nothing well, so nothing "
        "stands out. Pick a pretrained model in the sidebar.",
        icon=":material/casino:",
    )


# shared and only read (cache_data would copy them on every run)
@st.cache_resource(
    show_spinner="Reconstructing every test image (once per model)...", max_entries=8
)
def test_errors(model_key: str, dataset: str, _model) -> torch.Tensor:
    with state.inference():
        return reconstruction_errors(_model, state.get_dataset(dataset).images)


@st.cache_resource(show_spinner="Reconstructing the unknown images...", max_entries=32)
def unknown_errors(model_key: str, dataset: str, source: str, noise_spec: str, _model):
    """Errors of UNKNOWN_IMAGES images of the kind ``source`` names, with noise
    ``noise_spec`` (``"gaussian:0.3"``, ``"none"``) added."""
    noise = Noise.parse(noise_spec)
    if source == "noise":
        images = state.get_dataset(dataset).images[:UNKNOWN_IMAGES]
    elif source == "random":
        images = random_images(UNKNOWN_IMAGES, state.dataset_shape(dataset))
    else:
        images = state.get_dataset(source).images[:UNKNOWN_IMAGES]
    with state.inference():
        return reconstruction_errors(_model, images, noise)


errors = test_errors(ref.key, dataset, ref.model)
label = state.dataset_labels().get(dataset, dataset)

st.subheader("The test images it reconstructs worst")
c_k, c_m1, c_m2 = st.columns([2, 1, 1], vertical_alignment="bottom")
k = c_k.slider("How many of the worst", 4, 24, 8, key="limits_worst", bind=URL)
c_m1.metric("Typical error (median)", f"{float(errors.median()):.4f}")
c_m2.metric("1 in 100 is above", f"{threshold_at(errors, 99):.4f}")
idx = worst(errors, k)
with state.inference():
    recon = ref.model(test.floats(idx)).clamp(0, 1)
widgets.image_row(
    "Test images", test.floats(idx), ", ".join(f"#{int(i)}" for i in idx[:4]) + " ..."
)
widgets.image_row("Reconstructions", recon, "the model's output for each")
st.caption(
    "Worst first. Errors: "
    + ", ".join(
        f"#{int(i)} {test.classes[int(test.labels[i])]} {float(errors[i]):.3f}" for i in idx
    )
    + ". Unusual strokes, thick or cut-off shapes, rare styles: what the training set "
    "held too few of."
)
st.plotly_chart(
    error_histogram(
        [(f"{label} test images", errors)], lines=[(f"worst {k}", float(errors[idx[-1]]))]
    ),
    key="limits_test_hist",
)
st.caption(
    f"Every one of the {len(errors):,} test images: most are rebuilt closely, a long "
    "tail is not. The images shown above are those right of the dashed line."
)


def sources() -> dict[str, str]:
    """Kinds of images the model never learned, by id: the other datasets of the same
    picture size that this server has, the test images with noise, random pixels,
    uploads."""
    shape = state.dataset_shape(dataset)
    out = {
        name: f"{state.DATASET_LABELS.get(name, name)}: test images"
        for name, info in DATASETS.items()
        if name != dataset and info.shape == shape and on_disk(name)
    }
    out["noise"] = f"{label} test images with noise"
    out["random"] = "Random pixels"
    out["upload"] = "Your own pictures (upload)"
    return out


@st.fragment
@guarded
def unknown_check():
    st.subheader("Can the error spot images it never learned?")
    choices = sources()
    c_src, c_pct = st.columns([1.3, 2])
    source = c_src.selectbox(
        "Unknown images",
        list(choices),
        format_func=choices.get,
        key="limits_source",
        bind=URL,
        help="Images of a kind the model was not trained on: it should rebuild them badly.",
    )
    pct = c_pct.slider(
        "Alarm threshold: above the error of this % of the test images",
        50.0,
        99.9,
        95.0,
        0.1,
        key="limits_pct",
        bind=URL,
        help="Every image whose error is above the threshold is flagged as unknown.",
    )
    marks: list[tuple[str, float]] = []
    uploads = None
    if source == "upload":
        images, names = widgets.upload_images("limits_upload", test.shape)
        if not images:
            st.info(
                "Upload one or more pictures (a drawing, a photo, a digit of your own): "
                "each gets its error, and the threshold says whether it is flagged.",
                icon=":material/upload:",
            )
            return
        uploads = torch.stack(images)
        with state.inference():
            unknown = reconstruction_errors(ref.model, uploads)
        marks = [(n[:20], float(e)) for n, e in zip(names, unknown, strict=True)]
    else:
        noise = Noise()
        if source == "noise":
            noise, _ = widgets.noise_controls("limits", default_level=0.3, seed=False)
            if noise.is_clean:
                st.info("Choose a noise kind and level: clean test images are known ones.")
                return
        try:
            unknown = unknown_errors(ref.key, dataset, source, str(noise), ref.model)
        except DatasetError as e:
            state.missing_message(source, e)
            return
    threshold = threshold_at(errors, pct)
    hit = detection_at(threshold, errors, unknown)
    cols = st.columns(4)
    cols[0].metric("Threshold (error)", f"{threshold:.4f}")
    cols[1].metric(
        "Detected",
        f"{hit.detection_rate:.0%}",
        help="Share of the unknown images above the threshold: caught.",
    )
    cols[2].metric(
        "False alarms",
        f"{hit.false_alarm_rate:.1%}",
        help="Share of the ordinary test images above the threshold: flagged by mistake.",
    )
    auc = roc_auc(errors, unknown)
    cols[3].metric(
        "ROC AUC",
        f"{auc:.3f}",
        help="The chance that an unknown image has a larger error than a test image: "
        "1 is a perfect separation at some threshold, 0.5 no better than a coin.",
    )
    left, right = st.columns([1.7, 1])
    groups = [(f"{label} test images", errors)]
    if uploads is None:
        groups.append((choices[source], unknown))
    left.plotly_chart(
        error_histogram(groups, lines=[("threshold", threshold)], marks=marks), key="limits_hist"
    )
    fpr, tpr = roc_curve(errors, unknown)
    right.plotly_chart(
        roc_figure(fpr, tpr, here=(hit.false_alarm_rate, hit.detection_rate)),
        key="limits_roc",
    )
    if uploads is not None:
        with state.inference():
            rec = ref.model(uploads).clamp(0, 1)
        widgets.image_row("Your pictures", uploads)
        widgets.image_row("Reconstructions", rec)
        st.dataframe(
            pd.DataFrame(
                {
                    "picture": [n for n, _ in marks],
                    "error": [round(e, 5) for _, e in marks],
                    "flagged": ["yes" if e > threshold else "no" for _, e in marks],
                }
            ),
            hide_index=True,
        )
    st.caption(
        "Moving the threshold trades one for the other: lower catches more unknown "
        "images and flags more ordinary ones. The curve on the right is every threshold "
        "at once; the dot is the slider's. A large error says *this is not like what I "
        "learned*, never what the image is."
    )


unknown_check()
