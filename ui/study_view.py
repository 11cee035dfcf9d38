"""The Study page's parts: the study form, the time estimate, starting a preset, the live results."""

from __future__ import annotations

import contextlib
import json

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from medtl import estimate, study
from medtl.config import DataConfig, ModelConfig
from medtl.initialisations import INITS, as_spec
from medtl.metrics.operating import parse_rule
from medtl.models import registry
from medtl.runs import RunStore
from medtl.states import ACTIVE, STOPPED, State
from medtl.strategies import STRATEGIES
from medtl.study import operating, report
from medtl.study.conclusions import summarize
from medtl.study.criteria import CRITERIA
from medtl.study.preflight import check_data
from ui import metrics_view, weights_view
from ui.data_form import FormResult, data_feedback, data_section, index, init, keep, problem
from ui.forms import source_problem, submit_all
from ui.nav import link
from ui.state import data_summary, get_queue, load_data
from ui.text import plain

_PLAIN_INITS = [k.name for k in INITS.values() if k.ref is None]  # the kinds without a reference: chosen from a list

CUT_CHOICES = {  # short: the form's column is narrow at 1280 px (the help says more)
    "blocks": "every block",
    "layers": "every layer",
    "search": "search (two stages)",
    "list": "a list of cuts",
}


# --- starting -----------------------------------------------------------------------------------------


def queue_study(s: study.StudyConfig) -> int:
    """Save ``s`` and queue what it needs now; the queue's hook queues stage 2 later. Returns the count."""
    queue = get_queue()
    study.save(s, queue.store)
    advice = st.session_state.get("study_advice")
    if s.start and advice and advice[0] == (s.name, s.start):  # the advisor's tables behind this start
        study.save_advice(s, queue.store, advice[1])
    queued, _ = submit_all(queue, study.pending(s, queue.store))  # the rest: done or trained elsewhere meanwhile
    st.session_state["study_pick"] = s.name  # the page opens the study just queued
    return queued


def start_buttons(key: str) -> None:
    """The first action of an empty page: run the demo study, or a quick look, and open it on the Study page."""
    c1, c2, _ = st.columns([1.2, 1.4, 2])
    picked = None
    if c1.button("Run the demo study", type="primary", key=f"{key}_demo", icon=":material/play_arrow:"):
        picked = "demo"
    if c2.button("Quick look (about 1 min)", key=f"{key}_quick", icon=":material/bolt:"):
        picked = "quick"
    st.caption(
        "The demo trains ResNet18 on SynthCXR nodules at every block-level cut and in full, with all and 10% of the "
        "data, two seeds each (20 runs, a few minutes on a CPU), and says whether truncating beats full fine-tuning. "
        "The quick look trains 3 tiny runs (too small to learn: a tour of the pages and the report)."
    )
    if picked:
        n = queue_study(study.preset(picked))
        st.toast(f"Queued {n} run(s) of the {picked} study")
        try:
            st.switch_page("pages/5_Study.py")
        except StreamlitAPIException:  # this page runs on its own (AppTest): no navigation to switch in
            link("pages/5_Study.py", f"Follow the {picked} study")


# --- the form -----------------------------------------------------------------------------------------


