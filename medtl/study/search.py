"""The two-stage truncation search: which runs a study needs, and which cut it selects.

With ``cuts="search"`` (the TTL paper's procedure) stage 1 trains every block-level cut plus the
full network; once a group (backbone, strategy, init, size) has all its seeds, stage 2 adds the
layer-level cuts inside the block that won on validation, up to the first layer of the next block.
A search can start stage 1 from a few cuts instead of every block (``StudyConfig.start``, e.g. the
cut advisor's top blocks). Every choice reads validation metrics (``history.jsonl`` at the selected
epoch); the test split is only reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medtl.config import RunConfig
from medtl.runs import RunStore
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


def val_score(store: RunStore, run_id: str, criterion: str) -> float:
    """The validation criterion of a finished run at its selected epoch (higher is better).

    Reads ``metrics.json``'s ``val.best_epoch`` and that line of ``history.jsonl``: never the test split.
    """
    best = (store.metrics(run_id) or {}).get("val", {}).get("best_epoch")
    hist = store.history(run_id)
    if not hist:
        raise ValueError(f"Run {run_id} has no history.jsonl: cannot read its validation {criterion}")
    row = next((h for h in hist if h.get("epoch") == best), hist[-1])
    v = float(row[criterion])
    return -v if criterion == "val_loss" else v


@dataclass
class Cell:
    """The finished runs of one configuration (all seeds)."""

    cfg: RunConfig
    runs: dict[int, str]  # seed -> run id


def _cells(study: StudyConfig, store: RunStore, done: dict[str, str], b, s, i, z, cuts) -> dict[str, Cell]:
    out = {}
    for c in cuts:
        runs = {}
        for seed in study.seeds:
            cfg = study.run_config(b, s, c, i, z, seed)
            if cfg.key() in done:
                runs[seed] = done[cfg.key()]
        out[c] = Cell(study.run_config(b, s, c, i, z, study.seeds[0]), runs)
    return out


def _complete(cells: dict[str, Cell], n_seeds: int) -> bool:
    return all(len(c.runs) == n_seeds for c in cells.values())


def _best(study: StudyConfig, store: RunStore, cells: dict[str, Cell]) -> tuple[str, dict[str, float]]:
    """The cut with the best mean validation criterion over seeds (ties: the shallower cut)."""
    means = {
        c: sum(val_score(store, r, study.criterion) for r in cell.runs.values()) / len(cell.runs)
        for c, cell in cells.items()
        if cell.runs
    }
    if not means:
        raise ValueError("No finished runs to choose a cut from")
    return max(means, key=lambda c: means[c]), means


def search_state(study: StudyConfig, store: RunStore, done: dict[str, str] | None = None) -> list[dict]:
    """Per group: the stage-1 winner, the stage-2 cuts and the final choice (each None until known).

    Only validation metrics are read.
    """
    done = store.experiments() if done is None else done
    out = []
    for b, s, i, z in study.groups():
        cuts1 = study.candidates(b, s, i)
        cells = _cells(study, store, done, b, s, i, z, cuts1)
        g: dict[str, Any] = {"backbone": b, "strategy": s, "init": i, "size": z, "stage1": cuts1}
        g.update(stage1_best=None, stage2=[], selected=None, val={})
        if _complete(cells, len(study.seeds)):
            best, means = _best(study, store, cells)
            g["stage1_best"], g["val"] = best, means
            if study.cuts == "search":
                g["stage2"] = stage2_cuts(b, best, cuts1)
                cells2 = _cells(study, store, done, b, s, i, z, g["stage2"])
                if _complete(cells2, len(study.seeds)):
                    g["selected"], g["val"] = _best(study, store, {**cells, **cells2})
            else:
                g["selected"] = best
        out.append(g)
    return out


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
    busy = store.experiments(states=("done", "queued", "running"))
    return [c for c in planned(study, store, store.experiments()) if c.key() not in busy]
