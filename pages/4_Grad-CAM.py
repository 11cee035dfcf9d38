"""Explain: where each run looks (Grad-CAM at its cut or an earlier layer) on the same test images,
whether the maps point at the lesions, and how much of each run's initial network survives training (CKA)."""

import pandas as pd
import streamlit as st

from medtl import cam, compare, explain, localisation, plots
from medtl.overlay import overlay, to_png
from medtl.states import State
from ui import damaged, study_view
from ui import explanations as X
from ui.nav import link, page_setup
from ui.state import get_store, load_data, runs_table
from ui.text import plain

AT_CUT = "at each run's cut"
CONTRAST_HELP = (
    "With a global-average-pooled head, Grad-CAM is each position's contribution to the score, and part of it "
    "is the same for every image: on SynthCXR the image border (no thorax, zero padding) gets a positive "
    "contribution in positives and negatives alike, so plain maps at deep cuts peak at the border and the "
    "pointing game falls to 0. Subtracting the mean map of negative validation images removes that constant "
    "part (ResNet18 at layer2, 64 px: pointing game 0.17 → 0.41, chance 0.02)."
)

page_setup("pages/4_Grad-CAM.py")
st.title("Explain")
st.caption(
    "Grad-CAM maps of each run on the same test images, on a fresh eval copy of its checkpoint; "
    "below, how much of its initial network each run reuses per stage."
)

store = get_store()
damaged.note(store)
done = [r for r in store.ids() if store.status(r).get("state") == State.DONE]
if not done:
    study_view.start_buttons("gradcam_start")
    st.info("No finished runs yet: train some on the Train page, then come back to see what they look at.")
    link("pages/2_Train.py", "Train a model")
    st.stop()

