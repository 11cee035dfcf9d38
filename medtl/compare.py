"""Summaries for comparing runs: repeats grouped by experiment key, the fields that tell runs in
view apart, metric vs truncation depth with intervals.

Inputs are the RunStore's table (one row per run: ``id``, ``name``, ``experiment``, dotted config
and metric columns). Repeats are runs with the same ``experiment`` key
(:meth:`medtl.config.RunConfig.experiment_key`: the config minus seeds and execution settings);
nothing here groups by display name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import pandas as pd

from medtl import datasets, stats
from medtl.config import OUTSIDE_KEY, SEED_FIELDS, DataConfig, ModelConfig, TrainConfig
from medtl.datasets import train_size_label
from medtl.initialisations import label as init_label
from medtl.metrics import registry
from medtl.metrics.operating import DEFAULT_RULE
from medtl.strategies import get_strategy


class _Columns(Mapping):
    """The runs table's metric columns (``test.auroc``) -> their records, read from the registry on each use."""

    def __getitem__(self, column: str) -> registry.Metric:
        m = registry.METRICS.get(column.removeprefix("test."))
        if m is None or m.column != column:
            raise KeyError(column)
        return m

    def __iter__(self) -> Iterator[str]:
        return (m.column for m in registry.METRICS.values())

    def __len__(self) -> int:
        return len(registry.METRICS)


# one column per metric record: label, direction, range and format live on the record
METRICS: Mapping[str, registry.Metric] = _Columns()
SECONDARY = {"model.params": "parameters", "model.latency_ms": "latency (ms / image)", "model.macs": "MACs"}
# config fields that a run's name already shows (RunConfig.name)
NAME_FIELDS = (
    "data.dataset",
    "data.finding",
    "model.backbone",
    "model.strategy",
    "model.cut",
    "model.init",
    "data.train_size",
    *SEED_FIELDS,
)


# the config's own fields: metrics.json's sections share the prefixes (train.seconds, model.params are results)
CONFIG_FIELDS = frozenset(
    f"{part}.{f.name}"
    for part, cls in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig))
    for f in dataclasses.fields(cls)
)


def config_columns(rows: pd.DataFrame) -> list[str]:
    """The table's config columns (``model.cut``), not the metrics that share a prefix (``model.params``)."""
    return [c for c in rows.columns if c in CONFIG_FIELDS]


def varying(rows: pd.DataFrame, leave_out: tuple[str, ...] = ()) -> list[str]:
    """Config columns whose values differ between ``rows`` (seeds and execution settings aside)."""
    skip = set(leave_out) | set(SEED_FIELDS) | set(OUTSIDE_KEY)
    return [c for c in config_columns(rows) if c not in skip and rows[c].map(str).nunique() > 1]


