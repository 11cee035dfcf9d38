"""The run / sweep form of the Train page: widgets in, RunConfigs (or messages) out."""

from __future__ import annotations

import dataclasses
import itertools

import streamlit as st

from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.fields import check_value
from medtl.initialisations import INITS, RANDOM, availability
from medtl.models import registry
from medtl.states import State
from medtl.strategies import STRATEGIES
from ui import weights_view
from ui.data_form import FormResult, index, init, keep
from ui.state import cut_table, get_store, weights_label

__all__ = [
    "FormResult",
    "build_configs",
    "model_section",
    "read_config",
    "source_problem",
    "submit_all",
    "train_section",
]


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
        "" if size == asked else f" (the nearest input this backbone accepts; it does not take {asked} px)"
    )
    if parts:
        st.caption(" · ".join(parts) + f" — backbone up to the cut, {at}")


def model_section(d: dict, sweep: bool, res: FormResult) -> tuple[dict, list[str], list[str]]:
    backbone = st.selectbox(
        "Backbone",
        list(registry.BACKBONES),
        index=index(registry.BACKBONES, init("backbone", "resnet18")) or 0,
        key="backbone",
        help="  \n".join(f"**{b}**: {spec.description}" for b, spec in registry.BACKBONES.items()),
    )
    st.caption(registry.BACKBONES[backbone].description)
    strategy = st.selectbox(
        "Strategy",
        list(STRATEGIES),
        index=index(STRATEGIES, init("strategy", "truncate")) or 0,
        key="strategy",
        format_func=lambda s: f"{s} ({STRATEGIES[s].label})",
        help="  \n".join(f"**{s.name}** ({s.label}): {s.description}" for s in STRATEGIES.values()),
    )
    table_size = registry.fit_input_size(backbone, d["image_size"])
    rows = {r["name"]: r for r in cut_table(backbone, table_size)}
    layer_level = st.toggle("Show layer-level cuts", value=init("layer_level", False), key="layer_level")
    names = [p.name for p in registry.cut_points(backbone) if layer_level or p.level != "layer"]
    init("cuts", names[len(names) // 2 : len(names) // 2 + 2])
    init("cut", names[min(2, len(names) - 1)])
    if not set(st.session_state["cuts"]) <= set(names):  # another backbone: its own cuts
        st.session_state["cuts"] = [c for c in st.session_state["cuts"] if c in names] or names[len(names) // 2 :][:2]
    if st.session_state["cut"] not in names:
        st.session_state["cut"] = names[min(2, len(names) - 1)]
    if STRATEGIES[strategy].cut_rule == "none":
        cuts = ["full"]
        st.caption(f"{strategy} trains the whole network (cut = full)")
    elif sweep:
        cuts = st.multiselect(
            "Cut points", names, default=st.session_state["cuts"], key="cuts", format_func=lambda n: _cut_label(rows, n)
        )
    else:
        at = index(names, st.session_state["cut"])
        cuts = [st.selectbox("Cut point", names, index=at, key="cut", format_func=lambda n: _cut_label(rows, n))]
    if not cuts:
        res.errors["cut"] = "Choose at least one cut point"
    else:
        _cut_caption(rows, cuts, table_size, d["image_size"])
    inits = _init_section(backbone, sweep, res)
    keep("backbone", "strategy", "layer_level", "cuts", "cut", "inits", "init", *(f"init_{k}" for k in INITS))
    return {"backbone": backbone, "strategy": strategy}, cuts, inits


def _init_section(backbone: str, sweep: bool, res: FormResult) -> list[str]:
    """The initialisation widgets, one option per record of :mod:`medtl.initialisations`: a kind that
    takes a reference asks for it (a finished run of this runs folder for a kind that lives there)."""
    label = {k.name: k.label for k in INITS.values()} | {"imagenet": weights_label(backbone)}
    options = list(INITS)
    picked = (
        st.multiselect("Initialisations", options, default=init("inits", [RANDOM]), key="inits", format_func=label.get)
        if sweep
        else [
            st.selectbox(
                "Initialisation", options, index=index(options, init("init", RANDOM)), key="init", format_func=label.get
            )
        ]
    )
    inits = []
    for name in picked:
        kind = INITS[name]
        if kind.store:
            store = get_store()
            finished = [r for r in store.ids() if store.status(r).get("state") == State.DONE]
            if not finished:
                res.errors["init"] = f"No {kind.ref} to transfer from yet"
                continue
            ref = st.selectbox(
                kind.ref.capitalize(),
                finished[::-1],
                key=f"init_{name}",
                format_func=lambda r: f"{r} · {get_store().status(r).get('name')}",
            )
        elif kind.ref is not None:
            seeded = init(f"init_{name}", "")
            ref = st.text_input(kind.ref.capitalize(), value=seeded, key=f"init_{name}").strip()
        spec = name if kind.ref is None else f"{name}:{ref}"
        w = availability(spec, backbone, ModelConfig.weights, get_store())
        if not w.ok and not (kind.published and w.file and weights_view.offer(backbone, "train_w")):
            res.errors["init"] = w.reason
            continue
        inits.append(spec)
    if not picked:
        res.errors["init"] = "Choose at least one initialisation"
    return inits


def source_problem(init: str, backbone: str = "resnet18") -> str | None:
    """Why an initialisation cannot be used now (offline, in this runs folder), or None (forms check it
    before queueing): its record's availability."""
    w = availability(init, backbone, ModelConfig.weights, get_store())
    return None if w.ok else w.reason


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
    v = {k: init(k, default[k]) for k in ("epochs", "batch_size", "lr", "device", "compile")}
    c1, c2 = st.columns(2)
    devices = ["auto", "cpu", "cuda"]
    t = {
        "epochs": _checked(c1, "epochs", int(c1.number_input("Epochs", value=v["epochs"], step=1, key="epochs")), res),
        "batch_size": _checked(
            c2, "batch_size", int(c2.number_input("Batch size", value=v["batch_size"], step=1, key="batch_size")), res
        ),
        "lr": _checked(
            c1, "lr", float(c1.number_input("Learning rate", value=v["lr"], step=1e-4, format="%g", key="lr")), res
        ),
        "device": c2.selectbox("Device", devices, index=index(devices, v["device"]) or 0, key="device"),
        "compile": st.checkbox(
            "Compile (torch.compile)",
            value=v["compile"],
            key="compile",
            help="A one-off compilation on the first batch (20-70 s on a 2-core CPU; cancelling waits for it), "
            "then steps at 0.98-1.17x the uncompiled speed on a 2-core CPU (usually faster on a GPU). "
            "Meant for long runs on a GPU; evaluation stays uncompiled.",
        ),
    }
    raw = _split_list(
        st.text_input(
            "Seeds", value=init("seeds", "0"), key="seeds", help="comma-separated whole numbers: one run per seed"
        ),
        "seed",
        res.errors,
        "seeds",
    )
    bad = [x for x in raw if not x.lstrip("-").isdigit()]
    if bad:
        res.errors["seeds"] = f"Seeds are whole numbers separated by commas (e.g. 0, 1, 2). Got {', '.join(bad)}"
    keep("epochs", "batch_size", "lr", "device", "compile", "seeds")
    return t, raw


def build_configs(
    d: dict, sizes: list[str], m: dict, cuts: list[str], inits: list[str], t: dict, seeds: list[str], res: FormResult
) -> None:
    """The grid of RunConfigs; a validation error is attached to the control it concerns."""
    if res.errors:
        return
    for size, cut, start, seed in itertools.product(sizes, cuts, inits, seeds):
        try:
            s = int(seed)
            data = DataConfig(**{**d, "train_size": size, "seed": s})
            cfg = registry.check_run(RunConfig(data, ModelConfig(**m, cut=cut, init=start), TrainConfig(**t, seed=s)))
        except ValueError as e:
            res.errors["config"] = str(e)
            return
        res.configs.append(cfg)


def submit_all(queue, configs: list[RunConfig]) -> tuple[int, list[str]]:
    """Queue each config through its claim; returns how many were queued and why the others were not (done,
    or trained by another writer of the runs folder meanwhile)."""
    queued, refused = 0, []
    for cfg in configs:
        try:
            queue.submit(cfg)
            queued += 1
        except ValueError as e:  # Busy, or done by now
            refused.append(f"{cfg.name}: {e}")
    return queued, refused


def read_config(raw: bytes) -> tuple[RunConfig | None, str]:
    """An uploaded config.json: the checked RunConfig, or None and the one-line message the CLI gives."""
    import json

    try:
        return registry.check_run(RunConfig.from_dict(json.loads(raw))), ""
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors too
        return None, f"This file is not a valid run config: {e}"