names = {r: store.status(r).get("name", r) for r in done}
configs = {r: store.config(r) for r in done}  # read once per rerun
split_of = {r: configs[r].data.test_split_key() for r in done}
# default: the newest runs that share the newest run's dataset and test split (the same images)
default = [r for r in done[::-1] if split_of[r] == split_of[done[-1]]][:3]
c1, c2, c3 = st.columns([3, 1, 1])
runs = c1.multiselect(
    "Runs (columns)",
    done[::-1],
    default=default,
    # compact chips (the model and the run id's tail): full names label the columns below
    format_func=lambda r: f"{configs[r].model.label} · {r[-7:]}",
    key="runs",
    help="Runs tested on the same images (same dataset and test split) can be shown side by side",
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
    first = configs[runs[0]].data.label
    other = sorted({configs[r].data.label for r in runs if split_of[r] != split_of[runs[0]]})
    st.error(
        f"These runs were tested on different images ({plain(first)} vs {plain(', '.join(other))}, or another image "
        "size or split): "
        "side by side they would show different images under the same index. Pick runs of one dataset.",
        icon=":material/block:",
    )
    st.stop()

# columns and rows are labelled by what differs between the selected runs; what they share is said once
rows = runs_table(store).set_index("id").loc[runs]
label = compare.short_labels(rows).to_dict()
if len(set(label.values())) < len(runs):  # copies of one run: tell them apart by id
    label = {r: f"{label[r]} · {r[-7:]}" for r in runs}
shared = compare.shared_label(rows)
if shared:
    st.caption("All selected runs: " + plain(shared))

# the layers every selected run keeps, bottom first: a common earlier cut compares like with like
layers_of = {r: cam.gradcam_layers(configs[r].model) for r in runs}
common = [name for name in layers_of[runs[0]] if all(name in layers_of[r] for r in runs)]
options = [AT_CUT, *common]
if st.session_state.get("layer") not in options:  # the runs changed: that layer is gone
    st.session_state["layer"] = AT_CUT
c1, c2 = st.columns([1, 2])
choice = c1.selectbox(
    "Layer",
    options,
    key="layer",
    help="Where the maps are read: each run's cut (the map its head sees) or an earlier block that all selected "
    "runs keep. Earlier layers have finer maps.",
)
layer = None if choice == AT_CUT else choice
contrast = c2.toggle("Contrast against negative images", True, key="contrast", help=CONTRAST_HELP)
c2.caption(
    "On: each map less the mean map of negative validation images — the evidence this image adds over a typical "
    "negative (plain maps at deep cuts light up the image border)."
)

try:
    data = load_data(configs[runs[0]].data.to_json())
except (ValueError, OSError) as e:  # the run's data moved or changed since it trained: said, not a crash
    st.error(
        f"The test images of {plain(names[runs[0]])} cannot be loaded: {plain(e)}. Put the dataset back where it was "
        "trained from, or pick another run.",
        icon=":material/error:",
    )
    st.stop()
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
    st.error(plain(e))
    st.stop()
if picked.size == 0:
    st.info(f"The first run has no {kind} test images.")
    st.stop()

picked = sorted(int(i) for i in picked)
results, rows = {}, []
with st.spinner("Computing Grad-CAM (cached after the first time)…"):
    for r in runs:
        try:
            e = X.explanation(store, r, picked, layer, contrast)
            s = X.scores(store, r, picked, layer, contrast)
        except (ValueError, OSError) as err:  # a damaged model.pt: this run is said, the others shown
            st.error(f"{plain(label[r])} cannot be explained: {plain(err)}", icon=":material/broken_image:")
            continue
        results[r] = (e, s)
        h, w = e.map_size
        rows.append({"run": label[r], "layer": e.layer, "map": f"{h}×{w}", **s})
runs = [r for r in runs if r in results]
if not runs:
    st.stop()

scores = pd.DataFrame(rows).set_index("run")
if "pointing_game" in scores:
    shown = {
        "layer": "layer",
        "map": "map",
        "n": "lesions",
        "pointing_game": "pointing game",
        "pointing_game_chance": "chance",
        "pointing_game_ceiling": "ceiling",
        "energy_in_mask": "energy in mask",
        "energy_in_mask_chance": "energy chance",
    }
    st.dataframe(scores[list(shown)].rename(columns=shown).round(3), key="scores")
    st.caption(
        "Pointing game: the map's strongest cell lies on the lesion (within 15 px at 224 px, scaled). "
        "Chance: the exact score of a uniformly random map of the same resolution; ceiling: the best a map of this "
        "resolution can score (the share of lesions with a cell centre within the tolerance). Energy in mask: the "
        "share of the map on the lesion; its chance level is the lesion's share of the image."
    )
    for r in runs:
        e, s = results[r]
        if X.too_coarse(s):
            (h, w), size = e.map_size, e.images.shape[-1]
            diameter = localisation.lesion_diameter(e.masks)
            st.warning(
                f"**{plain(label[r])}** at {e.layer}: at {h}×{w} a map cannot point at a {diameter:.0f}-px lesion in a "
                f"{size}-px image (a cell centre lies within reach of only {s['pointing_game_ceiling']:.0%} of them): "
                "choose an earlier layer or a larger image size.",
                icon=":material/grid_on:",
            )
else:
    st.caption("No lesion masks for these images: the maps are shown without pointing-game scores.")

scale = max(1, 160 // data.image_size)
cols = st.columns(len(runs))
for c, r in zip(cols, runs, strict=True):
    e = results[r][0]
    h, w = e.map_size
    c.markdown(f"**{plain(label[r])}**  \n{e.layer} · {h}×{w} map" + (" · contrastive" if contrast else ""))
for i, ix in enumerate(picked):
    cols = st.columns(len(runs))
    for c, r in zip(cols, runs, strict=True):
        e = results[r][0]
        rgb = overlay(e.images[i], e.maps[i], None if e.masks is None else e.masks[i])
        c.image(to_png(rgb, scale), caption=f"#{ix} · label {int(e.labels[i])} · p = {e.probs[i]:.2f}")

st.subheader("Feature reuse per stage")
st.caption(
    "Linear CKA at every stage between each run's network before training (its initialisation) and after, "
    "on up to 256 test images; dotted: an independent random network against the trained one (the baseline). "
    "High at the bottom and low at the top: the bottom is reused, the top re-learned."
)
if st.button("Compute CKA", key="cka_btn", help="Tens of seconds per run on a CPU; cached afterwards."):
    st.session_state["cka_on"] = True
if st.session_state.get("cka_on"):
    with st.spinner("Computing CKA per stage (cached after the first time)…"):
        sims = {label[r]: X.run_similarity(store, r) for r in runs}
    st.plotly_chart(plots.cka_figure(sims), key="cka_fig")