def fmt_value(v) -> str:
    """A config value for labels: 0.001 not 0.0010000000000000002, None as '-'."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def extra_labels(rows: pd.DataFrame, fields: list[str]) -> pd.Series:
    """``lr=1 · image_size=32`` for each row: the ``fields`` that tell the runs in view apart, a dataset kind's
    option only on runs of that kind (a MedMNIST run's ``n_images`` is SynthCXR's default, not its setting);
    column by column, so 10,000 rows take milliseconds."""
    kinds = rows["data.dataset"].astype(str).str.split(":", n=1).str[0] if "data.dataset" in rows else None
    out = pd.Series("", index=rows.index)
    for f in fields:
        text = f"{f.split('.', 1)[1]}=" + rows[f].map(fmt_value)
        name = f.removeprefix("data.")
        if kinds is not None and name != f and name in datasets.options():  # a kind's option: its runs only
            text = text.where(kinds == datasets.options()[name][0].name, "")
        out = join(out, text)
    return out


def join(a: pd.Series, b: pd.Series, sep: str = " · ") -> pd.Series:
    """Element-wise ``a · b``, leaving out empty parts."""
    return a.where(b == "", a.where(a == "", a + sep) + b)


def wrap(label: str, width: int = 60) -> str:
    """Break a ``a · b · c`` label into lines of about ``width`` characters (``<br>``, for Plotly legends)."""
    lines, line = [], ""
    for part in label.split(" · "):
        if line and len(line) + 3 + len(part) > width:
            lines.append(line)
            line = part
        else:
            line = f"{line} · {part}" if line else part
    return "<br>".join([*lines, line])


def short_labels(rows: pd.DataFrame, always: tuple[str, ...] = ("model_label",), seed: bool = True) -> pd.Series:
    """Labels that keep only what tells ``rows`` apart: the parts of the run name that differ
    between them (dataset, model, initialisation, size, seed), those in ``always``, then any other
    differing field (``lr=1``). Short enough for legends and table cells."""
    d, _, keep, extra = _name_parts(rows, always, seed)
    out = pd.Series("", index=rows.index)
    for c in keep:
        out = join(out, d[c].map(str))
    return join(out, extra_labels(rows, extra)) if extra else out


def shared_label(rows: pd.DataFrame, always: tuple[str, ...] = ("model_label",), seed: bool = True) -> str:
    """The parts of the run name that :func:`short_labels` leaves out because every row shares
    them, as one ``a · b`` label: said once above labels that show only what differs. Empty when
    nothing is shared (or there are no rows)."""
    if rows.empty:
        return ""
    d, parts, keep, _ = _name_parts(rows, always, seed)
    return " · ".join(str(d[c].iloc[0]) for c in parts if c not in keep)


def _name_parts(rows: pd.DataFrame, always: tuple[str, ...], seed: bool):
    """``rows`` with the name's parts as columns (initialisation, size and seed as labels), those
    columns, the ones :func:`short_labels` keeps, and the other config fields that differ."""
    d = rows.assign(
        _size=rows["data.train_size"].map(train_size_label),
        _seed="seed " + rows["train.seed"].map(str),
        _init=rows["model.init"].map(init_label),
    )
    parts = ["data_label", "model_label", "_init", "_size"] + (["_seed"] if seed else [])
    keep = [c for c in parts if c in always or d[c].map(str).nunique() > 1]
    extra = varying(rows, NAME_FIELDS)
    if not keep and not extra:
        keep = ["model_label"]
    return d, parts, keep, extra


def display_names(rows: pd.DataFrame) -> pd.Series:
    """Run names, extended by the fields the name leaves out where runs in view differ in them
    (``... · seed 0 · lr=1``), so that no two different experiments look alike."""
    extra = varying(rows, NAME_FIELDS)
    names = rows["name"].astype(str)
    return join(names, extra_labels(rows, extra)) if extra else names


def differences(rows: pd.DataFrame) -> pd.DataFrame:
    """The config columns whose values differ between the given runs (runs as columns), as text."""
    cols = [c for c in config_columns(rows) if rows[c].map(str).nunique() > 1]
    out = rows.set_index("id")[cols].T.map(fmt_value)
    out.index.name = "field"
    return out


# the training size's one formatter lives with the concept; this name stays for pages/3_Compare.py
size_label = train_size_label


def cut_depth(backbone: str, cut: str, strategy: str) -> int:
    """Position of a run's (effective) cut along its backbone (finetune = the full network)."""
    from medtl.models import registry

    names = [p.name for p in registry.cut_points(backbone)]
    return names.index(get_strategy(strategy).effective_cut(cut))


Predictions = Callable[[str], "dict[str, np.ndarray] | None"]


def run_columns(
    pred: dict | None, rule: str | None = None, prevalence: float | None = None, n_boot: int = 200, run: str = "ID"
) -> dict:
    """A run's metric columns recomputed from its predictions (the runs table's ``test.*`` columns and
    ``_ci_lo``/``_ci_hi``): the operating point by ``rule`` (default the run's own, as recorded), and every
    prevalence-dependent metric at ``prevalence``; ``op_note`` says why there is no operating point."""
    if pred is None or np.asarray(pred["y_true"]).ndim != 1:
        return {"op_note": registry.no_operating_point(pred, run) if pred is not None else "no predictions"}
    test = registry.evaluate(pred, rule or DEFAULT_RULE, prevalence, n_boot=n_boot, run=run)
    op = test["op"]
    out: dict = {"op_note": None if op.get("available") else op["reason"], "test.op.rule": op["rule"]}
    out["test.op.threshold"] = op.get("threshold", np.nan)
    for key, m in registry.METRICS.items():
        part, _, leaf = key.rpartition(".")
        section = test.get(part, {}) if part else test
        name = f"{leaf}_at_prevalence" if prevalence is not None and m.prevalence else leaf
        if name in section:
            out[m.column] = section[name]
            lo, hi = section.get(f"{name}_ci", (np.nan, np.nan))
            out[f"{m.column}_ci_lo"], out[f"{m.column}_ci_hi"] = lo, hi
    return out