def form(base: study.StudyConfig) -> tuple[study.StudyConfig | None, str | None]:
    """Widgets prefilled from ``base`` (a preset or a saved study); returns the study or an error message.

    The data section is the Train page's (:func:`ui.data_form.data_section`): another dataset takes its own
    default target and options; problems stand under their controls. The data every run needs is loaded
    (cached) before the study can be queued.
    """
    k = f"s_{base.name}"  # a new preset resets the widgets
    b = base.base
    res = FormResult()
    c_data, c_model, c_runs = st.columns(3, gap="large")
    with c_data:
        st.markdown("**Data**")
        name = st.text_input(
            "Study name", value=init(f"{k}_name", base.name), key=f"{k}_name", help="saved as <runs>/studies/<name>"
        )
        d, sizes = data_section(res, b.data, prefix=f"{k}_", sizes_default=_size_text(base.train_sizes))
        loaded = data_feedback(d, sizes, res)
    with c_model:
        st.markdown("**Models**")
        v = {
            key: init(f"{k}_{key}", value)
            for key, value in (
                ("bb", list(base.backbones)),
                ("st", list(base.strategies)),
                ("cm", base.cuts if isinstance(base.cuts, str) else "list"),
                ("init", [i for i in base.inits if i in _PLAIN_INITS]),
                ("source", next((i for i in base.inits if i not in _PLAIN_INITS), "")),
            )
        }
        backbones = st.multiselect("Backbones", list(registry.BACKBONES), default=v["bb"], key=f"{k}_bb")
        strategies = st.multiselect(
            "Strategies",
            list(STRATEGIES),
            default=v["st"],
            key=f"{k}_st",
            format_func=lambda s: f"{s} ({STRATEGIES[s].label})",
            help="Full fine-tuning is always trained as the reference.",
        )
        mode = st.selectbox(
            "Cuts",
            list(CUT_CHOICES),
            index=index(CUT_CHOICES, v["cm"]) or 0,
            key=f"{k}_cm",
            format_func=CUT_CHOICES.get,
            help="every block: each block-level cut and the full network · every layer: each published cut point · "
            "search: the TTL paper's procedure, every block first, then the layers inside the block that wins on "
            "validation · a list of cuts: the ones you pick",
        )
        cuts: str | list = mode
        if mode == "list":
            names = list(dict.fromkeys(p.name for bb in backbones or ["resnet18"] for p in registry.cut_points(bb)))
            init(f"{k}_cuts", [c for c in base.cuts if c in names] if isinstance(base.cuts, tuple) else names[1:3])
            st.session_state[f"{k}_cuts"] = [c for c in st.session_state[f"{k}_cuts"] if c in names]
            cuts = st.multiselect("Cut points", names, default=st.session_state[f"{k}_cuts"], key=f"{k}_cuts")
        inits = st.multiselect("Initialisations", _PLAIN_INITS, default=v["init"], key=f"{k}_init")
        other = st.text_input(
            "Pretrained source (optional)",
            value=v["source"],
            key=f"{k}_source",
            placeholder="file:weights.pt or run:<run id>",
            help="Another initialisation trained as one more arm: a state dict or model.pt (file:<path>) or an "
            "earlier run of this runs folder (run:<id>). Works offline.",
        )
        source = as_spec(other)  # a bare path is a state dict file
        if source:
            inits = [*inits, source]
            why = source_problem(source)
            if why:
                problem(st, res, "source", why)
    with c_runs:
        st.markdown("**Runs**")
        epochs = st.number_input("Epochs per run", value=init(f"{k}_epochs", b.train.epochs), step=1, key=f"{k}_epochs")
        if not float(epochs).is_integer() or epochs < 1:
            problem(st, res, "epochs", f"Epochs per run must be a whole number, at least 1. Got {epochs}")
        seeded = init(f"{k}_seeds", ", ".join(map(str, base.seeds)))
        seeds = st.text_input(
            "Seeds", value=seeded, key=f"{k}_seeds", help="comma-separated whole numbers: one run per seed"
        )
        criterion = st.selectbox(
            "Choose cuts on (validation)",
            list(CRITERIA),
            index=index(CRITERIA, init(f"{k}_crit", base.criterion)) or 0,
            key=f"{k}_crit",
            format_func=lambda c: (
                CRITERIA[c].label.removeprefix("validation ")
                + (" at the operating point" if CRITERIA[c].metric else "")
            ),
            help="The test split is never used for a choice. An operating-point criterion reads the metric at the "
            "threshold the rule below picks on each run's validation split.",
        )
        rule = metrics_view.rule_input(f"{k}_op", base.operating_point, "Operating point: threshold by")
        prevalence = metrics_view.prevalence_input(f"{k}_prev", base.prevalence)
        try:
            seed_list = [int(x) for x in seeds.split(",") if x.strip()]
        except ValueError:
            problem(st, res, "seeds", f"Seeds are whole numbers separated by commas (e.g. 0, 1, 2). Got {seeds}")
    keep(*(key for key in st.session_state if isinstance(key, str) and key.startswith(f"{k}_")))
    if res.errors:
        return None, "Fix the fields marked above: nothing is queued until then."
    spec = base.to_dict()
    spec["base"]["data"] = DataConfig(**d).to_dict()
    spec["base"]["train"]["epochs"] = int(epochs)
    spec.update(
        name=name.strip(),
        backbones=backbones,
        strategies=strategies,
        cuts=cuts,
        inits=inits,
        train_sizes=sizes,
        seeds=seed_list,
        criterion=criterion,
        operating_point=rule,
        prevalence=prevalence,
    )
    spec["start"] = {}  # set below from the advisor, for this form's data, backbones and inits
    try:
        s = study.StudyConfig.from_dict(spec)
    except (ValueError, TypeError) as e:
        return None, str(e)
    try:  # every data config the study's runs need, loaded (cached) as `study run` does, before anything is queued
        found = check_data(s, load=lambda cfg: load_data(cfg.to_json()))
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as e:
        return None, str(e)
    shown = set((loaded and data_summary(loaded.to_json()).get("warnings")) or ())
    for w in found.warnings:  # those of other training sizes than the first (shown with the counts)
        if w not in shown:
            st.warning(plain(w), icon=":material/warning:")
    if s.cuts == "search":
        s = _advisor_start(s, k, base.start)
    return s, None


