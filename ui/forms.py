"""The run / sweep form of the Train page: widgets in, RunConfigs (or messages) out."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from medtl import datasets
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.fields import check_value, choices, flag_type
from medtl.models import registry
from medtl.models.weights import weights_status
from medtl.strategies import STRATEGIES
from ui import weights_view
from ui.state import cut_table, data_summary, get_store, preview_png, weights_label

KINDS = {k.name: k.label for k in datasets.KINDS.values()}


@dataclass
class FormResult:
    configs: list[RunConfig] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # control -> message


def _split_list(text: str, what: str, errors: dict, key: str) -> list[str]:
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        errors[key] = f"Give at least one {what}"
    return items


def _cut_label(rows: dict, name: str) -> str:
    """A short option label (the select and the chips stay readable in a narrow column)."""
    r = rows.get(name)
    return name if r is None else f"{name} · {r['params'] / 1e6:.2f} M"


def _cut_caption(rows: dict, cuts: list[str], size: int, asked: int) -> None:
    parts = [
        f"{c}: {rows[c]['channels']} ch, {rows[c]['params'] / 1e6:.2f} M params, {rows[c]['macs'] / 1e9:.3f} GMACs"
        for c in cuts
        if c in rows
    ]
    at = f"at {size} px" + (
        "" if size == asked else f" (the smallest input this backbone accepts; {asked} px is too small)"
    )
    if parts:
        st.caption(" · ".join(parts) + f" — backbone up to the cut, {at}")


def _option_widget(option: datasets.Option, where=st):
    """One widget for a dataset-kind option, read off its record and its DataConfig field type."""
    typ, listed, rule = flag_type(DataConfig, option.name), choices(DataConfig, option.name), option.rule
    kw = {"key": option.name, "help": option.help}
    if typ is bool:
        return where.checkbox(option.label, option.default, **kw)
    if listed:
        return where.selectbox(option.label, listed, index=listed.index(option.default), **kw)
    step = option.step or 1
    lo = None if rule is None or rule.lo is None else rule.lo + (step if rule.lo_open else 0)
    hi = None if rule is None or rule.hi is None else rule.hi - (step if rule.hi_open else 0)
    if typ is float and lo is not None and hi is not None:
        return float(where.slider(option.label, float(lo), float(hi), float(option.default), float(step), **kw))
    value = where.number_input(option.label, min_value=lo, max_value=hi, value=option.default, step=typ(step), **kw)
    return typ(value)


def data_section(res: FormResult) -> tuple[dict, list[str]]:
    kind = datasets.get_kind(st.selectbox("Dataset", list(KINDS), format_func=KINDS.get, key="ds_kind"))
    d: dict = {}
    if kind.source is None:
        d["dataset"] = kind.name
    else:
        path = st.text_input(f"{kind.source} {kind.source_hint}", key="ds_path", placeholder=kind.source_hint)
        d["dataset"] = f"{kind.name}:{path.strip()}"
        if not path.strip():
            res.errors["dataset"] = "Enter the dataset's path"
    if kind.findings is not None:
        d["finding"] = st.selectbox(
            "Target finding", [*kind.findings, "all"], key="finding", help=f"The target: {kind.target_help}"
        )
    else:
        d["finding"] = (
            st.text_input("Positive class / target label", key="finding_text", help=f"Blank = {kind.target_help}")
            or None
        )
    cols = st.columns(2)
    for i, option in enumerate(kind.options):
        d[option.name] = _option_widget(option, cols[i % 2])
    image_size = next(f for f in dataclasses.fields(DataConfig) if f.name == "image_size")
    d["image_size"] = int(
        st.number_input(
            "Image size (px)", 28, kind.max_image_size or 512, image_size.default, step=16, key="image_size"
        )
    )
    sizes = _split_list(
        st.text_input(
            "Training-set size(s)",
            "100%",
            key="train_size",
            help="fractions (5%, 0.05) or counts (500) of the training split; comma-separated in a sweep",
        ),
        "training-set size",
        res.errors,
        "train_size",
    )
    return d, sizes


def data_feedback(d: dict, sizes: list[str], res: FormResult) -> None:
    """Counts for the first size, live; a warning below ~20 positives; errors next to the data controls."""
    if "dataset" in res.errors or not sizes:
        return
    try:
        cfg = DataConfig(**{**d, "train_size": sizes[0] if sizes[0] not in ("100%", "1") else None})
        s = data_summary(cfg.to_json())
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as e:
        res.errors["dataset"] = str(e)
        return
    c = s["counts"]
    tr, va, te = c["train"], c["val"], c["test"]
    if s["info"].get("target_note"):  # the positive class was chosen from the data: say which
        st.info(s["info"]["target_note"].capitalize())
    st.caption(
        f"train {tr['n']} ({tr['n_pos']} positive, {tr['n'] - tr['n_pos']} negative) · val {va['n']} "
        f"({va['n_pos']} pos.) · test {te['n']} ({te['n_pos']} pos.) · target **{s['target']}**"
    )
    if tr["n_pos"] < 20:
        st.warning(f"Only {tr['n_pos']} positive training images: expect noisy results; compare several seeds.")
    with st.expander("Preview test images"):
        st.image(preview_png(cfg.to_json(), n=8, cols=4, px=128), width="stretch")


def model_section(d: dict, sweep: bool, res: FormResult) -> tuple[dict, list[str], list[str]]:
    backbone = st.selectbox(
        "Backbone",
        list(registry.BACKBONES),
        key="backbone",
        help="  \n".join(f"**{b}**: {spec.description}" for b, spec in registry.BACKBONES.items()),
    )
    st.caption(registry.BACKBONES[backbone].description)
    strategy = st.selectbox(
        "Strategy",
        list(STRATEGIES),
        key="strategy",
        format_func=lambda s: f"{s} ({STRATEGIES[s].label})",
        help="  \n".join(f"**{s.name}** ({s.label}): {s.description}" for s in STRATEGIES.values()),
    )
    table_size = max(d["image_size"], registry.min_input_size(backbone))
    rows = {r["name"]: r for r in cut_table(backbone, table_size)}
    layer_level = st.toggle("Show layer-level cuts", False, key="layer_level")
    names = [p.name for p in registry.cut_points(backbone) if layer_level or p.level != "layer"]
    if STRATEGIES[strategy].cut_rule == "none":
        cuts = ["full"]
        st.caption(f"{strategy} trains the whole network (cut = full)")
    elif sweep:
        cuts = st.multiselect(
            "Cut points",
            names,
            default=names[len(names) // 2 : len(names) // 2 + 2],
            key="cuts",
            format_func=lambda n: _cut_label(rows, n),
        )
    else:
        cuts = [
            st.selectbox(
                "Cut point", names, index=min(2, len(names) - 1), key="cut", format_func=lambda n: _cut_label(rows, n)
            )
        ]
    if not cuts:
        res.errors["cut"] = "Choose at least one cut point"
    else:
        _cut_caption(rows, cuts, table_size, d["image_size"])
    w = weights_status(backbone)
    finished = [r for r in get_store().ids() if get_store().status(r).get("state") == "done"]
    options = ["random", "imagenet", "file:", "run:"]
    label = {
        "random": "random",
        "imagenet": weights_label(backbone),
        "file:": "file: a state dict",
        "run:": "run: a finished run",
    }
    picked = (
        st.multiselect("Initialisations", options, default=["random"], key="inits", format_func=label.get)
        if sweep
        else [st.selectbox("Initialisation", options, key="init", format_func=label.get)]
    )
    inits = []
    for p in picked:
        if p == "file:":
            path = st.text_input("State dict file", key="init_file")
            inits.append(f"file:{path.strip()}")
            problem = source_problem(inits[-1])
            if problem:
                res.errors["init"] = problem
        elif p == "run:":
            if not finished:
                res.errors["init"] = "No finished run to transfer from yet"
            else:
                inits.append(
                    "run:"
                    + st.selectbox(
                        "Source run",
                        finished[::-1],
                        key="init_run",
                        format_func=lambda r: f"{r} · {get_store().status(r).get('name')}",
                    )
                )
        elif p == "imagenet" and not w["available"] and not (w["file"] and weights_view.offer(backbone, "train_w")):
            res.errors["init"] = f"ImageNet weights for {backbone} are not available offline" + (
                f": put {w['file'].rsplit('/', 1)[-1]} into {w['file'].rsplit('/', 1)[0]} "
                f"(`python -m medtl models --download {backbone}` where there is internet), or choose random."
                if w["file"]
                else ": none exist for this backbone."
            )
        else:
            inits.append(p)
    if not picked:
        res.errors["init"] = "Choose at least one initialisation"
    return {"backbone": backbone, "strategy": strategy}, cuts, inits


def source_problem(init: str) -> str | None:
    """Why a ``file:``/``run:`` initialisation cannot be used now, or None (forms check it before queueing)."""
    kind, _, ref = init.partition(":")
    ref = ref.strip()
    if not ref:
        return "Enter the path of the state dict file" if kind == "file" else "Enter the id of a finished run"
    if kind == "file" and not Path(ref).expanduser().is_file():
        return f"Initialisation file {ref} does not exist"
    if kind == "run":
        store = get_store()
        try:
            found = store.path(ref).is_dir()
        except ValueError as e:  # not a run id at all
            return str(e)
        if not found:
            return f"No run {ref} in {store.root}: a run: source is a finished run of this runs folder"
        state = store.status(ref).get("state", "?")
        if state != "done":
            return f"Run {ref} has not finished (state: {state}): it cannot be a source yet"
    return None


def _checked(where, name: str, value, res: FormResult):
    """A training control's value checked against TrainConfig's rule for it; a problem is shown
    right under the control and blocks queueing (Streamlit's own min/max would silently keep the
    previous value instead)."""
    try:
        check_value(TrainConfig, name, value)
    except ValueError as e:
        res.errors[name] = str(e)
        where.error(str(e), icon=":material/error:")
    return value


def train_section(res: FormResult) -> tuple[dict, list[str]]:
    default = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    c1, c2 = st.columns(2)
    t = {
        "epochs": _checked(c1, "epochs", int(c1.number_input("Epochs", value=default["epochs"], key="epochs")), res),
        "batch_size": _checked(
            c2, "batch_size", int(c2.number_input("Batch size", value=default["batch_size"], key="batch_size")), res
        ),
        "lr": _checked(
            c1,
            "lr",
            float(c1.number_input("Learning rate", value=default["lr"], step=1e-4, format="%g", key="lr")),
            res,
        ),
        "device": c2.selectbox("Device", ["auto", "cpu", "cuda"], key="device"),
        "compile": st.checkbox(
            "Compile (torch.compile)",
            False,
            key="compile",
            help="A one-off compilation on the first batch (20-70 s on a 2-core CPU; cancelling waits for it), "
            "then steps at 0.98-1.17x the uncompiled speed on a 2-core CPU (usually faster on a GPU). "
            "Meant for long runs on a GPU; evaluation stays uncompiled.",
        ),
    }
    raw = _split_list(
        st.text_input("Seeds", "0", key="seeds", help="comma-separated whole numbers: one run per seed"),
        "seed",
        res.errors,
        "seeds",
    )
    bad = [x for x in raw if not x.lstrip("-").isdigit()]
    if bad:
        res.errors["seeds"] = f"Seeds are whole numbers separated by commas (e.g. 0, 1, 2). Got {', '.join(bad)}"
    return t, raw


def build_configs(
    d: dict, sizes: list[str], m: dict, cuts: list[str], inits: list[str], t: dict, seeds: list[str], res: FormResult
) -> None:
    """The grid of RunConfigs; a validation error is attached to the control it concerns."""
    if res.errors:
        return
    for size, cut, init, seed in itertools.product(sizes, cuts, inits, seeds):
        try:
            s = int(seed)
            data = DataConfig(**{**d, "train_size": None if size in ("100%", "1") else size, "seed": s})
            cfg = RunConfig(data, ModelConfig(**m, cut=cut, init=init), TrainConfig(**t, seed=s)).check()
        except ValueError as e:
            res.errors["config"] = str(e)
            return
        res.configs.append(cfg)


def read_config(raw: bytes) -> tuple[RunConfig | None, str]:
    """An uploaded config.json: the checked RunConfig, or None and the one-line message the CLI gives."""
    import json

    try:
        return RunConfig.from_dict(json.loads(raw)).check(), ""
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors too
        return None, f"This file is not a valid run config: {e}"