def recomputed(done: pd.DataFrame, rule: str = DEFAULT_RULE, prevalence: float | None = None) -> pd.Series:
    """Which runs of ``done`` need their metric columns recomputed from their predictions for ``rule`` and
    ``prevalence`` (:func:`with_columns`): another rule than the one recorded, or a deployment prevalence."""
    recorded = done["test.op.rule"] if "test.op.rule" in done else pd.Series(None, index=done.index, dtype=object)
    return (recorded != rule) | (prevalence is not None)


def with_columns(
    done: pd.DataFrame, columns: Callable[[str], dict], rule: str = DEFAULT_RULE, prevalence: float | None = None
) -> pd.DataFrame:
    """``done`` with the metric columns of each run whose recorded ones do not answer (another rule, a
    deployment prevalence, a run recorded before a metric existed) replaced by ``columns(run id)``
    (:func:`run_columns`, cached by the caller): what the table, the truncation figure and the seeds read."""
    if done.empty:
        return done
    stale = recomputed(done, rule, prevalence)
    out = done.copy()
    if "op_note" not in out:
        out["op_note"] = out.get("test.op.reason")
    if not stale.any():
        return out
    rows = pd.DataFrame([columns(i) for i in done.loc[stale, "id"]], index=done.index[stale])
    for c in rows.columns:
        col = (out[c] if c in out else pd.Series(None, index=out.index)).astype(object)
        col.loc[rows.index] = rows[c].astype(object)
        out[c] = col.infer_objects()
    return out


def calibration_views(pred: dict | None, prevalence: float | None = None) -> dict | None:
    """What the Compare page draws of one run's calibration: the reliability bins as trained and after
    temperature scaling fitted on validation, the temperature, and the decision curve of the scaled
    probabilities at ``prevalence``. None for a run without binary predictions."""
    from medtl.metrics import calibration as C
    from medtl.metrics import decision as D

    if pred is None or np.asarray(pred["y_true"]).ndim != 1:
        return None
    y, s = pred["y_true"], np.asarray(pred["y_score"], dtype=np.float64)
    has_val = "val_y_score" in pred and len(np.unique(pred["val_y_true"])) > 1
    t = C.fit_temperature(pred["val_y_true"], pred["val_y_score"]) if has_val else None
    scaled = C.apply_temperature(s, t) if t is not None else s
    return {
        "reliability": C.reliability(y, s),
        "reliability_scaled": C.reliability(y, scaled) if t is not None else None,
        "temperature": t,
        "ece": C.ece(y, s),
        "ece_scaled": C.ece(y, scaled),
        "brier": C.brier(y, s),
        "brier_scaled": C.brier(y, scaled),
        "decision": D.net_benefit(y, scaled, prevalence=prevalence),
        "prevalence": float(np.mean(y)) if prevalence is None else prevalence,
    }


Pooled = Callable[[tuple[str, ...]], "tuple[float, float] | None"]


def pooled_metric(metric: str) -> bool:
    """Whether ``metric`` (a runs-table column) has a pooled interval over repeats (its record's ``interval``)."""
    m = METRICS.get(metric)
    return m is not None and bool(m.interval)