def _size_text(sizes) -> str:
    from medtl.datasets import train_size_label

    return ", ".join(train_size_label(z) for z in sizes)


def _advisor_start(s: study.StudyConfig, k: str, saved: dict) -> study.StudyConfig:
    """ "Suggest cuts" per backbone of a search: the cuts taken start stage 1 of its pretrained groups."""
    from ui import advisor

    pretrained = study.pretrained_inits(s)
    if not pretrained:
        st.caption(
            ":material/lightbulb: Add a pretrained initialisation (imagenet, or a source above) and **Suggest cuts** "
            "can start the search from the cuts it ranks best, before any training."
        )
        return s
    try:
        data = study.advisor_data(s)
    except (OSError, ValueError) as e:
        st.caption(f":material/lightbulb: Suggest cuts: the data cannot be read ({e}).")
        return s
    taken = st.session_state.setdefault(f"{k}_start", {b: (tuple(c), None) for b, c in saved.items()})
    st.markdown("**Where the search starts**")
    cols = st.columns(max(2, len(pretrained)), gap="large")
    for col, (b, source) in zip(cols, pretrained.items(), strict=False):
        with col:
            st.caption(f"{b} from {plain(source)}")
            cuts = advisor.suggest_cuts(data, {"backbone": b, "init": source}, f"{k}_adv_{b}")
            if cuts:
                taken[b] = (tuple(cuts), advisor.held(f"{k}_adv_{b}"))
    start = {b: taken[b][0] for b in pretrained if b in taken}
    if not start:
        return s
    try:
        s = s.replace(start=start)
    except ValueError as e:
        st.error(str(e), icon=":material/error:")
        return s
    text = "; ".join(f"{b}: {', '.join(c)}" for b, c in s.start.items())
    st.success(
        f"Stage 1 of the pretrained groups starts from {text} and the full network; random-init groups search "
        "every block.",
        icon=":material/insights:",
    )
    if st.button("Search every block instead", key=f"{k}_start_clear", icon=":material/restart_alt:"):
        taken.clear()
        st.rerun()
    advice = {b: taken[b][1] for b in s.start if taken.get(b, (None, None))[1] is not None}
    if advice:
        st.session_state["study_advice"] = ((s.name, s.start), {"train_size": data.train_size, "backbones": advice})
    return s


