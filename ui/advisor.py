""" "Suggest cuts": the cut advisor (:func:`medtl.advise.advise`) as a reusable page component.

Scores every cut of a pretrained initialisation on the chosen data before training (LogME and a
logistic-regression probe on the pooled features at each cut), shows the ranked table, and hands
the top cuts back to the page, which puts them into its cut selection.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from medtl.config import DataConfig, ModelConfig
from medtl.initialisations import Availability, availability, is_pretrained, parse
from medtl.initialisations import label as init_label
from ui.state import get_store

RANDOM_NOTE = (
    "Suggest cuts (scoring every cut before training) needs a pretrained initialisation: a random one has nothing "
    "pretrained to score, its features say nothing about what training will learn."
)


def _source_mtime(where: Availability) -> float:
    """When the initialisation's weights last changed (part of the cache key; 0 where absent)."""
    path = Path(where.file or "")
    return path.stat().st_mtime if path.is_file() else 0.0


@st.cache_data(show_spinner=False, max_entries=16)
def _advise(data_json: str, backbone: str, init: str, level: str, runs_dir: str, mtime: float) -> dict:
    from medtl.advise import advise

    return advise(DataConfig.from_dict(json.loads(data_json)), backbone, init, level=level, runs_dir=runs_dir)


def table(result: dict) -> pd.DataFrame:
    """The advisor's rows, best first (narrow: it sits in a form column)."""
    rows = [
        {"cut": c["cut"], "LogME": c["logme"], "AUROC": c["probe_auroc"], "AUPRC": c["probe_auprc"]}
        for c in result["cuts"]
    ]
    return pd.DataFrame(rows)


COLUMNS = {
    "cut": st.column_config.TextColumn("cut", help="Best first"),
    "LogME": st.column_config.NumberColumn("LogME", format="%.4f", help="LogME evidence per sample (higher: better)"),
    "AUROC": st.column_config.NumberColumn("AUROC", format="%.3f", help="Logistic-regression probe, 5-fold"),
    "AUPRC": st.column_config.NumberColumn("AUPRC", format="%.3f", help="Logistic-regression probe, 5-fold"),
}


def held(key_prefix: str) -> dict | None:
    """The advisor's last result shown under ``key_prefix`` (None before "Suggest cuts")."""
    value = st.session_state.get(f"{key_prefix}_advice")
    return None if value is None else value[1]


def suggest_cuts(data_cfg: DataConfig, model_dict: dict, key_prefix: str, top: int | None = None) -> list[str] | None:
    """The "Suggest cuts" action for ``model_dict`` (``backbone``, ``init``, optional ``level``:
    ``block`` or ``layer``) on ``data_cfg``.

    Returns the top cuts, best first, on the run in which the user clicks to take them (``top``
    of them, or as many as the user picks where ``top`` is None); else None.
    """
    backbone, init = model_dict["backbone"], model_dict.get("init") or "random"
    if not is_pretrained(init):
        st.caption(f":material/lightbulb: {RANDOM_NOTE}")
        return None
    store = get_store()
    where = availability(init, backbone, ModelConfig.weights, store)
    if not where.ok:
        kind = parse(init).kind
        what = f"the {kind.label} weights of {backbone}" if kind.ref is None else f"the weights of {init_label(init)}"
        st.caption(
            f":material/lightbulb: Suggest cuts needs {what}, which are not available offline (see the message above)."
        )
        return None
    level = model_dict.get("level", "block")
    args = (data_cfg.to_json(), backbone, init, level, str(store.root), _source_mtime(where))
    held_key = f"{key_prefix}_advice"
    if st.button(
        "Suggest cuts",
        key=f"{key_prefix}_suggest",
        icon=":material/insights:",
        help=f"Score every cut of {backbone} from {init} on up to 512 training images, without training: "
        "LogME evidence and a 5-fold logistic-regression probe on the pooled features at each cut.",
    ):
        with st.spinner(f"Scoring every cut of {backbone} from {init}…"):
            try:
                st.session_state[held_key] = (args, _advise(*args))
            except (ValueError, FileNotFoundError) as e:
                st.error(str(e), icon=":material/error:")
                return None
    held = st.session_state.get(held_key)
    if held is None or held[0] != args:  # not asked yet, or for other data / backbone / init
        return None
    result = held[1]
    st.dataframe(table(result), hide_index=True, column_config=COLUMNS, key=f"{key_prefix}_advice_table")
    st.caption(
        f"Best first, by the mean percentile rank of LogME and the probe's AUPRC among the cuts; {result['n']} "
        f"training images ({result['n_pos']} positive), {result['seconds']:.1f} s. A guide to which cuts to train "
        "first, not a result."
    )
    names = [c["cut"] for c in result["cuts"]]
    if top is None:
        k = int(st.number_input("Take the top", 1, len(names), min(3, len(names)), key=f"{key_prefix}_top"))
    else:
        k = min(top, len(names))
    label = f"Use {names[0]}" if k == 1 else f"Use the top {k} cuts"
    if st.button(label, key=f"{key_prefix}_take", icon=":material/done_all:"):
        return names[:k]
    return None
