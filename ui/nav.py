"""The app's pages, in one place: the router (``app.py``) and Home's links use it.

Icons are Streamlit's bundled Material Symbols, which render on any machine (emoji need
a font that many school and server images lack).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PageInfo:
    file: str
    title: str
    icon: str
    blurb: str  # one line for Home's "Where next"


PAGES = [
    PageInfo(
        "app_pages/home.py",
        "Home",
        ":material/home:",
        "What an autoencoder is, shown with the current model.",
    ),
    PageInfo(
        "app_pages/explore.py",
        "Denoise & explore",
        ":material/blur_on:",
        "Add noise with a slider; see the clean-up.",
    ),
    PageInfo(
        "app_pages/activations.py",
        "Activations",
        ":material/layers:",
        "Look at every layer's feature maps.",
    ),
    PageInfo(
        "app_pages/compare.py",
        "Compare models",
        ":material/compare:",
        "Decoders side by side; checkerboards.",
    ),
    PageInfo(
        "app_pages/latent.py",
        "Latent space",
        ":material/scatter_plot:",
        "Map of all codes; morph one digit into another.",
    ),
    PageInfo(
        "app_pages/limits.py",
        "What it cannot reconstruct",
        ":material/report:",
        "Its worst test images; spotting images it never learned.",
    ),
    PageInfo(
        "app_pages/train.py",
        "Train",
        ":material/model_training:",
        "Train your own model in seconds.",
    ),
    PageInfo(
        "app_pages/board.py",
        "Class challenge",
        ":material/leaderboard:",
        "Submit your model; a live board ranks the class.",
    ),
]
_BY_NAME = {Path(p.file).name: p for p in PAGES}


def title(file: str, text: str | None = None) -> str:
    """A page's title with its icon, for ``st.title(nav.title(__file__))``."""
    page = _BY_NAME[Path(file).name]
    return f"{page.icon} {text or page.title}"