# --- the estimate -------------------------------------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=128)
def _speed(model_json: str, image_size: int, batch_size: int, channels: int, device: str) -> dict[str, float]:
    return estimate.measure(ModelConfig.from_dict(json.loads(model_json)), image_size, batch_size, channels, device)


def _estimator(store: RunStore):
    """(counts, speed) for :func:`medtl.estimate.for_runs` on this machine's first worker, cached."""
    device = get_queue().workers[0].device
    channels = {}

    def counts(data):
        summary = data_summary(data.to_json())
        channels[data.to_json()] = summary["channels"]
        return summary["counts"]

    def speed(cfg):
        counts(cfg.data)
        ch = channels.get(cfg.data.to_json(), 1)
        return _speed(cfg.model.to_json(), cfg.data.image_size, cfg.train.batch_size, ch, device)

    return counts, speed, device


def remaining(s: study.StudyConfig, store: RunStore, planned: list, done: dict) -> dict:
    """The estimate of the study's unfinished runs, calibrated by its finished ones (measured on this machine)."""
    counts, speed, device = _estimator(store)
    finished = [(c, store.status(done[c.key()])) for c in planned if c.key() in done]
    return estimate.for_runs([c for c in planned if c.key() not in done], finished, counts, speed, device)


def show_estimate(s: study.StudyConfig, store: RunStore) -> list:
    """The number of runs and their estimated time on this machine; returns the runs to queue now."""
    queue = get_queue()
    done = store.experiments()
    planned = study.planned(s, store, done)
    todo = study.pending(s, store)
    counts, speed, device = _estimator(store)
    kinds = len({estimate.speed_key(c) for c in todo})
    with st.spinner(f"Measuring this machine's speed on {kinds} distinct model(s) (once; a few seconds each)…"):
        finished = [(c, store.status(done[c.key()])) for c in planned if c.key() in done]
        est = estimate.for_runs(todo, finished, counts, speed, device)
    c1, c2, c3 = st.columns(3)
    c1.metric("Runs in the study", len(planned), help="as far as known now: stage 2 of a search is added later")
    c2.metric(
        "To train now", len(todo), help=f"{sum(c.key() in done for c in planned)} already done in this runs folder"
    )
    c3.metric("Estimated time", estimate.duration(est["seconds"]) if todo else "—")
    later = (
        " Stage 2 of the search (layer-level cuts inside the best block) is queued automatically once stage 1 is done, "
        "and adds to this."
        if s.cuts == "search"
        else ""
    )
    busy = " It was measured while other runs were training: expect it to be pessimistic." if queue.busy else ""
    how = (
        f" Calibrated by {est['calibrated_on']} finished run(s) of this study: they took {est['ratio']:.2f}x the model."
        if est["calibrated_on"]
        else " Once the first run has finished, the time it took calibrates the rest."
    )
    st.caption(
        f"An estimate, one run after another on **{device}** ({len(queue.workers)} worker(s)): measured images per "
        "second of two training steps and evaluation passes of each distinct model on this machine, times the "
        f"images each run sees, plus each run's start-up, checkpoints, bootstrap and profiling.{how}{later}{busy}"
    )
    if est["models"]:
        with st.expander("Per model"):
            rows = pd.DataFrame(est["models"]).assign(time=lambda t: t["seconds"].map(estimate.duration))
            st.dataframe(rows.drop(columns=["seconds"]), hide_index=True, key="est_table")
    return todo


def weights_gate(s: study.StudyConfig) -> bool:
    """Offer ImageNet weights for every backbone of the study that needs them; whether all are here."""
    if "imagenet" not in s.inits:
        return True
    ok = True
    for b in s.backbones:
        if registry.get_spec(b).weights is not None:
            ok = weights_view.offer(b, f"study_w_{b}") and ok
    return ok


# --- results ------------------------------------------------------------------------------------------