def pooled_interval(
    ids: tuple[str, ...],
    predictions: Predictions,
    metric: str,
    n_boot: int = 500,
    rule: str | None = None,
    prevalence: float | None = None,
) -> tuple[float, float] | None:
    """95% interval of the mean of ``metric`` over the repeats ``ids``: a bootstrap over their shared test images
    (each run at its own threshold, chosen on its validation split by ``rule``; at ``prevalence``). None when they
    do not share one binary test set, a predictions file is missing or damaged, or a threshold is missing."""
    m = METRICS.get(metric)
    if m is None or not m.interval:
        return None
    try:
        preds = [predictions(i) for i in ids]
    except ValueError:  # a damaged predictions.npz: no pooled interval for this point
        return None
    if any(p is None or p["y_true"].ndim != 1 for p in preds):
        return None
    y = preds[0]["y_true"]
    if any(p["y_true"].shape != y.shape or not np.array_equal(p["y_true"], y) for p in preds):
        return None  # not the same test images: no pooled interval
    if m.key in ("auroc", "auprc"):  # the mean over seeds' rank metrics: the same draws as stats.bootstrap_mean
        got = stats.bootstrap_mean(y, np.stack([p["y_score"] for p in preds]), n_boot=n_boot, prevalence=prevalence)
        return tuple(got[m.key])
    rows = [(p["y_score"], registry.context(p, rule or DEFAULT_RULE)) for p in preds]
    if m.needs == "threshold" and any(c.threshold is None for _, c in rows):
        return None
    return tuple(stats.bootstrap_records(y, rows, [m.key], prevalence, n_boot)[m.key]["ci"])


def _interval(group: pd.DataFrame, metric: str, pooled: Pooled | None) -> tuple[float, float]:
    """95% interval of the mean of ``metric`` over the repeats in ``group``: one run -> its own
    bootstrap interval; several -> ``pooled`` (:func:`pooled_interval`) of their ids."""
    if len(group) == 1 or pooled is None or not pooled_metric(metric):
        lo, hi = group.get(f"{metric}_ci_lo"), group.get(f"{metric}_ci_hi")
        if lo is None or len(group) > 1:
            return (np.nan, np.nan)
        return float(lo.iloc[0]), float(hi.iloc[0])
    got = pooled(tuple(sorted(group["id"])))
    return (np.nan, np.nan) if got is None else (float(got[0]), float(got[1]))


