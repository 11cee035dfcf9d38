"""The run / sweep form of the Train page: widgets in, RunConfigs (or messages) out."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.data.synth import FINDINGS
from medtl.models import registry
from medtl.models.weights import weights_status
from medtl.strategies import STRATEGIES
from ui.state import cut_table, data_summary, get_store, preview_png, weights_label

KINDS = {
    "synthetic": "SynthCXR (embedded, offline)",
    "medmnist": "MedMNIST .npz file",
    "chexpert": "CheXpert folder",
    "folder": "Image folder (one sub-folder per class)",
    "csv": "CSV manifest (path,label)",
}


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
    r = rows.get(name)
    return (
        name
        if r is None
        else f"{name} · {r['channels']} ch · {r['params'] / 1e6:.2f} M params · {r['macs'] / 1e9:.2f} GMACs"
    )


def data_section(res: FormResult) -> tuple[dict, list[str]]:
    kind = st.selectbox("Dataset", list(KINDS), format_func=KINDS.get, key="ds_kind")
    d: dict = {}
    if kind == "synthetic":
        d["dataset"] = "synthetic"
        d["finding"] = st.selectbox(
            "Target finding",
            [*FINDINGS, "all"],
            key="finding",
            help="'all' trains one multi-label model on the four findings",
        )
        c1, c2 = st.columns(2)
        d["n_images"] = int(c1.number_input("Images", 100, 100_000, 3000, step=500, key="n_images"))
        d["difficulty"] = float(
            c2.slider(
                "Difficulty",
                0.0,
                1.0,
                0.3,
                0.05,
                key="difficulty",
                help="0: large, high-contrast findings; 1: small, faint ones",
            )
        )
    else:
        path = st.text_input("Path", key="ds_path", placeholder="/data/chexpert or /data/pneumoniamnist.npz")
        d["dataset"] = f"{kind}:{path.strip()}"
        d["finding"] = (
            st.text_input(
                "Positive class / target label",
                key="finding_text",
                help="CheXpert observation, class folder, label value; blank = the dataset's default",
            )
            or None
        )
        if not path.strip():
            res.errors["dataset"] = "Enter the dataset's path"
    d["image_size"] = int(st.number_input("Image size (px)", 28, 512, 64, step=16, key="image_size"))
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
    st.caption(
        f"train {tr['n']} ({tr['n_pos']} positive, {tr['n'] - tr['n_pos']} negative) · val {va['n']} "
        f"({va['n_pos']} pos.) · test {te['n']} ({te['n_pos']} pos.) · target **{s['target']}**"
    )
    if tr["n_pos"] < 20:
        st.warning(f"Only {tr['n_pos']} positive training images: expect noisy results; compare several seeds.")
    with st.expander("Preview test images"):
        st.image(preview_png(cfg.to_json(), n=8), width="stretch")


def model_section(d: dict, sweep: bool, res: FormResult) -> tuple[dict, list[str], list[str]]:
    backbone = st.selectbox(
        "Backbone",
        list(registry.BACKBONES),
        key="backbone",
        format_func=lambda b: f"{b} — {registry.BACKBONES[b].description}",
    )
    strategy = st.selectbox(
        "Strategy",
        list(STRATEGIES),
        key="strategy",
        format_func=lambda s: f"{s} ({STRATEGIES[s].label})",
        help="  \n".join(f"**{s.name}** ({s.label}): {s.description}" for s in STRATEGIES.values()),
    )
    rows = {r["name"]: r for r in cut_table(backbone, max(d["image_size"], registry.min_input_size(backbone)))}
    layer_level = st.toggle("Show layer-level cuts", False, key="layer_level")
    names = [p.name for p in registry.cut_points(backbone) if layer_level or p.level != "layer"]
    if STRATEGIES[strategy].cut_rule == "none":
        cuts = ["full"]
        st.caption(f"{strategy} trains the whole network: " + _cut_label(rows, "full"))
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
            if not path.strip():
                res.errors["init"] = "Enter the path of the state dict file"
            elif not Path(path.strip()).expanduser().is_file():
                res.errors["init"] = f"Initialisation file {path.strip()} does not exist"
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
        elif p == "imagenet" and not w["available"]:
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


def train_section(res: FormResult) -> tuple[dict, list[str]]:
    c1, c2 = st.columns(2)
    t = {
        "epochs": int(c1.number_input("Epochs", 1, 500, 5, key="epochs")),
        "batch_size": int(c2.number_input("Batch size", 2, 1024, 32, key="batch_size")),
        "lr": float(c1.number_input("Learning rate", 1e-6, 1.0, 1e-3, step=1e-4, format="%g", key="lr")),
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
    seeds = _split_list(
        st.text_input("Seeds", "0", key="seeds", help="comma-separated: one run per seed"), "seed", res.errors, "seeds"
    )
    return t, seeds


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
            cfg = RunConfig(data, ModelConfig(**m, cut=cut, init=init), TrainConfig(**t, seed=s))
        except ValueError as e:
            res.errors["seeds" if "invalid literal" in str(e) else "config"] = str(e)
            return
        res.configs.append(cfg)
