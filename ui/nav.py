"""Links between pages that also work when a page is run on its own (AppTest, ``streamlit run pages/X.py``)."""

from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError


def link(page: str, label: str, icon: str | None = None) -> None:
    try:
        st.page_link(page, label=label, icon=icon)
    except StreamlitPageNotFoundError:  # this page is the entry point: the others are not registered
        st.markdown(f"{icon or ''} {label} (page `{page}`)")