def truncation_summary(
    done: pd.DataFrame,
    metric: str,
    secondary: str = "model.params",
    predictions: Predictions | None = None,
    n_boot: int = 500,
    rule: str | None = None,
    prevalence: float | None = None,
    max_lines: int | None = None,
    pooled: Pooled | None = None,
) -> pd.DataFrame:
    """One row per experiment (repeats over seeds pooled): mean, std, n and a 95% interval of
    ``metric``, the depth of its cut, the mean of ``secondary`` and its line (``group``: the
    experiment without its cut, labelled by the fields that tell the lines in view apart).

    Args:
        predictions: a run's predictions by id, for the pooled intervals of several repeats (with ``n_boot``);
        pooled: or the pooled intervals themselves by sorted run ids (:func:`pooled_interval`, e.g. cached);
        rule: the operating-point rule of the columns in ``done`` (:func:`with_columns`), for the pooled intervals.
        prevalence: the deployment prevalence of those columns (None: each test set's own).
        max_lines: keep this many lines — those with the most experiments, then the best mean (by the
            metric's direction) — and say how many were left out in ``attrs["hidden_lines"]`` (a figure of
            thousands of runs stays readable; intervals are computed for the kept points only).
    """
    if done.empty:
        return pd.DataFrame()
    d = done.copy()
    d["size"] = d["data.train_size"].map(train_size_label)
    cuts = {
        (s, c): get_strategy(s).effective_cut(c) for s, c in set(zip(d["model.strategy"], d["model.cut"], strict=True))
    }
    d["cut"] = [cuts[s, c] for s, c in zip(d["model.strategy"], d["model.cut"], strict=True)]
    depth = {(b, c): cut_depth(b, c, "truncate") for b, c in set(zip(d["model.backbone"], d["cut"], strict=True))}
    d["depth"] = [depth[b, c] for b, c in zip(d["model.backbone"], d["cut"], strict=True)]
    line_fields = [c for c in config_columns(d) if c not in ("model.cut", *SEED_FIELDS, *OUTSIDE_KEY)]
    columns = [[str(v) for v in d[c].tolist()] for c in line_fields]
    d["line"] = ["|".join(t) for t in zip(*columns, strict=True)] if line_fields else ""
    has_secondary = secondary in d
    if metric not in d:  # a record no run here has (yet): NaN points, not a KeyError
        d[metric] = np.nan
    higher = METRICS[metric].higher_is_better if metric in METRICS else True
    agg = d.groupby("experiment", sort=False).agg(
        line=("line", "first"),
        backbone=("model.backbone", "first"),
        init=("model.init", "first"),
        strategy=("model.strategy", "first"),
        size=("size", "first"),
        cut=("cut", "first"),
        depth=("depth", "first"),
        mean=(metric, "mean"),
        std=(metric, "std"),
        count=(metric, "size"),
        **({"secondary": (secondary, "mean"), "secondary_spread": (secondary, "std")} if has_secondary else {}),
    )
    out = agg.reset_index().rename(
        columns={"backbone": "model.backbone", "init": "model.init", "strategy": "model.strategy"}
    )
    out["std"] = out["std"].fillna(0.0)
    if not has_secondary:
        out["secondary"], out["secondary_spread"] = np.nan, 0.0
    out["secondary_spread"] = out["secondary_spread"].fillna(0.0)
    hidden = 0
    if max_lines is not None and out["line"].nunique() > max_lines:
        rank = (
            out.groupby("line")
            .agg(n=("experiment", "size"), best=("mean", "max" if higher else "min"))
            .sort_values(["n", "best"], ascending=[False, not higher])
        )
        keep = set(rank.index[:max_lines])
        hidden = len(rank) - len(keep)
        out = out[out["line"].isin(keep)].reset_index(drop=True)
        d = d[d["line"].isin(keep)]
    by = {k: g for k, g in d.groupby("experiment", sort=False)}
    if pooled is None and predictions is not None:

        def pooled(ids: tuple[str, ...]) -> tuple[float, float] | None:
            return pooled_interval(ids, predictions, metric, n_boot, rule, prevalence)

    ci = [_interval(by[k], metric, pooled) for k in out["experiment"]]
    out["lo"], out["hi"] = [c[0] for c in ci], [c[1] for c in ci]
    lines = d.drop_duplicates("line").set_index("line")
    tell = varying(lines.reset_index(), ("model.cut",))
    # initialisation and size always (the study's axes), then whatever else tells the lines apart
    shown = (["model.strategy"] if "model.strategy" in tell else []) + ["model.init", "data.train_size"]
    shown += [f for f in tell if f not in shown]

    def label(line: str) -> str:
        r = lines.loc[line]
        parts = []
        for f in shown:
            if f == "data.train_size":
                parts.append(train_size_label(r[f]))
            elif f == "model.init":
                parts.append(init_label(r[f]))
            elif f == "model.strategy":
                parts.append(str(r[f]))
            else:
                parts.append(f"{f.split('.', 1)[1]}={fmt_value(r[f])}")
        return " · ".join(parts)

    names = {line: wrap(label(line)) for line in out["line"].unique()}
    out["group"] = out["line"].map(names)
    out = out.sort_values(["group", "depth"]).reset_index(drop=True)
    out.attrs["hidden_lines"] = hidden
    return out


def seed_groups(done: pd.DataFrame) -> pd.Series:
    """A label per run shared exactly by its repeats (same experiment key): the name without its
    seed, plus the fields that tell experiments in view apart."""
    base = done["name"].str.replace(r" · seed \d+$", "", regex=True)
    extra = varying(done, NAME_FIELDS)
    labels = base if not extra else join(base, extra_labels(done, extra))
    # two experiments that still look alike (a field the name leaves out but equal in view cannot
    # differ, so this only happens for a key change): keep them apart by their key
    clash = labels.groupby(labels).transform(lambda s: done.loc[s.index, "experiment"].nunique() > 1)
    return labels.where(~clash, labels + " · " + done["experiment"].str[:6])


def default_backbone(done: pd.DataFrame) -> str:
    """The backbone with the most finished runs (ties: alphabetical)."""
    counts = done["model.backbone"].value_counts()
    return sorted(counts[counts == counts.max()].index)[0]
