"""Grad-CAM: what each run (e.g. each truncation level) looks at, on the same test images."""

import numpy as np
import pandas as pd
import streamlit as st

from medtl import explain
from ui import study_view
from ui.nav import link, page_setup
from ui.state import get_store, load_data

page_setup("pages/4_Grad-CAM.py")
st.title("Grad-CAM")
st.caption("Maps at the last layer each network keeps (its cut), on a fresh eval copy of the selected checkpoint.")

store = get_store()
done = [r for r in store.ids() if store.status(r).get("state") == "done"]
if not done:
    study_view.start_buttons("gradcam_start")
    st.info("No finished runs yet: train some on the Train page, then come back to see what they look at.")
    link("pages/2_Train.py", "Train a model")
    st.stop()

names = {r: store.status(r).get("name", r) for r in done}
split_of = {r: store.config(r).data.test_split_key() for r in done}
# default: the newest runs that share the newest run's dataset and test split (the same images)
default = [r for r in done[::-1] if split_of[r] == split_of[done[-1]]][:3]
c1, c2, c3 = st.columns([3, 1, 1])
runs = c1.multiselect(
    "Runs (columns)", done[::-1], default=default, format_func=lambda r: f"{names[r]} · {r[-8:]}", key="runs"
)
kind = c2.selectbox(
    "Images",
    ["positives", "TP", "FN", "FP", "TN", "all", "by index"],
    key="kind",
    help="TP/FP/TN/FN by the first run's test predictions at probability 0.5",
)
n = int(c3.number_input("How many", 1, 32, 6, key="n"))
if not runs:
    st.info("Pick at least one run.")
    st.stop()
if len({split_of[r] for r in runs}) > 1:
    first = store.config(runs[0]).data.label
    other = sorted({store.config(r).data.label for r in runs if split_of[r] != split_of[runs[0]]})
    st.error(
        f"These runs were tested on different images ({first} vs {', '.join(other)}, or another image size or split): "
        "side by side they would show different images under the same index. Pick runs of one dataset.",
        icon=":material/block:",
    )
    st.stop()
data = load_data(store.config(runs[0]).data.to_json())
indices = None
if kind == "by index":
    raw = st.text_input(
        "Test image indices (comma-separated)", ", ".join(map(str, data.splits["test"][:n])), key="indices"
    )
    try:
        indices = [int(t) for t in raw.split(",") if t.strip()]
    except ValueError:
        st.error("Indices must be whole numbers separated by commas.")
        st.stop()
try:
    picked = explain.pick_images(data, store.predictions(runs[0]), "all" if kind == "by index" else kind, n, indices)
except ValueError as e:
    st.error(str(e))
    st.stop()
if picked.size == 0:
    st.info(f"The first run has no {kind} test images.")
    st.stop()

results, rows = {}, []
with st.spinner("Computing Grad-CAM…"):
    for r in runs:
        model = explain.load_model(store, r)  # a fresh eval copy per request: never shared, never the training model
        e = explain.explain(model, load_data(store.config(r).data.to_json()), picked)
        results[r] = e
        rows.append({"run": names[r], **explain.scores(e)})
scores = pd.DataFrame(rows).set_index("run")
if "pointing_game" in scores:
    st.dataframe(scores.style.format("{:.3f}", subset=[c for c in scores.columns if c != "n"]), key="scores")
    st.caption(
        "Pointing game: the map's maximum lies on the lesion (within 15 px at 224 px, scaled). Energy in mask: share of saliency on the lesion. "
        "'_random' columns: the same scores for uniform random maps (chance)."
    )

scale = max(1, 160 // data.image_size)
cols = st.columns(len(runs))
for c, r in zip(cols, runs, strict=True):
    c.markdown(f"**{names[r]}**")
for i, ix in enumerate(np.sort(picked)):
    cols = st.columns(len(runs))
    for c, r in zip(cols, runs, strict=True):
        e = results[r]
        rgb = explain.overlay(e.images[i], e.maps[i], None if e.masks is None else e.masks[i])
        c.image(explain.to_png(rgb, scale), caption=f"#{ix} · label {int(e.labels[i])} · p = {e.probs[i]:.2f}")
