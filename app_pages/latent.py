"""Latent space: a map of the codes, and a walk from one code to another."""

import streamlit as st
import torch

from convae.figures import latent_figure
from convae.latent import encode_all, interpolate, pca_2d
from ui import layout, nav, state, widgets
from ui.errors import guarded
from ui.links import URL

st.title(nav.title(__file__, "Latent space: the map of codes"))
layout.explain(
    "Every test image becomes a code (a list of numbers). Squash each code to two "
    "numbers with PCA and you get a map: similar images land near each other even "
    "though the model was never told the classes."
)

ref = state.current_model()
dataset = st.session_state["dataset"]
test = state.require_dataset(dataset)
if not ref.trained:
    st.warning(
        "The current model is **untrained**: its codes are random projections, so "
        "the classes will hardly separate.",
        icon=":material/casino:",
    )


@st.cache_data(show_spinner="Encoding the test images...", max_entries=16)
def projection(model_key: str, dataset: str, n: int, _model):
    images = state.get_dataset(dataset).images[:n]
    return pca_2d(encode_all(_model, images))


c_n, c_a, c_b, _ = st.columns([1.3, 1, 1, 1.7])
n = c_n.select_slider(
    "Test images on the map", [500, 1000, 2000, 5000, 10000], 2000, key="latent_n", bind=URL
)
n = min(n, len(test))
last = len(test) - 1
a = int(c_a.number_input(f"Image A (0-{last})", 0, last, 0, key="latent_a", bind=URL))
b = int(c_b.number_input(f"Image B (0-{last})", 0, last, 1, key="latent_b", bind=URL))

pca = projection(ref.key, dataset, n, ref.model)
codes_ab = encode_all(ref.model, test.images[[a, b]])
pts_ab = ((codes_ab - pca.mean) @ pca.components.T).tolist()

left, right = st.columns([2.6, 1])
with left:
    fig = latent_figure(
        pca, test.labels[:n], test.classes, marks=[("A", *pts_ab[0]), ("B", *pts_ab[1])], path=True
    )
    st.plotly_chart(fig, key="latent_map")
with right:
    e1, e2 = pca.explained
    st.metric(
        "Variance shown by the map",
        f"{e1 + e2:.0%}",
        help="How much of the codes' spread the two PCA axes capture. The rest is "
        "hidden: points that overlap here may still be apart in the full code.",
    )
    st.caption(
        f"{n:,} test images, each a {ref.model.latent_size}-value code, projected on "
        "the two directions along which the codes vary most (PCA). Colour is the true "
        "class, which the model never saw. Hover a point for its class and index; "
        "click legend entries to hide classes."
    )
    st.caption(
        "The stars are images A and B; the dashed line is the straight path between "
        "their codes used below."
    )


@st.fragment
@guarded
def morph():
    st.subheader("Morph A into B through the code")
    t = st.slider("Position between A (0) and B (1)", 0.0, 1.0, 0.5, 0.05, key="latent_t", bind=URL)
    x_a, x_b = test.floats(a), test.floats(b)
    steps = torch.linspace(0, 1, 9)
    with state.inference():
        walk = interpolate(ref.model, x_a, x_b, steps).clamp(0, 1)
        here = interpolate(ref.model, x_a, x_b, [t]).clamp(0, 1)
    blend = (1 - t) * x_a + t * x_b
    cols = st.columns(4)
    widgets.picture(
        x_a[None], scale=5, where=cols[0], caption=f"A: #{a} ({test.classes[int(test.labels[a])]})"
    )
    widgets.picture(here, f"decoded code at {t:.2f}", scale=5, where=cols[1])
    widgets.picture(blend[None], f"pixel cross-fade at {t:.2f}", scale=5, where=cols[2])
    widgets.picture(
        x_b[None], scale=5, where=cols[3], caption=f"B: #{b} ({test.classes[int(test.labels[b])]})"
    )
    widgets.picture(walk, "9 steps from A to B through the code", scale=4)
    st.caption(
        "Mixing the *codes* and decoding gives images the decoder finds plausible; "
        "mixing the *pixels* just overlays two pictures. With a trained model the "
        "middle steps look more like strokes than like a double exposure."
    )


morph()
