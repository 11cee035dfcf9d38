"""Study: should I transfer, and how much of the network should I keep? Define, estimate, queue, read."""

import streamlit as st

from medtl import study
from ui import damaged, study_view
from ui.nav import link, page_setup
from ui.state import get_store
from ui.text import plain

page_setup("pages/5_Study.py")
st.title("Study")
st.caption(
    "A study trains a grid of cuts × initialisations × training sizes × seeds on one dataset, chooses the cut on "
    "validation (optionally in two stages: blocks, then layers inside the best block), and compares it with full "
    "fine-tuning on the same test images: paired bootstrap intervals for AUROC and AUPRC, DeLong's p."
)
store = get_store()
damaged.note(store)
saved = study.saved(store)

with st.expander("New study", expanded=not saved, icon=":material/add:"):
    start = st.selectbox(
        "Start from",
        [*study.PRESETS, *(f"saved: {n}" for n in saved)],
        key="study_start",
        help=" · ".join(f"{p.name}: {p.help}" for p in study.PRESETS.values()),
    )
    try:
        base = study.load(store, start.removeprefix("saved: ")) if start.startswith("saved: ") else study.preset(start)
    except (OSError, ValueError) as e:  # a damaged study.json: said, and another start offered
        st.error(plain(e), icon=":material/error:")
        base = None
    s, error = study_view.form(base) if base else (None, None)
    if error:  # nothing is queued until it is fixed; the saved studies below stay readable
        st.error(plain(error), icon=":material/error:")
    elif s is not None:
        ready = study_view.weights_gate(s)
        todo = study_view.show_estimate(s, store)
        n = len(todo)
        if st.button(
            f"Queue {n} run{'s' if n != 1 else ''}" if n else "Nothing to train",
            type="primary",
            disabled=not n or not ready,
            key="study_queue",
        ):
            st.toast(f"Queued {study_view.queue_study(s)} run(s) of study {s.name}")
            st.rerun()

saved = study.saved(store)
if not saved:
    st.info("No study yet: start one above (the quick preset finishes in about a minute).")
    st.stop()
if st.session_state.get("study_pick") not in saved:  # a fresh session: the study saved most recently
    st.session_state["study_pick"] = study.recent(store)
name = st.selectbox("Study", saved, key="study_pick")
study_view.results(name, store)

c2, c3 = st.columns(2)
with c2:
    link("pages/3_Compare.py", "Open the runs in Compare")
with c3:
    link("pages/4_Grad-CAM.py", "See what they look at (Explain)")
