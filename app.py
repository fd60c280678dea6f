"""convae's web app: see what a convolutional autoencoder does.

Run with ``streamlit run app.py``. This file only routes: page setup, session state
(initialised here, in one place), the view carried by the link, the shared sidebar,
then the chosen page.
"""

from pathlib import Path

import streamlit as st
import torch

from ui.warm import import_everything

import_everything()  # before any session's thread imports a library half-way (ui/warm.py)

from ui import errors, layout, links, nav, sidebar, state  # noqa: E402

# the icon is a local file: a Material icon here would be fetched from Google's servers
st.set_page_config(
    page_title="convae: see an autoencoder think",
    page_icon=str(Path(__file__).parent / "ui" / "favicon.png"),
    layout="wide",
    initial_sidebar_state="auto",
)

# The pages run small batches: one thread answers fastest and leaves the other core to
# a training job or another user (two threads on a busy 2-core CPU wait on each other).
torch.set_num_threads(1)

state.init_state()
opened_with = links.snapshot() if links.first_run() else None

# The pages live in app_pages/, not pages/: Streamlit would take a pages/ folder for an
# old-style multipage app and, on a server's first run, run a deep-linked page without
# this router. Each page's URL path is its file name (/explore, /activations, ...).
PAGES = [st.Page(p.file, title=p.title, icon=p.icon, default=p is nav.PAGES[0]) for p in nav.PAGES]
page = st.navigation(PAGES)

unused: list[str] = []
try:
    if opened_with is not None:
        unused = sidebar.apply_link()
    layout.apply_css()
    sidebar.render()
    page.run()
except Exception as e:  # st.stop/st.rerun are BaseExceptions and pass through
    if errors.debug():
        raise
    errors.show(e)
finally:  # also after a page's st.stop(): a link is checked once, when it is opened
    if opened_with is not None:
        links.check(opened_with, unused)
    links.show_notice()
