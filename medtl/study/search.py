"""The two-stage truncation search: which runs a study needs, and which cut it selects.

With ``cuts="search"`` (the TTL paper's procedure) stage 1 trains every block-level cut plus the
full network; once a group (backbone, strategy, init, size) has all its seeds, stage 2 adds the
layer-level cuts inside the block that won on validation, up to the first layer of the next block.
A search can start stage 1 from a few cuts instead of every block (``StudyConfig.start``, e.g. the
cut advisor's top blocks). Every choice reads validation metrics (``history.jsonl`` at the selected
epoch); the test split is only reported.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medtl import stats
from medtl.config import RunConfig
from medtl.metrics.operating import DEFAULT_RULE
from medtl.runs import DamagedRun, RunStore
from medtl.states import ACTIVE, STATES, STOPPED, State
from medtl.study import criteria
from medtl.study.config import StudyConfig, cut_names


def stage2_cuts(backbone: str, best: str, tried: list[str]) -> list[str]:
    """Layer-level cuts inside the block ending at ``best`` and up to the first layer of the next block.

    Args:
        backbone: the network; best: the stage-1 cut that won on validation; tried: stage-1 cuts.
    """
    from medtl.models.registry import cut_stages

    stage = cut_stages(backbone)
    tried_stages = sorted({stage[c] for c in tried})
    # the bottom of the block that ends at (or holds) ``best``: the block-level cut below it, or a
    # tried cut closer still (stage 1 may have started from a few cuts only, not every block)
    blocks = [stage[c] for c in cut_names(backbone, "block")]
    below = max((s for s in (*blocks, *tried_stages) if s < stage[best]), default=-1)
    every = cut_names(backbone, "layer")
    after = [c for c in every if stage[c] > stage[best]]
    upper = stage[after[0]] if after else stage[best]
    return [c for c in every if below < stage[c] <= upper and stage[c] not in tried_stages]


def val_score(store: RunStore, run_id: str, criterion: str, rule: str = DEFAULT_RULE) -> float:
    """The validation criterion of a finished run at its selected epoch, signed so that higher is better
    (:func:`medtl.study.criteria.score`: history columns, or a metric at the operating point ``rule``
    picks on the validation predictions). Never the test split."""
    return criteria.score(store, run_id, criterion, rule)


@dataclass
class Cell:
    """The runs of one configuration: the finished ones by seed, and what keeps the others from finishing."""

    cfg: RunConfig
    runs: dict[int, str]  # seed -> finished run id
    keys: dict[int, str] = field(default_factory=dict)  # seed -> run key (finished or not)


def _cells(study: StudyConfig, store: RunStore, done: dict[str, str], b, s, i, z, cuts) -> dict[str, Cell]:
    out = {}
    for c in cuts:
        runs, keys = {}, {}
        for seed in study.seeds:
            cfg = study.run_config(b, s, c, i, z, seed)
            keys[seed] = cfg.key()
            if cfg.key() in done:
                runs[seed] = done[cfg.key()]
        out[c] = Cell(study.run_config(b, s, c, i, z, study.seeds[0]), runs, keys)
    return out


def _complete(cells: dict[str, Cell], n_seeds: int) -> bool:
    return all(len(c.runs) == n_seeds for c in cells.values())


# --- choosing a cut, ties within the validation noise -----------------------------------------------

TIE_BOOT = 500  # resamples of the validation images for the tie check


def _val_predictions(store: RunStore, run_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(index, y_true, y_score) of a run's validation split at its selected epoch, or None (recorded
    before validation predictions were kept, or multi-label)."""
    try:
        p = store.predictions(run_id)
    except (OSError, ValueError):
        return None
    if p is None or "val_y_score" not in p or np.asarray(p["val_y_true"]).ndim != 1:
        return None
    return p["val_index"], p["val_y_true"], p["val_y_score"]


