"""Home: what an autoencoder is, shown with the current model."""

import pandas as pd
import streamlit as st

from convae import DatasetError, image_metrics
from convae.model_code import loading_source, pytorch_source
from convae.nn.layers import compression, layer_table
from ui import baselines, catalogue, layout, nav, own_images, state, widgets
from ui.links import URL

ref = state.current_model()
dataset = st.session_state["dataset"]
comp = compression(ref.model)

st.title(nav.title(__file__, "What does an autoencoder do?"))
if not layout.presenting():  # on the projector, the teacher says it
    st.markdown(
        "An **autoencoder** is a neural network trained to output its own input. The catch: "
        "in the middle the picture must pass through a narrow **code**, much smaller than the "
        "image. The **encoder** learns to squeeze out what matters; the **decoder** learns to "
        "rebuild the picture from that summary. Nobody tells it what matters: it learns from "
        "the images alone. Because it keeps the shapes and forgets the specks, the same trick "
        "**removes noise**."
    )

st.subheader(f"One image through the current model: {ref.label}")
try:
    test = state.get_dataset(dataset)
except DatasetError as e:
    state.missing_message(dataset, e)
    test = None

if test is not None:
    with layout.main_picture():
        pick_col, _ = st.columns([2, 3])
        index = pick_col.slider(
            "Test image",
            0,
            len(test) - 1,
            0,
            key="home_index",
            bind=URL,
            help="Slide (or use the arrow keys) to send another test image through the model.",
        )
        x = test.floats(slice(index, index + 1))
        with state.inference():
            code = ref.model.encode(x)
            out = ref.model.decode(code).clamp(0, 1)
        m = image_metrics(out, x)
        tiles = widgets.code_as_images(code[0])
        nrow = 2 if len(tiles) == 4 else min(4, len(tiles))
        # the code picture as large as the input picture (140 px), whatever the code's shape
        tile_scale = max(2, 140 // (nrow * tiles.shape[-1]))
        pca = catalogue.pca_model(dataset, comp.code_size)
        with state.inference():
            pca_out = pca(x)
        m_pca = image_metrics(pca_out, x)
        cols = st.columns([1.1, 0.6, 1.2, 0.6, 1.1, 1.1], vertical_alignment="center")
        widgets.picture(x, f"input: {comp.input_size} numbers", scale=5, where=cols[0])
        cols[1].markdown("### :material/arrow_forward:\n**encoder**")
        widgets.picture(
            tiles,
            f"code: {comp.code_size} numbers "
            f"({' x '.join(map(str, comp.code_shape))}), as grey maps",
            nrow=nrow,
            scale=tile_scale,
            where=cols[2],
        )
        cols[3].markdown("### :material/arrow_forward:\n**decoder**")
        widgets.picture(
            out, f"reconstruction: PSNR {m['psnr'].item():.1f} dB", scale=5, where=cols[4]
        )
        widgets.picture(
            pca_out,
            f"PCA with the same {comp.code_size} values, no training: "
            f"PSNR {m_pca['psnr'].item():.1f} dB",
            scale=5,
            where=cols[5],
        )
        layout.explain(
            "Right: PCA, the classical reference. It keeps the same number of values as the "
            "model's code, the best *linear* choice of them, computed from the training "
            "images in closed form, with no training loop. The autoencoder is worth its "
            "training where its reconstructions beat this one."
        )
        note = baselines.below_pca_note(ref, dataset)
        if note:
            st.info(note, icon=":material/info:")
        elif above := baselines.above_pca_note(ref, dataset):
            st.success(above, icon=":material/trending_up:")
        if not ref.trained:
            st.warning(
                "This model is **untrained** (random weights), so the reconstruction is "
                "a blur. Pick a pretrained model in the sidebar or train one on the "
                "**Train** page.",
                icon=":material/casino:",
            )

st.subheader("Inside the model")
t_layers, t_printed, t_plain, t_load = st.tabs(
    ["Layers", "As PyTorch prints it", "As plain PyTorch code", "Load this model"]
)
with t_layers:
    left, right = st.columns([2.2, 1])
    with left:
        rows = layer_table(ref.model)
        code_layer = ref.model.code_layer
        table = pd.DataFrame(
            {
                "layer": [r.name for r in rows],
                "type": [r.kind for r in rows],
                "output shape": [" x ".join(map(str, r.output_shape)) for r in rows],
                "values": [r.size for r in rows],
                "parameters": [r.params for r in rows],
                "": ["← the code" if r.name == code_layer else "" for r in rows],
            }
        )
        st.dataframe(table, hide_index=True, width="stretch", height=min(600, 38 + 35 * len(rows)))
        st.caption(
            "Output shapes are channels x height x width for one image. Each pooling "
            "halves the height and width; each upsampling doubles them."
        )
    with right:
        st.metric(
            "Code size",
            f"{comp.code_size} values",
            f"{comp.ratio_text} of the {comp.input_size}-value input",
            delta_color="off",
            delta_arrow="off",
        )
        st.metric("Parameters (weights to learn)", f"{ref.model.num_params:,}")
        st.caption(baselines.trained_for(ref).capitalize() + ".")
        clean = ref.meta.get("metrics", {}).get("clean")
        if clean:
            st.metric(
                "Test PSNR (clean input)",
                f"{clean['psnr']:.1f} dB",
                help=f"Mean over {clean.get('n', '?')} test images; higher is better, "
                "30 dB looks nearly perfect to the eye.",
            )
weights = catalogue.weights_file(ref)
with t_printed:
    st.code(str(ref.model), language=None)
    st.caption("`print(model)`: the network as PyTorch itself describes it.")
with t_plain:
    st.code(pytorch_source(ref.model, weights.name if weights else None), language="python")
    st.caption(
        "The same network in plain PyTorch, no convae needed: the same layers with the "
        "same names, so a convae checkpoint's weights load into it"
        + (" (download it from the next tab)." if weights else ".")
    )
with t_load:
    st.code(
        loading_source(
            ref.model,
            own_images.code_name(dataset),
            weights.name if weights else None,
            shipped=bool(weights and weights.shipped),
        ),
        language="python",
    )
    if weights:
        st.download_button(
            f"Download {weights.name}",
            weights.data,
            icon=":material/download:",
            file_name=weights.name,
            mime="application/octet-stream",
            key="home_download",
            on_click="ignore",
        )
    st.caption(
        "These lines load exactly the model shown on this page (`pip install` this "
        "project first), then run it on eight test images."
    )

st.subheader("Where next")
links = st.columns(len(nav.PAGES) - 1)  # one per page after Home
for col, page in zip(links, nav.PAGES[1:], strict=True):
    with col:
        st.page_link(page.file, label=page.title, icon=page.icon)
        st.caption(page.blurb)