def _states(s: study.StudyConfig, store: RunStore) -> dict[str, tuple[str, str]]:
    """Planned run key -> (newest run id, its state); a key with a finished run counts as done. Absent: not queued."""
    keys = {c.key() for c in study.planned(s, store)}
    out = {}
    for rid in store.ids():
        try:
            k = store.config(rid).key()
        except (OSError, ValueError, TypeError, KeyError):
            continue
        if k in keys and out.get(k, ("", ""))[1] != State.DONE:
            out[k] = (rid, store.status(rid).get("state", "?"))
    return out


def _failed(states: dict[str, tuple[str, str]], store: RunStore) -> None:
    """The study's runs that did not finish, each with its reason, and one button to retry them all."""
    failed = [rid for rid, state in states.values() if state in STOPPED]
    if not failed:
        return
    with st.container(border=True):
        st.markdown(f":red[:material/error:] **{len(failed)} run(s) of this study did not finish**")
        for rid in failed:
            stt = store.status(rid)
            st.text(f"{rid} · {stt.get('name')} · {stt.get('state')}: {stt.get('error') or '-'}")
        if st.button(f"Retry {len(failed)} run(s)", key="study_retry", icon=":material/replay:"):
            queue = get_queue()
            for rid in failed:
                with contextlib.suppress(ValueError):  # resumed elsewhere meanwhile
                    queue.resume(rid)
            st.toast(f"Queued {len(failed)} run(s) again")
            st.rerun()


@st.cache_data(show_spinner="Paired statistics over the finished runs…", max_entries=16)
def _summary(root: str, study_json: str, finished: tuple[str, ...], prevalence: float | None = None) -> dict:
    # finished: the study's done runs, so the cache refreshes exactly when a run finishes
    return summarize(study.StudyConfig.from_dict(json.loads(study_json)), RunStore(root), prevalence=prevalence)


@st.cache_data(show_spinner=False, max_entries=16)
def _similarity(root: str, study_json: str, finished: tuple[str, ...], _summary: dict) -> dict:
    # keyed by the study and its finished runs; the summary (unhashed) is the one the page just computed
    from medtl.similarity import study_similarity

    return study_similarity(_summary, RunStore(root))


def _image(fig, fmt: str):
    return lambda: fig.to_image(format=fmt, width=1100, height=fig.layout.height or 450, scale=2 if fmt == "png" else 1)