@functools.lru_cache(maxsize=4096)
def _within_noise(root: str, criterion: str, best: tuple, other: tuple, rule: str = DEFAULT_RULE) -> bool | None:
    """Whether the paired bootstrap interval (validation images, mean over seeds) of best - other
    contains 0; None when some run has no validation predictions. ``best``/``other``: (seed, run id)
    pairs of finished runs, which never change (so the answer is cached)."""
    store = RunStore(root)
    pairs = []
    for (_, ra), (_, rb) in zip(best, other, strict=True):
        va, vb = _val_predictions(store, ra), _val_predictions(store, rb)
        if va is None or vb is None or not np.array_equal(va[0], vb[0]) or not np.array_equal(va[1], vb[1]):
            return None
        if va[1].min() == va[1].max():
            return None
        pairs.append((va[1], va[2], vb[2]))
    d = stats.delta_over_sets(pairs, criteria.CRITERIA[criterion].tie_metric, n_boot=TIE_BOOT, rule=rule)
    return not stats.significant(d["ci"])


def _size(store: RunStore, cell: Cell) -> tuple[float, int]:
    """Order of network size: parameters (mean over seeds), then depth of the cut (a shallower cut first)."""
    from medtl.models.registry import cut_stages

    params = [((store.metrics(r) or {}).get("model") or {}).get("params") for r in cell.runs.values()]
    params = [p for p in params if p is not None]
    m = cell.cfg.model  # a ModelConfig's cut is the one its strategy uses (finetune's is full)
    return (float(np.mean(params)) if params else float("inf"), cut_stages(m.backbone).get(m.cut, 0))


def _best(study: StudyConfig, store: RunStore, cells: dict[str, Cell]) -> tuple[str, dict[str, float], dict]:
    """The cut chosen on validation: the best mean criterion over seeds, or, where other cuts lie within
    the validation noise of it, the smallest network among them (a tie is broken toward the smaller
    network, as the one-standard-error rule of model selection does).

    Returns:
        (chosen cut, mean validation score per cut, the tie: ``{"best", "tied", "chosen", "method"}``
        with ``tied`` the cuts within noise of the best; ``method`` ``bootstrap`` (a paired bootstrap
        over validation images) or ``equal`` (runs without validation predictions: equal to 3 decimals)).
    """
    means = {
        c: sum(val_score(store, r, study.criterion, study.operating_point) for r in cell.runs.values()) / len(cell.runs)
        for c, cell in cells.items()
        if cell.runs
    }
    if not means:
        raise ValueError("No finished runs to choose a cut from")
    size = {c: _size(store, cells[c]) for c in means}
    winner = min(means, key=lambda c: (-means[c], size[c]))  # equal values: the smaller network
    best = tuple(sorted(cells[winner].runs.items()))
    tied, method = [], "bootstrap"
    for c in means:
        if c == winner:
            continue
        other = tuple(sorted(cells[c].runs.items()))
        same = None
        if [k for k, _ in best] == [k for k, _ in other]:
            same = _within_noise(str(store.root), study.criterion, best, other, study.operating_point)
        if same is None:  # no validation predictions to judge the noise: only values equal as shown count
            method = "equal"
            same = round(means[c], 3) == round(means[winner], 3)
        if same:
            tied.append(c)
    chosen = min([winner, *tied], key=lambda c: size[c])
    return chosen, means, {"best": winner, "tied": tied, "chosen": chosen, "method": method}


def _blockers(store: RunStore, cells: list[Cell], latest: dict[str, str]) -> dict[str, list]:
    """What keeps the unfinished runs of ``cells`` from finishing: failed (with their errors), waiting
    (queued or running) and never queued."""
    out: dict[str, list] = {"failed": [], "waiting": [], "not_queued": []}
    for cell in cells:
        for seed, key in cell.keys.items():
            if seed in cell.runs:
                continue
            run_id = latest.get(key)
            st = store.status(run_id) if run_id else {}
            state = st.get("state")
            m = cell.cfg.model
            where = {"cut": m.cut, "strategy": m.strategy, "seed": seed}
            if state in STOPPED:
                out["failed"].append({**where, "run": run_id, "state": state, "error": st.get("error") or state})
            elif state in ACTIVE:
                out["waiting"].append({**where, "run": run_id, "state": state})
            else:
                out["not_queued"].append(where)
    return out


