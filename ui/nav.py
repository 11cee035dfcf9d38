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
    "pages/4_Grad-CAM.py": ("Grad-CAM", ":material/local_fire_department:"),
}


def link(page: str, label: str) -> None:
    icon = PAGES[page][1]
    try:
        st.page_link(page, label=label, icon=icon)
    except StreamlitPageNotFoundError:  # this page is the entry point: the others are not registered
        st.markdown(f"{icon} {label} (page `{page}`)")
