"""convae's web app: see what a convolutional autoencoder does.

Run with ``streamlit run app.py``. This file only routes: page setup, session state
(initialised here, in one place), the shared sidebar, then the chosen page.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:  # `ui` and `convae` next to this file, however it is started
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
import torch  # noqa: E402

from ui import errors, sidebar, state  # noqa: E402

st.set_page_config(page_title="convae: see an autoencoder think", page_icon="🧠",
                   layout="wide", initial_sidebar_state="expanded")

# The pages run small batches: one thread answers fastest and leaves the other core to
# a training job or another user (two threads on a busy 2-core CPU wait on each other).
torch.set_num_threads(1)

state.init_state()
# Less empty space above the title: on a projector the first screen is what people see.
st.markdown("<style>[data-testid='stMainBlockContainer']{padding-top:2.5rem}</style>",
            unsafe_allow_html=True)

# URL paths differ from the file names on purpose. Streamlit first treats a `pages/`
# folder as an old-style multipage app (always in AppTest, and on a server's very first
# run); a page whose URL matched its file name would then run on its own, without this
# router and its session state. With distinct paths that lookup fails and this script
# runs, so every page always goes through here.
PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", url_path="welcome", default=True),
    st.Page("pages/explore.py", title="Denoise & explore", icon="🔍", url_path="denoise"),
    st.Page("pages/activations.py", title="Activations", icon="🔬", url_path="inside"),
    st.Page("pages/compare.py", title="Compare models", icon="⚖️", url_path="side-by-side"),
    st.Page("pages/latent.py", title="Latent space", icon="🌌", url_path="codes"),
    st.Page("pages/train.py", title="Train", icon="🏋️", url_path="training"),
]
page = st.navigation(PAGES)

try:
    sidebar.render()
    page.run()
except Exception as e:  # st.stop/st.rerun are BaseExceptions and pass through
    if errors.debug():
        raise
    errors.show(e)
