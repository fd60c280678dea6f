"""Activations: every layer's feature maps for one image, the code included."""

import streamlit as st

from convae import add_noise, capture_activations
from convae.figures import heatmap_grid, histogram_figure, kernel_figure, layer_strip
from convae.measuring.activations import activation_maps
from convae.measuring.filters import filter_layers, rgb_kernels, shared_limit, weight_histogram
from ui import catalogue, layout, nav, state, widgets
from ui.errors import guarded
from ui.links import URL
from ui.pad import draw_pad

ELEMENTWISE = ("ReLU", "BatchNorm2d", "Sigmoid")  # shown together with the layer before
RESHAPE = ("Flatten", "Unflatten")  # same numbers, other shape: nothing new to see
MAX_PANELS = 32
INPUTS = ["Test image", "Your drawing"]

st.title(nav.title(__file__, "Activations: inside the network"))
layout.explain(
    "Each layer turns its input into several **feature maps** (channels). Bright means "
    "a large value: the filter found its pattern there. Follow one image from the input, "
    "through the narrow code, back to the reconstruction."
)

ref = state.current_model()
dataset = st.session_state["dataset"]
test = state.require_dataset(dataset)
if not ref.trained:
    st.warning(
        "The current model is **untrained**: its feature maps are random filters. "
        "Compare them with a trained model's!",
        icon=":material/casino:",
    )


def overview_layers(names_kinds):
    """The layers worth a panel in the overview: not a reshape, not followed by an
    elementwise layer (then the later one, after ReLU/BN, is shown instead)."""
    keep = []
    for i, (name, kind) in enumerate(names_kinds):
        nxt = names_kinds[i + 1][1] if i + 1 < len(names_kinds) else None
        if kind in RESHAPE or nxt in ELEMENTWISE:
            continue
        keep.append(name)
    return keep


def shape_text(t) -> str:
    return " x ".join(map(str, t.shape[1:]))


@st.fragment
@guarded
def activation_view():
    c_src, c_img, c_noise = st.columns([1.2, 1, 3], vertical_alignment="bottom")
    source = c_src.radio("Input", INPUTS, key="act_source", bind=URL, horizontal=True)
    if source == INPUTS[0]:
        index = int(
            c_img.number_input(
                f"Test image (0-{len(test) - 1})", 0, len(test) - 1, 0, key="act_index", bind=URL
            )
        )
    with c_noise:
        noise, seed = widgets.noise_controls("act", default_kind="none", default_level=0.3)
    if source == INPUTS[0]:
        clean = test.floats(slice(index, index + 1))
        what = f"test image #{index}"
    else:
        drawn = draw_pad("act_pad", dataset, test.shape)
        if drawn is None:
            return
        clean, what = drawn[None], "your drawing"
    x = add_noise(clean, noise.kind, noise.level, seed=seed)
    model = catalogue.private_copy(ref.model)  # hooks go on a copy, never on a shared model
    acts = capture_activations(model, x)
    layers = model.named_layers()
    kinds = {n: type(m).__name__ for n, m in layers}
    code_layer = model.code_layer

    # -- overview: one panel per main layer
    shown = ["input", *overview_layers([(n, kinds[n]) for n, _ in layers])]
    panels = []
    for name in shown:
        maps = activation_maps(acts[name][0])
        short = name.split(".")[-1] + (" = code" if name == code_layer else "")
        panels.append(
            (
                f"<b>{short}</b><br>{shape_text(acts[name]).replace(' x ', '×')}",
                maps.mean(0).numpy() if len(maps) > 1 else maps[0].numpy(),
            )
        )
    st.subheader(f"The journey of {what}" + ("" if noise.is_clean else f" with {noise} noise"))
    st.plotly_chart(layer_strip(panels), key="act_strip")
    st.caption(
        "Left to right: the encoder shrinks the picture into the code, the decoder "
        "grows it back. Each panel averages the layer's channels and is scaled to its "
        "own range (a summary: pick a layer below to see every channel)."
    )

    # -- one layer in detail
    st.subheader("One layer, channel by channel")
    options = ["input", *[n for n, _ in layers], "output"]
    labels = {n: f"{n}  ({shape_text(acts[n])})" for n in options}
    labels[code_layer] = f"{code_layer}  = the code ({shape_text(acts[code_layer])})"
    c_layer, c_range, c_scale = st.columns([2, 2.4, 0.9], vertical_alignment="bottom")
    if st.session_state.get("act_layer") not in options:
        st.session_state["act_layer"] = code_layer
    layer = c_layer.selectbox("Layer", options, key="act_layer", format_func=labels.get, bind=URL)
    maps = activation_maps(acts[layer][0])
    n = len(maps)
    if n > 1:
        hi = min(n, MAX_PANELS) - 1
        lo_ch, hi_ch = c_range.slider(
            f"Channels (this layer has {n}; up to {MAX_PANELS} at a time)",
            0,
            n - 1,
            (0, min(hi, 15)),
            key=f"act_channels_{n}",
            bind=URL,
        )
        if hi_ch - lo_ch + 1 > MAX_PANELS:
            hi_ch = lo_ch + MAX_PANELS - 1
            c_range.caption(f"Showing channels {lo_ch}-{hi_ch} (the first {MAX_PANELS}).")
    else:
        lo_ch, hi_ch = 0, 0
        c_range.caption("This layer has a single channel.")
    shared = c_scale.toggle(
        "Shared scale",
        value=True,
        key="act_shared",
        bind=URL,
        help="On: brightness means the same value in every panel. Off: "
        "each panel uses its own range, so faint patterns show.",
    )
    rgb = layer in ("input", "output") and maps.shape[0] == 3
    titles = [("R", "G", "B")[c] if rgb else f"channel {c}" for c in range(lo_ch, hi_ch + 1)]
    sel = maps[lo_ch : hi_ch + 1]
    c_fig, c_info = st.columns([4, 1])
    with c_fig:
        st.plotly_chart(
            heatmap_grid(sel, titles, cols=8, shared_scale=shared, width=650), key="act_detail"
        )
    with c_info:
        widgets.picture(x, "the input image", scale=4)
        finite = sel[sel.isfinite()]
        zero = (finite == 0).float().mean().item() if finite.numel() else 0.0
        st.caption(
            f"**{labels[layer]}**  \nvalues {finite.min():.2f} to {finite.max():.2f}, "
            f"mean {finite.mean():.2f}; {zero:.0%} exactly zero "
            "(after a ReLU, zero means the filter did not fire)."
        )
        if rgb:
            st.caption("Colour images have three input channels: red, green and blue.")


