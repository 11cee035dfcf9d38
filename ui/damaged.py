"""The damaged runs of the runs folder, said once per page in a collapsed note (never an error for the rest)."""

from __future__ import annotations

import streamlit as st

from medtl.runs import RunStore


def note(store: RunStore) -> None:
    """A collapsed list of the runs whose files cannot be read (the file and the reason each), and duplicates."""
    damaged = store.damaged()
    if damaged:
        with st.expander(f"{len(damaged)} damaged run(s): left out here", icon=":material/broken_image:"):
            st.caption(
                "A file of these runs cannot be read; the other runs are unaffected. Check them all with "
                "python -m medtl runs --check."
            )
            st.text("\n".join(problem for _, problem in damaged))
    copies = store.duplicates()
    if copies:
        n = sum(len(v) for v in copies.values())
        with st.expander(f"{n} older copie(s) of runs shown once", icon=":material/content_copy:"):
            st.caption(
                "These folders repeat a newer done run of the same config and seed (trained before every run was "
                "claimed once); only the newest is counted. python -m medtl runs dedupe archives the copies."
            )
            st.text("\n".join(f"{old} (copy of {keep})" for keep, olds in copies.items() for old in olds))
