"""Train: configure a run or a sweep, queue it, watch it live, cancel it."""

import streamlit as st

from medtl.config import DataConfig
from medtl.states import ACTIVE, State
from ui import advisor, damaged, data_form, forms, queue_view
from ui.nav import page_setup
from ui.state import get_queue
from ui.text import plain

page_setup("pages/2_Train.py")
st.title("Train")
queue = get_queue()
st.caption(
    f"Runs train in the background, one at a time on each device ({', '.join(w.name for w in queue.workers)}); "
    "close the tab whenever you like — results land in the runs folder."
)
still = [r for r in queue.interrupted if queue.store.status(r).get("state") == State.INTERRUPTED]
if still:  # read from disk: a run resumed since (here or in another tab) no longer counts
    st.warning(
        f"{len(still)} run(s) were interrupted when the app last stopped; resume them from their cards below.",
        icon=":material/warning:",
    )

new, repeat = st.tabs(["New run or sweep", "Repeat a config (JSON)"])
with new:
    res = data_form.FormResult()
    seeded = data_form.init("sweep", False)
    sweep = st.toggle("Sweep: several cuts × initialisations × sizes × seeds", value=seeded, key="sweep")
    data_form.keep("sweep")
    c_data, c_model, c_train = st.columns(3, gap="large")
    with c_data:
        st.subheader("Data")
        d, sizes = data_form.data_section(res)
        data_form.data_feedback(d, sizes, res)
    with c_model:
        st.subheader("Model")
        advised = st.session_state.pop("_advised_cuts", None)
        if advised:  # "Suggest cuts" chose these on the last run: into the cut widget before it is drawn
            st.session_state["cuts" if sweep else "cut"] = advised if sweep else advised[0]
        size_ok = "image_size" not in res.errors  # a bad size is said under its control; cut tables use the default
        m, cuts, inits = forms.model_section(d if size_ok else {**d, "image_size": 64}, sweep, res)
        for key in ("cut", "init"):
            if key in res.errors:
                st.error(res.errors[key])
        data_ok = not res.errors.keys() & {"dataset", "finding", "image_size", "train_size"}
        if cuts != ["full"] and sizes and data_ok:  # "Suggest cuts" for the first pretrained init
            picked = st.session_state.get("inits" if sweep else "init")
            picked = picked if isinstance(picked, list) else [picked]
            pretrained = [i for i in inits if i != "random"]
            init = pretrained[0] if pretrained else ("imagenet" if "imagenet" in picked else "random")
            if "init" not in res.errors or init == "imagenet":  # a missing file or run: its error is shown
                level = "layer" if st.session_state.get("layer_level") else "block"
                take = advisor.suggest_cuts(
                    DataConfig(**{**d, "train_size": sizes[0]}),
                    {**m, "init": init, "level": level},
                    "train",
                    top=None if sweep else 1,
                )
                if take:
                    st.session_state["_advised_cuts"] = take
                    st.rerun()
    with c_train:
        st.subheader("Training")
        t, seeds = forms.train_section(res)
        forms.build_configs(d, sizes, m, cuts, inits, t, seeds, res)
        if "seeds" in res.errors:
            st.error(res.errors["seeds"])
    if "config" in res.errors:  # found when data, model and training settings were put together
        st.error(res.errors["config"])

    # each run is trained once: the same run (its key, seeds included) done or on its way is not queued again
    existing = queue.store.experiments(states=(State.DONE, *ACTIVE))
    dups = {c.key(): existing[c.key()] for c in res.configs if c.key() in existing}
    to_queue = [c for c in res.configs if c.key() not in dups]
    if dups:
        st.warning(
            f"{len(dups)} of these {len(res.configs)} run(s) are already done or queued: "
            + ", ".join(f"{r} ({queue.store.status(r).get('state')})" for r in dups.values())
            + ". Their results are on the Compare page; a repeat is another seed (Seeds), never a copy.",
            icon=":material/content_copy:",
        )
    n = len(to_queue)
    label = f"Queue {n} run{'s' if n != 1 else ''}" if n else "Queue"
    c1, c2 = st.columns([1, 3])
    if c1.button(label, type="primary", disabled=bool(res.errors) or not n, key="queue_btn"):
        queued, refused = forms.submit_all(queue, to_queue)
        st.toast(f"Queued {queued} run(s)")
        for message in refused:  # another writer of the runs folder took it meanwhile
            st.warning(plain(message), icon=":material/content_copy:")
    if n:
        c2.download_button(
            "Download config JSON", res.configs[0].to_json(), "config.json", "application/json", key="dl_cfg"
        )
        with c2.expander(f"{n} run(s) to queue"):
            st.text("\n".join(c.name for c in res.configs))  # names hold user paths and labels: plain text

with repeat:
    up = st.file_uploader("A config.json from a run folder or a download", type="json", key="upload")
    if up is not None:
        cfg, message = forms.read_config(up.getvalue())
        if cfg is None:
            st.error(plain(message))
        else:
            st.success(plain(cfg.name))
            if st.button("Queue this config", key="queue_upload"):
                queued, refused = forms.submit_all(queue, [cfg])
                for message in refused:
                    st.warning(plain(message), icon=":material/content_copy:")
                if queued:
                    st.toast("Queued")

st.subheader("Queue and recent runs")
damaged.note(queue.store)
queue_view.render(queue)
