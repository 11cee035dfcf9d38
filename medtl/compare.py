"""Summaries for comparing runs: differing config fields, metric vs truncation depth over seeds.

Inputs are the RunStore's table (one row per run, dotted config and metric columns).
"""

from __future__ import annotations

import pandas as pd

from medtl.models import registry
from medtl.strategies import get_strategy

METRICS = {"test.auroc": "AUROC", "test.auprc": "AUPRC (AP)", "test.auprc_trapezoid": "AUPRC (trapezoid)"}
SECONDARY = {"model.params": "parameters", "model.latency_ms": "latency (ms / image)", "model.macs": "MACs"}


def differences(rows: pd.DataFrame) -> pd.DataFrame:
    """The config columns whose values differ between the given runs (runs as columns)."""
    cfg_cols = [c for c in rows.columns if c.split(".", 1)[0] in ("data", "model", "train")]
    varying = [c for c in cfg_cols if rows[c].astype(str).nunique(dropna=False) > 1]
    out = rows.set_index("id")[varying].T
    out.index.name = "field"
    return out


def size_label(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "100%"
    return f"{float(value):.0%}" if isinstance(value, float) and value < 1 else str(int(value))


def cut_depth(backbone: str, cut: str, strategy: str) -> int:
    """Position of the cut a run's strategy really uses along its backbone (finetune: the full network)."""
    names = [p.name for p in registry.cut_points(backbone)]
    return names.index(get_strategy(strategy).effective_cut(cut))


def truncation_summary(done: pd.DataFrame, metric: str, secondary: str = "model.params") -> pd.DataFrame:
    """Mean, std and count of ``metric`` per (backbone, init, training size, strategy, cut) over seeds,
    with the depth of the cut and the mean of ``secondary``; sorted by depth."""
    if done.empty:
        return pd.DataFrame()
    d = done.copy()
    d["size"] = d["data.train_size"].map(size_label)
    d["cut"] = [get_strategy(s).effective_cut(c) for s, c in zip(d["model.strategy"], d["model.cut"], strict=True)]
    d["depth"] = [
        cut_depth(b, c, s) for b, c, s in zip(d["model.backbone"], d["model.cut"], d["model.strategy"], strict=True)
    ]
    keys = ["model.backbone", "model.init", "size", "model.strategy", "cut", "depth"]
    g = d.groupby(keys, dropna=False)
    out = g[metric].agg(["mean", "std", "count"]).reset_index()
    out["secondary"] = g[secondary].mean().values
    out["std"] = out["std"].fillna(0.0)
    out["group"] = out["model.init"] + " · " + out["size"]
    return out.sort_values(["group", "depth"]).reset_index(drop=True)


def seed_groups(done: pd.DataFrame) -> pd.Series:
    """A label per run that ignores the seed: runs with the same label differ only by seed."""
    return done["name"].str.replace(r" · seed \d+$", "", regex=True)
