"""Train: configure a run or a sweep, queue it, watch it live, cancel it."""

import json

import streamlit as st

from medtl.config import RunConfig
from ui import forms, queue_view
from ui.state import get_queue

st.set_page_config(page_title="Train · MedTL Studio", page_icon="🏋️", layout="wide")
st.title("Train")
queue = get_queue()
st.caption(
    f"Runs train in the background, one at a time on each device ({', '.join(w.name for w in queue.workers)}); "
    "close the tab whenever you like — results land in the runs folder."
)
if queue.interrupted and "seen_interrupted" not in st.session_state:
    st.session_state.seen_interrupted = True
    st.warning(f"{len(queue.interrupted)} run(s) were interrupted when the app last stopped; resume them below.")

new, repeat = st.tabs(["New run or sweep", "Repeat a config (JSON)"])
with new:
    res = forms.FormResult()
    sweep = st.toggle("Sweep: several cuts × initialisations × sizes × seeds", False, key="sweep")
    c_data, c_model, c_train = st.columns(3, gap="large")
    with c_data:
        st.subheader("Data")
        d, sizes = forms.data_section(res)
        forms.data_feedback(d, sizes, res)
        for key in ("dataset", "train_size"):
            if key in res.errors:
                st.error(res.errors[key])
    with c_model:
        st.subheader("Model")
        m, cuts, inits = forms.model_section(d, sweep, res)
        for key in ("cut", "init"):
            if key in res.errors:
                st.error(res.errors[key])
    with c_train:
        st.subheader("Training")
        t, seeds = forms.train_section(res)
        forms.build_configs(d, sizes, m, cuts, inits, t, seeds, res)
        if "seeds" in res.errors:
            st.error(res.errors["seeds"])
    if "config" in res.errors:  # found when data, model and training settings were put together
        st.error(res.errors["config"])

    n = len(res.configs)
    label = f"Queue {n} run{'s' if n != 1 else ''}" if n else "Queue"
    c1, c2 = st.columns([1, 3])
    if c1.button(label, type="primary", disabled=bool(res.errors) or not n, key="queue_btn"):
        for cfg in res.configs:
            queue.submit(cfg)
        st.toast(f"Queued {n} run(s)")
    if n:
        c2.download_button(
            "Download config JSON", res.configs[0].to_json(), "config.json", "application/json", key="dl_cfg"
        )
        with c2.expander(f"{n} run(s) to queue"):
            st.write([c.name for c in res.configs])

with repeat:
    up = st.file_uploader("A config.json from a run folder or a download", type="json", key="upload")
    if up is not None:
        try:
            cfg = RunConfig.from_dict(json.loads(up.getvalue()))
        except (ValueError, json.JSONDecodeError) as e:
            st.error(f"This file is not a valid run config: {e}")
        else:
            st.success(cfg.name)
            if st.button("Queue this config", key="queue_upload"):
                queue.submit(cfg)
                st.toast("Queued")

st.subheader("Queue and recent runs")
queue_view.render(queue)
