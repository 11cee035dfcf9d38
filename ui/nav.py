"""The app's pages in one place, and links between them that also work when a page is run on its own
(AppTest, ``streamlit run pages/X.py``).

Icons are Material Symbols, which Streamlit bundles: they render offline and without emoji fonts.
"""

from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

HOME_ICON = ":material/home:"
# page file -> (sidebar title, icon); the URL of each page is its file name without the number prefix
PAGES = {
    "pages/1_ROC_vs_PRC.py": ("ROC vs PRC", ":material/show_chart:"),
    "pages/2_Train.py": ("Train", ":material/model_training:"),
    "pages/3_Compare.py": ("Compare", ":material/compare_arrows:"),
    "pages/4_Grad-CAM.py": ("Explain", ":material/local_fire_department:"),
    "pages/5_Study.py": ("Study", ":material/science:"),
}


def page_setup(page: str) -> None:
    """The first call of every page: its browser title and icon from :data:`PAGES`, wide layout,
    and the app's navigation (:func:`use_app_navigation`)."""
    title, icon = PAGES[page]
    st.set_page_config(page_title=f"{title} · MedTL Studio", page_icon=icon, layout="wide")
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


def link(page: str, label: str) -> None:
    icon = PAGES[page][1]
    try:
        st.page_link(page, label=label, icon=icon)
    except StreamlitPageNotFoundError:  # this page is the entry point: the others are not registered
        st.markdown(f"{icon} {label} (page `{page}`)")
