"""Studies: a named grid of runs over one dataset, the two-stage truncation search, and its results.

A :class:`StudyConfig` is a base :class:`~medtl.config.RunConfig` plus axes (backbones, strategies,
cuts, initialisations, training sizes, seeds), saved as ``<runs dir>/studies/<name>/study.json``.
It references runs by experiment key (:meth:`RunConfig.key`), so re-running trains only what is
missing and runs trained elsewhere into the same folder count.

With ``cuts="search"`` (the TTL paper's procedure) stage 1 trains every block-level cut plus the
full network; once a group (backbone, strategy, init, size) has all its seeds, stage 2 adds the
layer-level cuts inside the block that won on validation, up to the first layer of the next block.
A search can start stage 1 from a few cuts instead of every block (``start``, e.g. the cut
advisor's top blocks, :func:`advise_start`): pretrained groups then train only those and the full
network in stage 1, and stage 2 refines around the winner as before.
Every choice reads validation metrics (``history.jsonl`` at the selected epoch); the test split is
only reported.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medtl.config import RunConfig, SelectBy, _Config
from medtl.fields import bad as _bad
from medtl.fields import check_fields
from medtl.runs import RunStore, atomic_write
from medtl.strategies import FULL, get_strategy

log = logging.getLogger(__name__)
CUT_MODES = ("blocks", "layers", "search")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")
_AXES = ("backbones", "strategies", "inits", "train_sizes", "seeds")


@dataclass(frozen=True)
class StudyConfig(_Config):
    """A saved question: which runs to train and how to choose the cut.

    Attributes:
        name: folder name under ``<runs dir>/studies``.
        base: the RunConfig every run starts from (dataset, image size, training settings).
        backbones, strategies, inits, train_sizes, seeds: the axes (``None`` size = all the data).
            ``finetune`` (the full network) is always trained as the reference.
        cuts: ``blocks`` (block-level cuts), ``layers`` (every cut point), ``search`` (two stages)
            or an explicit tuple of cut names.
        criterion: how a cut is chosen, on validation: ``val_auprc``, ``val_auroc`` or ``val_loss``.
        start: where a search's stage 1 starts, per backbone: ``{"resnet18": ["layer2", "layer3"]}``
            (e.g. the cut advisor's top blocks, :func:`advise_start`). Groups of that backbone with a
            pretrained initialisation train only these cuts and the full network in stage 1; groups
            with a random initialisation search every block (there is nothing pretrained to advise on).
            Needs ``cuts="search"``. A single cut name (the older form) applies to every backbone.
    """

    name: str = "study"
    base: RunConfig = field(default_factory=RunConfig)
    backbones: tuple[str, ...] = ("resnet18",)
    strategies: tuple[str, ...] = ("truncate",)
    cuts: str | tuple[str, ...] = "blocks"
    inits: tuple[str, ...] = ("random",)
    train_sizes: tuple[float | int | str | None, ...] = (None,)
    seeds: tuple[int, ...] = (0,)
    criterion: SelectBy = "val_auprc"
    start: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise _bad("name", self.name, "letters, digits, '-', '_' and '.' (a folder name)")
        if not isinstance(self.base, RunConfig):
            raise _bad("base", self.base, "a RunConfig")
        for axis in (*_AXES, "cuts"):  # JSON gives lists; frozen fields are tuples
            v = getattr(self, axis)
            if isinstance(v, list):
                object.__setattr__(self, axis, tuple(v))
        from medtl.data.imageset import parse_train_size

        # one spelling per size ("10%" = 0.1), so experiment keys match runs trained elsewhere
        object.__setattr__(self, "train_sizes", tuple(parse_train_size(z) for z in self.train_sizes))
        object.__setattr__(self, "start", self._start_cuts())
        check_fields(self)  # types and choices from the annotations, as for the run configs
        for axis in _AXES:
            if not getattr(self, axis):
                raise _bad(axis, getattr(self, axis), "a non-empty list")
        for s in self.strategies:
            get_strategy(s)
        if isinstance(self.cuts, str):
            if self.cuts not in CUT_MODES:
                raise _bad("cuts", self.cuts, f"one of {', '.join(CUT_MODES)} or a list of cut names")
        elif not isinstance(self.cuts, tuple) or not self.cuts:
            raise _bad("cuts", self.cuts, f"one of {', '.join(CUT_MODES)} or a non-empty list of cut names")
        if self.start and self.cuts != "search":
            raise _bad("start", self.start, "empty unless cuts is 'search' (it says where a search's stage 1 starts)")
        # every run of the grid must be a valid run: names checked against the registries (cuts per backbone)
        for cfg in self.stage1():
            cfg.check()

    def _start_cuts(self) -> dict[str, tuple[str, ...]]:
        """``start`` in one form: backbone -> its distinct cut names, bottom first (JSON lists, a bare
        name and aliases such as ResNet's ``layer4`` = ``full`` normalised; unknown names refused)."""
        start = self.start
        if start is None:
            return {}
        if isinstance(start, str):
            start = {b: (start,) for b in self.backbones if isinstance(b, str)}
        if not isinstance(start, dict):
            raise _bad("start", start, "a mapping of backbone to a list of cut names")
        out = {}
        for b, cuts in start.items():
            if b not in self.backbones:
                raise _bad("start", start, f"keyed by the study's backbones ({', '.join(self.backbones)})")
            cuts = (cuts,) if isinstance(cuts, str) else tuple(cuts or ())
            stages = cut_stages(b)
            unknown = [c for c in cuts if c not in stages]
            if unknown:
                raise _bad("start", start, f"cuts of {b} ({', '.join(stages)}); not {', '.join(map(str, unknown))}")
            name = {stages[c]: c for c in distinct_cuts(b, layers=True)}  # one name per distinct network
            chosen = sorted({stages[c] for c in cuts})
            if chosen:
                out[b] = tuple(name[s] for s in chosen)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudyConfig:
        if not isinstance(d, dict):
            raise ValueError(f"StudyConfig expects a JSON object. Got {type(d).__name__}")
        d = dict(d)
        if isinstance(d.get("base"), dict):
            d["base"] = RunConfig.from_dict(d["base"])
        return super().from_dict(d)

    # --- the grid ---------------------------------------------------------------------------------

    def inits_for(self, backbone: str) -> list[str]:
        """The initialisations that exist for ``backbone`` (CBR nets have no ImageNet weights: random only)."""
        from medtl.models.registry import get_spec

        has_weights = get_spec(backbone).weights is not None
        out = [i for i in self.inits if i != "imagenet" or has_weights]
        if not out:
            raise ValueError(
                f"inits {list(self.inits)} leave no initialisation for {backbone}: it has no ImageNet weights"
            )
        return out

    def started(self, backbone: str, init: str) -> tuple[str, ...] | None:
        """The cuts stage 1 starts from for (``backbone``, ``init``), or None: every block."""
        return self.start.get(backbone) if init != "random" else None

    def groups(self) -> list[tuple[str, str, str, Any]]:
        """(backbone, strategy, init, size) for every strategy that uses a cut."""
        return [
            (b, s, i, z)
            for b in self.backbones
            for s in self.strategies
            if get_strategy(s).cut_rule != "none"
            for i in self.inits_for(b)
            for z in self.train_sizes
        ]

    def run_config(self, backbone: str, strategy: str, cut: str, init: str, size, seed: int) -> RunConfig:
        """The RunConfig of one cell; ``truncate`` at ``full`` is full fine-tuning (one canonical run)."""
        if strategy == "truncate" and cut == FULL:
            strategy = "finetune"
        cut = get_strategy(strategy).effective_cut(cut)
        b = self.base
        return b.replace(
            data=b.data.replace(train_size=size, seed=seed),
            model=b.model.replace(backbone=backbone, strategy=strategy, cut=cut, init=init),
            train=b.train.replace(seed=seed),
        )

    def candidates(self, backbone: str, strategy: str, init: str = "random", stage: int = 1) -> list[str]:
        """The cuts a group trains in stage 1 (or every cut a search may reach with ``stage=2``)."""
        st = get_strategy(strategy)
        started = self.started(backbone, init)
        if isinstance(self.cuts, tuple):
            cuts = list(self.cuts)
        elif self.cuts == "layers" or stage == 2:
            cuts = distinct_cuts(backbone, layers=True)
        elif started:
            cuts = list(started)
        else:
            cuts = distinct_cuts(backbone, layers=False)
        if st.cut_rule == "below_full":
            cuts = [c for c in cuts if c != FULL]
        elif FULL not in cuts:  # the full network competes too (for truncate it is full fine-tuning)
            cuts.append(FULL)
        return cuts

    def stage1(self) -> list[RunConfig]:
        """Stage 1 (or the whole grid without a search): every cell's RunConfig, full fine-tuning included."""
        out: dict[str, RunConfig] = {}
        for b in self.backbones:
            for s in (*self.strategies, "finetune"):
                for i in self.inits_for(b):
                    cuts = [FULL] if get_strategy(s).cut_rule == "none" else self.candidates(b, s, i)
                    for z in self.train_sizes:
                        for seed in self.seeds:
                            for c in cuts:
                                cfg = self.run_config(b, s, c, i, z, seed)
                                out.setdefault(cfg.key(), cfg)
        return list(out.values())


def distinct_cuts(backbone: str, layers: bool) -> list[str]:
    """Cut names of ``backbone`` bottom first, one per distinct network (block names preferred).

    A ResNet cut at ``layer4`` is the full network and ``layer2`` is ``layer2.1``: such aliases
    share a stage index, and only one name per stage is kept (``full`` for the top).
    """
    from medtl.models.registry import cut_points

    points = cut_points(backbone)
    rank = {"full": 0, "block": 1, "stem": 1, "layer": 2}
    by_stage: dict[int, Any] = {}
    for p in points:
        if not layers and p.level == "layer":
            continue
        if p.stage not in by_stage or rank[p.level] < rank[by_stage[p.stage].level]:
            by_stage[p.stage] = p
    return [by_stage[s].name for s in sorted(by_stage)]


def cut_stages(backbone: str) -> dict[str, int]:
    """Cut name -> stage index (the depth along the network; aliases share one)."""
    from medtl.models.registry import cut_points

    return {p.name: p.stage for p in cut_points(backbone)}


def stage2_cuts(backbone: str, best: str, tried: list[str]) -> list[str]:
    """Layer-level cuts inside the block ending at ``best`` and up to the first layer of the next block.

    Args:
        backbone: the network; best: the stage-1 cut that won on validation; tried: stage-1 cuts.
    """
    stage = cut_stages(backbone)
    tried_stages = sorted({stage[c] for c in tried})
    # the bottom of the block that ends at (or holds) ``best``: the block-level cut below it, or a
    # tried cut closer still (stage 1 may have started from a few cuts only, not every block)
    blocks = [stage[c] for c in distinct_cuts(backbone, layers=False)]
    below = max((s for s in (*blocks, *tried_stages) if s < stage[best]), default=-1)
    every = distinct_cuts(backbone, layers=True)
    after = [c for c in every if stage[c] > stage[best]]
    upper = stage[after[0]] if after else stage[best]
    return [c for c in every if below < stage[c] <= upper and stage[c] not in tried_stages]


# --- the advisor's start -------------------------------------------------------------------------


def advisor_data(study: StudyConfig):
    """The data the advisor scores a study's cuts on: its smallest training size, first seed (the
    advisor sees no more training images than any group of the study)."""
    from medtl.data import load

    n = len(load(study.base.data.replace(train_size=None)).splits["train"])

    def count(z) -> int:
        return n if z is None else round(z * n) if isinstance(z, float) else int(z)

    return study.base.data.replace(train_size=min(study.train_sizes, key=count), seed=study.seeds[0])


def pretrained_inits(study: StudyConfig) -> dict[str, str]:
    """Backbone -> the first pretrained initialisation the study gives it (the one the advisor scores)."""
    out = {b: next((i for i in study.inits_for(b) if i != "random"), None) for b in study.backbones}
    return {b: i for b, i in out.items() if i is not None}


def advise_start(
    study: StudyConfig, store: RunStore, top: int = 2, n: int = 512, device: str = "auto", progress=None
) -> tuple[StudyConfig, dict]:
    """Start the search's stage 1 from the cut advisor's ``top`` block-level cuts of each backbone.

    For every backbone with a pretrained initialisation in the study, :func:`medtl.advise.advise`
    scores its block-level cuts from the first such initialisation on up to ``n`` training images
    of the study's smallest training size (seed: the first seed). The picks go into ``start``; the
    advisor's tables are returned (and saved beside the study by :func:`save_advice`).

    Raises:
        ValueError: the study does not search, has no pretrained initialisation, or ``top`` < 1.
        FileNotFoundError: an initialisation's weights are absent (ImageNet offline).
    """
    from medtl.advise import advise

    if study.cuts != "search":
        raise ValueError(f"The advisor starts a search: cuts must be 'search'. Got {study.cuts!r}")
    if top < 1:
        raise ValueError(f"top must be at least 1. Got {top}")
    pretrained = pretrained_inits(study)
    if not pretrained:
        raise ValueError(
            f"The advisor scores pretrained features: inits {list(study.inits)} have none for "
            f"{', '.join(study.backbones)} (add imagenet, file:<model.pt> or run:<id>)"
        )
    data = advisor_data(study)
    advice, start = {}, {}
    for k, (b, init) in enumerate(pretrained.items(), 1):
        if progress:
            progress(k, len(pretrained), b, init)
        result = advise(data, b, init, n=n, level="block", device=device, runs_dir=store.root)
        advice[b] = result
        start[b] = [c["cut"] for c in result["cuts"][:top]]
    return study.replace(start=start), {"train_size": data.train_size, "backbones": advice}


def advice_path(store: RunStore, name: str) -> Path:
    return study_path(store, name).with_name("advice.json")


def save_advice(study: StudyConfig, store: RunStore, advice: dict) -> Path:
    """Keep the advisor's tables beside ``study.json`` (the report shows them)."""
    p = advice_path(store, study.name)
    atomic_write(p, json.dumps(advice, indent=1, default=str))
    return p


def load_advice(store: RunStore, name: str) -> dict | None:
    """The advisor's tables that started the study's search, or None (none, or unreadable)."""
    p = advice_path(store, name)
    try:
        return json.loads(p.read_text()) if p.is_file() else None
    except (OSError, ValueError):
        return None


# --- storage ---------------------------------------------------------------------------------------


def study_path(store: RunStore, name: str) -> Path:
    if not _NAME_RE.match(name or ""):
        raise _bad("name", name, "letters, digits, '-', '_' and '.' (a folder name)")
    return store.root / "studies" / name / "study.json"


def save(study: StudyConfig, store: RunStore) -> Path:
    p = study_path(store, study.name)
    atomic_write(p, study.to_json())
    if not study.start:  # the advisor's tables describe a start this study no longer has
        advice_path(store, study.name).unlink(missing_ok=True)
    return p


def saved(store: RunStore) -> list[str]:
    """Names of the studies saved in ``store``, sorted."""
    return sorted(d.name for d in (store.root / "studies").glob("*") if (d / "study.json").is_file())


def load(store: RunStore, name: str) -> StudyConfig:
    p = study_path(store, name)
    if not p.is_file():
        known = saved(store)
        raise FileNotFoundError(f"No study {name!r} in {store.root / 'studies'}. Studies: {', '.join(known) or 'none'}")
    return StudyConfig.from_dict(json.loads(p.read_text()))


# --- presets ---------------------------------------------------------------------------------------


def preset(name: str) -> StudyConfig:
    """A ready-made study: ``quick``, ``demo``, ``paper`` or ``shallow-vs-deep``."""
    from medtl.config import DataConfig, ModelConfig, TrainConfig

    if name == "quick":
        # the whole pipeline in about a minute on a 2-core CPU (two cuts and full fine-tuning, one seed, 32 px):
        # a first look at the pages and the report; too small to learn the nodules (results near chance)
        base = RunConfig(
            DataConfig(dataset="synthetic", finding="nodule", image_size=32, n_images=400, difficulty=0.1),
            ModelConfig(backbone="resnet18"),
            TrainConfig(epochs=2, batch_size=32, bootstrap=200, patience=0),
        )
        return StudyConfig(
            "quick", base, ("resnet18",), ("truncate",), ("layer1", "layer2"), ("random",), (None,), (0,)
        )
    if name == "demo":
        # sized so the whole study (20 runs) finishes in under 6 minutes on a 2-core CPU (1000 images took
        # ~860 s of CPU time: 800 cut it by a fifth); large, high-contrast nodules (difficulty 0.1) so that
        # 4 epochs on 560 images learn (600 images x 3 epochs at difficulty 0.3: chance)
        base = RunConfig(
            DataConfig(dataset="synthetic", finding="nodule", image_size=64, n_images=800, difficulty=0.1),
            ModelConfig(backbone="resnet18"),
            TrainConfig(epochs=4, batch_size=32, bootstrap=500, patience=0),
        )
        return StudyConfig(
            "demo", base, ("resnet18",), ("truncate",), "blocks", ("random",), (None, 0.1), (0, 1), "val_auprc"
        )
    if name == "paper":
        base = RunConfig(
            DataConfig(dataset="synthetic", finding="nodule", image_size=128, n_images=3000),
            ModelConfig(backbone="resnet50"),
            TrainConfig(epochs=20, patience=5),
        )
        return StudyConfig(
            "paper",
            base,
            ("resnet50",),
            ("truncate", "freeze", "transfusion"),
            "search",
            ("imagenet", "random"),
            (0.05, 0.1, None),
            (0, 1, 2),
        )
    if name == "shallow-vs-deep":
        base = RunConfig(
            # 128 px: the 7x7 CBR nets need at least 91 px at full depth
            DataConfig(dataset="synthetic", finding="nodule", image_size=128, n_images=3000),
            ModelConfig(backbone="resnet50"),
            TrainConfig(epochs=10),
        )
        return StudyConfig(
            "shallow-vs-deep",
            base,
            ("cbr_tiny", "cbr_small", "cbr_large_w", "resnet50", "densenet121"),
            ("finetune",),
            "blocks",
            ("imagenet", "random"),
            (0.1, None),
            (0, 1, 2),
        )
    raise ValueError(f"Unknown preset {name!r}. Presets: {', '.join(PRESETS)}")


PRESETS = ("quick", "demo", "paper", "shallow-vs-deep")


# --- reading the runs ------------------------------------------------------------------------------


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


def advance(store: RunStore, submit: Callable[[RunConfig], Any]) -> list[str]:
    """Submit what every started study needs next (stage 2 once stage 1 is done); for a job queue's hook.

    A study counts as started once one of its runs is in ``store`` in any state. Only runs never
    tried are submitted: a failed or cancelled run is not queued again behind the user's back.

    Returns:
        The keys of the configs submitted.
    """
    tried = store.experiments(states=("done", "queued", "running", "failed", "cancelled", "interrupted"))
    done = store.experiments()
    out = []
    for name in saved(store):
        try:
            s = load(store, name)
        except (OSError, ValueError) as e:  # one broken study.json must not stop the others
            log.warning("study %s cannot be read: %s", name, e)
            continue
        if not any(c.key() in tried for c in s.stage1()):
            continue
        for cfg in planned(s, store, done):
            if cfg.key() not in tried:
                submit(cfg)
                tried[cfg.key()] = ""
                out.append(cfg.key())
    return out


Executor = Callable[[RunConfig], Any]


def run_study(
    study: StudyConfig, store: RunStore, executor: Executor | None = None, on_run: Callable | None = None
) -> dict:
    """Train what the study is missing, stage after stage, until nothing new can be trained.

    Args:
        executor: trains one RunConfig into ``store`` (default: inline with :func:`medtl.train.run`).
        on_run: called as ``on_run(i, total, cfg)`` before each run.

    Returns:
        ``{"trained": n, "failed": n, "missing": n}`` (missing: runs still needed, e.g. after failures).
    """
    save(study, store)
    executor = executor or (lambda cfg: _train_inline(store, cfg))
    tried: set[str] = set()
    trained = failed = 0
    while True:
        todo = [c for c in plan(study, store) if c.key() not in tried]
        if not todo:
            break
        for k, cfg in enumerate(todo, 1):
            if on_run:
                on_run(k, len(todo), cfg)
            tried.add(cfg.key())
            executor(cfg)
            trained += 1
        done = store.experiments()
        failed = sum(k not in done for k in tried)
    return {"trained": trained, "failed": failed, "missing": len(plan(study, store))}


def _train_inline(store: RunStore, cfg: RunConfig) -> dict:
    from medtl import train

    run_id = store.create(cfg, state="queued")
    return train.run(cfg, store, run_id)