activation_view()


@st.fragment
@guarded
def filters_view():
    st.subheader("Learned filters: the patterns each layer looks for")
    layers = {f.name: f for f in filter_layers(ref.model)}
    twins = (
        {f.name: f for f in filter_layers(catalogue.untrained_model(ref.arch, test.shape))}
        if ref.trained
        else {}
    )
    c_layer, c_scale = st.columns([3, 1.2], vertical_alignment="bottom")
    if st.session_state.get("act_filter_layer", name := next(iter(layers))) not in layers:
        st.session_state["act_filter_layer"] = name  # a layer of the previous architecture
    name = c_layer.selectbox(
        "Layer's weights",
        list(layers),
        key="act_filter_layer",
        format_func=lambda n: f"{n}  ({layers[n].shape_text})",
        bind=URL,
    )
    same = c_scale.toggle(
        "Same scale for both",
        value=False,
        key="act_filter_same",
        bind=URL,
        disabled=not twins,
        help="On: a colour means the same weight in both models (training grows the "
        "weights: the untrained ones turn pale). Off: each model uses its own range, so "
        "the untrained model's random pattern shows too.",
    )
    shown = [(f"This model: {ref.label}", layers[name])]
    if twins:
        shown.append(("The same architecture, untrained (random start)", twins[name]))
    limit = shared_limit([f for _, f in shown]) if same else None
    for n, (col, (title, f)) in enumerate(zip(st.columns(len(shown)), shown, strict=True)):
        with col:
            st.markdown(f"**{title}**")
            end = limit or f.limit
            if f.rgb:
                kh = f.kernels.shape[-1]
                widgets.picture(rgb_kernels(f, end), scale=max(1, min(12, 64 // kh)), nrow=8)
                scale = f"mid-grey = 0, full colour = ±{end:.2f}"
            else:
                st.plotly_chart(kernel_figure(f, end, width=520), key=f"act_filters_{n}")
                scale = f"colour scale ±{end:.2f}"
            st.caption(
                f"weights {f.kernels.min():.2f} to {f.kernels.max():.2f}; {scale}, "
                "the same for every kernel shown"
            )
    hist = weight_histogram(
        {"this model": layers[name].kernels} | ({"untrained": twins[name].kernels} if twins else {})
    )
    st.plotly_chart(histogram_figure(hist), key="act_filter_hist")
    o, i = layers[name].kernels.shape[:2]
    if layers[name].kind == "Linear":
        how = (
            "Each unit's weights over the whole image, as a picture: what the unit "
            "responds to (encoder) or what it adds to the output (decoder)."
        )
    elif layers[name].rgb:
        how = "Each filter is one colour picture: the pattern of colours it looks for."
    elif i == 1:
        how = "Each filter is the small pattern its feature map responds to."
    else:
        how = (
            f"One row per feature map this layer makes ({o}), one column per channel it "
            f"reads ({i}): a feature map adds up what its row finds in each input channel."
        )
    layout.explain(
        f"{how} Red is a positive weight, blue a negative one, white zero. Below: how many "
        "weights take each value; training spreads them out from the narrow random start."
        if twins
        else f"{how} Red is a positive weight, blue a negative one, white zero. This "
        "model is untrained: pick a pretrained one in the sidebar to see learned filters "
        "beside these random ones."
    )


filters_view()
