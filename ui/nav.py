"""The app's pages in one place, and links between them that also work when a page is run on its own
(AppTest, ``streamlit run pages/X.py``).

Icons are Material Symbols, which Streamlit bundles: they render offline and without emoji fonts. The browser
tab's icon is not one of them: Streamlit turns a Material page icon into a request to Google's font server (and an
emoji into one to an emoji CDN), so every page's favicon is :func:`favicon`, an image drawn here and served by the
app itself — a medical tool's browser talks to nobody but its own server.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError
from streamlit.navigation.page import StreamlitPage

HOME_ICON = ":material/home:"


@dataclass(frozen=True)
class Page:
    """A page of the app: its sidebar title, Material icon and what it is for (shown on the Home page)."""

    title: str
    icon: str
    description: str


# page file -> Page, in sidebar order; the URL of each page is its file name without the number prefix
PAGES = {
    "pages/1_ROC_vs_PRC.py": Page("ROC vs PRC", ":material/show_chart:", "the imbalance toy example"),
    "pages/2_Train.py": Page("Train", ":material/model_training:", "queue runs and sweeps, watch them live"),
    "pages/3_Compare.py": Page("Compare", ":material/compare_arrows:", "curves, truncation plots, seeds"),
    "pages/4_Grad-CAM.py": Page(
        "Explain", ":material/local_fire_department:", "where each cut looks (Grad-CAM), what it reuses (CKA)"
    ),
    "pages/5_Study.py": Page(
        "Study", ":material/science:", "should I transfer, and how much? The two-stage search in one action"
    ),
}


@functools.cache
def favicon():
    """The app's tab icon, drawn (a chest radiograph in a rounded square): a PIL image, which Streamlit serves
    from the app's own server."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((2, 2, 61, 61), radius=14, fill=(31, 72, 126, 255))
    d.line((32, 12, 32, 54), fill=(235, 240, 248, 255), width=4)  # the spine
    for y in (20, 29, 38):  # ribs, both sides
        d.arc((10, y - 6, 32, y + 10), 190, 300, fill=(235, 240, 248, 255), width=3)
        d.arc((32, y - 6, 54, y + 10), 240, 350, fill=(235, 240, 248, 255), width=3)
    return img


def page_setup(page: str) -> None:
    """The first call of every page: its browser title and icon from :data:`PAGES`, wide layout,
    and the app's navigation (:func:`use_app_navigation`)."""
    p = PAGES[page]
    st.set_page_config(page_title=f"{p.title} · MedTL Studio", page_icon=favicon(), layout="wide")
    use_app_navigation()


def use_app_navigation() -> None:
    """Make sure the app's own navigation (``app.py``'s ``st.navigation``) is in force.

    Until a script calls ``st.navigation``, Streamlit treats a ``pages/`` folder as the old
    multipage layout: when a fresh server's first visitor opens a page URL (``/Compare``), it runs
    that page file alone and the sidebar lists ``app`` and untitled pages. Switching that layout
    off and rerunning lets ``app.py`` run and show the page in the app's navigation. Called at the
    top of every page; a no-op once the app's navigation has run (and under AppTest).
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def link(page: str, label: str | None = None) -> None:
    """A link to ``page`` with its icon, labelled ``label`` (default: its title)."""
    p = PAGES[page]
    try:
        st.page_link(page, label=label or p.title, icon=p.icon)
    except StreamlitPageNotFoundError:  # this page is the entry point: the others are not registered
        st.markdown(f"{p.icon} {label or p.title} (page `{page}`)")


def page_list() -> None:
    """Every page of :data:`PAGES` as a link with its description under it (the Home page's map).

    The description is a caption of its own: a link's label stays on one line and is cut off in a
    narrow column, a caption wraps.
    """
    for page, p in PAGES.items():
        with st.container(gap=None):  # the caption right under its link; the pairs keep the column's gap
            link(page)
            st.caption(p.description)


def navigation(home: Callable[[], None]) -> StreamlitPage:
    """The app's navigation: ``home`` (a function) first, then every page of :data:`PAGES`."""
    pages = [st.Page(path, title=p.title, icon=p.icon) for path, p in PAGES.items()]
    return st.navigation([st.Page(home, title="Home", icon=HOME_ICON, default=True), *pages])