def results(name: str, store: RunStore) -> None:
    """Progress, conclusions, table and figures of a saved study; refreshes itself while its runs train."""
    try:
        s = study.load(store, name)
    except (OSError, ValueError) as e:  # a damaged study.json: said; the other studies stay readable
        st.error(plain(e), icon=":material/error:")
        return
    active = any(state in ACTIVE for _, state in _states(s, store).values())

    @st.fragment(run_every=3 if active else None)
    def live() -> None:
        states = _states(s, store)
        done = store.experiments()
        planned = study.planned(s, store, done)
        now_active = any(state in ACTIVE for _, state in states.values())
        if active and not now_active:
            st.rerun()  # finished: one last full run of the page, which stops the polling
        count = pd.Series([state for _, state in states.values()], dtype=str).value_counts().to_dict()
        n_done = count.get(State.DONE, 0)
        parts = [f"{count[k]} {k}" for k in (State.RUNNING, State.QUEUED, *STOPPED) if count.get(k)]
        if now_active:
            left = remaining(s, store, planned, done)
            calibrated = f", calibrated by {left['calibrated_on']} finished" if left["calibrated_on"] else ""
            parts.append(f"about {estimate.duration(left['seconds'])} left{calibrated}")
        st.progress(
            min(n_done / max(len(planned), 1), 1.0),
            text=f"{n_done} of {len(planned)} runs done" + (" · " + " · ".join(parts) if parts else ""),
        )
        _failed(states, store)
        if not n_done:
            st.info("No run of this study has finished yet: the figures fill in as they do.")
            return
        finished = tuple(sorted(done[c.key()] for c in planned if c.key() in done))
        c1, _ = st.columns([1, 3])
        with c1:
            prevalence = metrics_view.prevalence_input(f"study_prev_{name}", s.prevalence)
        st.caption(metrics_view.prevalence_caption(prevalence).replace("on this page", "in these results"))
        summary = _summary(str(store.root), s.to_json(), finished, prevalence)
        st.subheader("Conclusions")
        if not summary["complete"]:
            st.caption(
                "Not complete yet: what is decided so far (the test split is only reported; choices are on validation)."
            )
        st.markdown(
            "\n".join(
                f"- {plain(c)}" if not c.startswith("  ") else f"    - {plain(c)}" for c in summary["conclusions"]
            )
        )
        st.subheader("Selected cut per initialisation and training size")
        table = report.groups_table(summary)
        first = [c for c in ("backbone", "strategy") if table[c].nunique() > 1] + ["init", "size", "selected"]
        first += [c for c in ("Δ AUPRC", "Δ AUROC", "DeLong p") if c in table]
        table = table[first + [c for c in table.columns if c not in first and c not in ("backbone", "strategy")]]
        st.dataframe(table, hide_index=True, key="groups_table")
        st.caption(
            "Δ: the selected cut minus full fine-tuning on the same test images, paired bootstrap 95% interval "
            "(contains 0: not significant); p: DeLong's test of equal AUROC. Params and latency: selected / full."
        )
        op_table = operating.table(summary)
        if not op_table.empty:
            st.subheader("At the operating point, and calibration")
            st.dataframe(op_table, hide_index=True, key="op_groups_table")
            st.caption(
                f"Selected cut / full fine-tuning, each at the threshold its own validation split gives by "
                f"{plain(parse_rule(s.operating_point).label)}; Δ: paired bootstrap 95% interval over "
                "the test images; McNemar: exact test of the two models' decisions on the same images, per seed. "
                "Brier and ECE as trained and after temperature scaling fitted on validation. Reliability diagrams "
                "and decision curves are among the figures below." + operating.undefined_note(op_table)
            )
        st.subheader("Figures")
        similarity = None
        if st.toggle(
            "Feature reuse (CKA per stage)",
            key="study_cka",
            help="Linear CKA of every stage with the network before training and with a random network, mean over "
            "seeds, for each group's selected cut and full fine-tuning (computed once per run, then kept in the "
            "run's folder). Also in the report.",
        ):
            with st.spinner("CKA per stage of the decided groups' runs (once per run)…"):
                similarity = _similarity(str(store.root), s.to_json(), finished, summary)
        for i, (caption, fig) in enumerate(report.figures(s, store, summary, similarity)):
            st.markdown(f"**{caption}**")
            st.plotly_chart(
                fig,
                key=f"study_fig_{i}",
                config={"toImageButtonOptions": {"format": "png", "scale": 2, "filename": f"{name}_{i}"}},
            )
            c1, c2, _ = st.columns([1, 1, 6])
            for col, fmt in ((c1, "svg"), (c2, "png")):
                col.download_button(
                    fmt.upper(),
                    _image(fig, fmt),
                    f"{name}_figure{i + 1}.{fmt}",
                    f"image/{'svg+xml' if fmt == 'svg' else fmt}",
                    key=f"dl_{fmt}_{i}",
                    icon=":material/image:",
                    help=f"This figure as {fmt.upper()} (rendered by kaleido on click)",
                )
        # inside the fragment: a download registered by an earlier run of the page is gone after the
        # fragment's next refresh, so the button is drawn by the same run that keeps it
        st.download_button(
            "Download report (HTML)",
            lambda: report.build_report(s, store),
            f"study_{name}.html",
            "text/html",
            key="dl_report",
            icon=":material/download:",
            help="One self-contained file (conclusions, tables, figures with plotly.js embedded, every run's "
            "config): opens offline.",
        )

    live()
