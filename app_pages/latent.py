"""Latent space: a map of the codes, the image at any point of it, and a walk from one
code to another."""

import functools

import streamlit as st
import torch

from convae.figures import framed, latent_figure, map_click
from convae.measuring.latent import (
    PCA,
    cell_counts,
    code_map,
    decode_points,
    decoding_grid,
    encode_all,
    interpolate,
    map_extent,
)
from ui import layout, nav, pictures, state
from ui.errors import guarded
from ui.links import URL

st.title(nav.title(__file__, "Latent space: the map of codes"))
layout.explain(
    "Every test image becomes a code (a list of numbers). Squash each code to two "
    "numbers with PCA and you get a map: similar images land near each other even "
    "though the model was never told the classes. Click anywhere on the map to see "
    "what the decoder makes of that point."
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


# cache_resource, not cache_data: these tensors are only read, and cache_data would
# unpickle a private copy of them (10,000 codes: megabytes) on every run of the page.
@st.cache_resource(show_spinner="Encoding the test images (once per model)...", max_entries=8)
def all_codes(model_key: str, dataset: str, _model) -> torch.Tensor:
    """Every test image's code, (N, D): each map size is a slice of it."""
    with state.inference():
        return encode_all(_model, state.get_dataset(dataset).images)


@st.cache_resource(show_spinner=False, max_entries=32)
def latent_map(model_key: str, dataset: str, n: int, _model) -> PCA:
    return code_map(all_codes(model_key, dataset, _model)[:n])


@st.cache_resource(show_spinner=False, max_entries=64)
def tile_images(model_key: str, dataset: str, n: int, g: int, extent: tuple, _model, _pca):
    """The g x g decodings over ``extent`` of the map of the first n images (the map
    follows from the model and n): 20x20 tiles take ~0.1 s to decode, so each is made
    once."""
    with state.inference():
        return decoding_grid(_model, _pca, extent, g).clamp(0, 1)


c_n, c_a, c_b, _ = st.columns([1.3, 1, 1, 1.7])
n = c_n.select_slider(
    "Test images on the map", [500, 1000, 2000, 5000, 10000], 2000, key="latent_n", bind=URL
)
n = min(n, len(test))
last = len(test) - 1
a = int(c_a.number_input(f"Image A (0-{last})", 0, last, 0, key="latent_a", bind=URL))
b = int(c_b.number_input(f"Image B (0-{last})", 0, last, 1, key="latent_b", bind=URL))

pca = latent_map(ref.key, dataset, n, ref.model)
codes = all_codes(ref.key, dataset, ref.model)
pts_ab = pca.project(codes[[a, b]])
# the box the map shows and decodes: the points and the two stars
extent = map_extent(torch.cat([pca.points, pts_ab]))
LIMIT = 10_000.0  # typed coordinates: far beyond any code, still a finite number


def take_click(n_images: int) -> None:
    """The chart's selection, copied into the coordinate inputs (before they are drawn)."""
    event = st.session_state.get("latent_map")
    click = map_click(event.selection if event else None, n_images)
    if click is None:  # a second click on the same point clears plotly's selection
        return
    st.session_state["latent_x"] = round(min(max(click.x, -LIMIT), LIMIT), 3)
    st.session_state["latent_y"] = round(min(max(click.y, -LIMIT), LIMIT), 3)
    st.session_state["latent_hit"] = click.index


def typed() -> None:
    st.session_state["latent_hit"] = None  # a typed point is no test image's


@st.fragment
@guarded
def map_and_point():
    left, right = st.columns([2.6, 1])
    with right:
        st.markdown("**The decoder at the cross**")
        c_x, c_y = st.columns(2)
        x = c_x.number_input(
            "x", -LIMIT, LIMIT, 0.0, 0.1, "%.3f", key="latent_x", bind=URL, on_change=typed
        )
        y = c_y.number_input(
            "y", -LIMIT, LIMIT, 0.0, 0.1, "%.3f", key="latent_y", bind=URL, on_change=typed
        )
        with state.inference():
            decoded = decode_points(ref.model, pca, torch.tensor([[x, y]])).clamp(0, 1)
        hit = st.session_state.get("latent_hit")
        if isinstance(hit, int) and 0 <= hit < n:
            with state.inference():
                rec = ref.model(test.floats(hit)[None]).clamp(0, 1)
            cols = st.columns(3)
            label = test.classes[int(test.labels[hit])]
            pictures.picture(test.floats(hit)[None], f"#{hit} ({label})", 3, where=cols[0])
            pictures.picture(rec, "from its full code", 3, where=cols[1])
            pictures.picture(decoded, "from its map point", 3, where=cols[2])
            if pca.projected:
                st.caption(
                    "The map keeps two of the code's numbers' worth of information: "
                    "decoding the map point alone loses what the other directions held."
                )
        else:
            pictures.picture(decoded, f"decoded at ({x:.2f}, {y:.2f})", scale=5)
        if pca.projected:
            st.caption(
                "A point of the map stands for a whole code: the mean code plus x times "
                "the first PCA direction plus y times the second."
            )
        else:
            st.caption("This model's code has just two values: the point *is* the code.")
        e1, e2 = pca.explained
        st.metric(
            "Variance shown by the map",
            f"{e1 + e2:.0%}",
            help="How much of the codes' spread the two axes capture. The rest is hidden: "
            "points that overlap here may still be apart in the full code.",
        )
    with left:
        fig = latent_figure(
            pca,
            test.labels[:n],
            test.classes,
            marks=[("A", *pts_ab[0].tolist()), ("B", *pts_ab[1].tolist())],
            path=True,
            extent=extent,
            here=(x, y),
        )
        st.plotly_chart(
            fig,
            key="latent_map",
            on_select=functools.partial(take_click, n),
            selection_mode="points",
        )
        what = (
            "projected on the two directions along which the codes vary most (PCA)"
            if pca.projected
            else "drawn at their two values, with no projection"
        )
        st.caption(
            f"{n:,} test images, each a {ref.model.latent_size}-value code, {what}. "
            "Colour is the true class, which the model never saw. Click a point or empty "
            "space to decode it; click legend entries to hide classes. The stars are "
            "images A and B; the dashed line is the straight path between their codes "
            "used below."
        )


map_and_point()


@st.fragment
@guarded
def decodings():
    st.subheader("The map of decodings")
    c_g, c_f = st.columns([2, 1], vertical_alignment="bottom")
    g = c_g.slider("Tiles per side", 4, 20, 12, key="latent_grid", bind=URL)
    frame = c_f.checkbox(
        "Frame the empty tiles",
        True,
        key="latent_frame",
        bind=URL,
        help="A red frame marks each tile where none of the map's test images lies.",
    )
    tiles = tile_images(ref.key, dataset, n, g, extent, ref.model, pca)
    empty = cell_counts(pca.points, extent, g) == 0
    if frame:
        tiles = framed(tiles, empty)
    scale = max(1, min(3, 900 // (g * tiles.shape[-1])))
    x0, x1, y0, y1 = extent
    pictures.picture(
        tiles,
        f"The decoder's image at the centre of each of {g}x{g} tiles over the map's box, "
        f"x from {x0:.1f} to {x1:.1f} (left to right), y from {y1:.1f} to {y0:.1f} (top to "
        "bottom).",
        scale=scale,
        nrow=g,
    )
    st.caption(
        f"{int(empty.sum())} of the {g * g} tiles ({float(empty.double().mean()):.0%}) hold "
        "none of the test images. The decoder was only ever trained on codes of real "
        "images, so between and around the clusters it makes blends and smudges: a plain "
        "autoencoder's map has holes, and picking a random point does not give a new "
        "digit. (A variational autoencoder is trained to fill them.)"
    )


decodings()


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
    pictures.picture(
        x_a[None], scale=5, where=cols[0], caption=f"A: #{a} ({test.classes[int(test.labels[a])]})"
    )
    pictures.picture(here, f"decoded code at {t:.2f}", scale=5, where=cols[1])
    pictures.picture(blend[None], f"pixel cross-fade at {t:.2f}", scale=5, where=cols[2])
    pictures.picture(
        x_b[None], scale=5, where=cols[3], caption=f"B: #{b} ({test.classes[int(test.labels[b])]})"
    )
    pictures.picture(walk, "9 steps from A to B through the code", scale=4)
    st.caption(
        "Mixing the *codes* and decoding gives images the decoder finds plausible; "
        "mixing the *pixels* just overlays two pictures. With a trained model the "
        "middle steps look more like strokes than like a double exposure."
    )


morph()