def search_state(
    study: StudyConfig, store: RunStore, done: dict[str, str] | None = None, latest: dict[str, str] | None = None
) -> list[dict]:
    """Per group: the stage-1 winner, the stage-2 cuts and the final choice (each None until known), the
    tie on validation, and what keeps an undecided group waiting (``blocked``: failed, waiting, not queued).

    Only validation metrics are read.
    """
    done = store.experiments() if done is None else done
    out = []
    for b, s, i, z in study.groups():
        cuts1 = study.candidates(b, s, i)
        cells = _cells(study, store, done, b, s, i, z, cuts1)
        g: dict[str, Any] = {"backbone": b, "strategy": s, "init": i, "size": z, "stage1": cuts1}
        g.update(stage1_best=None, stage1_tie=None, stage2=[], selected=None, val={}, tie=None, blocked=None)
        pending = list(cells.values())
        try:
            if _complete(cells, len(study.seeds)):
                pending = _decide(study, store, done, g, cells)
        except DamagedRun as e:  # a finished run whose history cannot be read: missing, said, not a crash
            g["stage1_best"] = g["selected"] = None
            g["blocked"] = {"failed": [_damaged(e)], "waiting": [], "not_queued": []}
            out.append(g)
            continue
        except ValueError as e:  # a criterion that cannot be read (an operating point without validation predictions)
            g["error"], pending = str(e), []
        if pending:
            latest = store.experiments(states=STATES) if latest is None else latest
            g["blocked"] = _blockers(store, pending, latest)
        out.append(g)
    return out


def _damaged(e: DamagedRun) -> dict:
    return {"cut": "?", "strategy": "?", "seed": "?", "run": e.run_id, "state": State.DAMAGED, "error": str(e)}


def _decide(study: StudyConfig, store: RunStore, done: dict, g: dict, cells: dict) -> list:
    """The stage-1 choice, stage 2 and the final choice of group ``g`` (updated in place); returns the
    cells still unfinished (stage 2's)."""
    b, s, i, z, cuts1 = g["backbone"], g["strategy"], g["init"], g["size"], g["stage1"]
    best, means, tie = _best(study, store, cells)
    g["stage1_best"], g["val"], g["tie"], g["stage1_tie"] = best, means, tie, tie
    if study.cuts != "search":
        g["selected"] = best
        return []
    g["stage2"] = stage2_cuts(b, best, cuts1)
    cells2 = _cells(study, store, done, b, s, i, z, g["stage2"])
    if not _complete(cells2, len(study.seeds)):
        return list(cells2.values())
    g["selected"], g["val"], g["tie"] = _best(study, store, {**cells, **cells2})
    return []


def planned(study: StudyConfig, store: RunStore, done: dict[str, str] | None = None) -> list[RunConfig]:
    """Every run the study needs as far as it is known now (stage 2 appears once stage 1 is done)."""
    out = {c.key(): c for c in study.stage1()}
    for g in search_state(study, store, done):
        for c in g["stage2"]:
            for seed in study.seeds:
                cfg = study.run_config(g["backbone"], g["strategy"], c, g["init"], g["size"], seed)
                out.setdefault(cfg.key(), cfg)
    return list(out.values())


def plan(study: StudyConfig, store: RunStore) -> list[RunConfig]:
    """The runs to train now: planned and not done."""
    done = store.experiments()
    return [c for c in planned(study, store, done) if c.key() not in done]


def pending(study: StudyConfig, store: RunStore) -> list[RunConfig]:
    """The runs to queue now: planned and neither done nor already queued or running (for a job queue)."""
    busy = store.experiments(states=(State.DONE, *ACTIVE))
    return [c for c in planned(study, store, store.experiments()) if c.key() not in busy]
