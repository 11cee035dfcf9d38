"""StudyConfig: a named grid of runs over one dataset, saved as ``studies/<name>/study.json``.

A :class:`StudyConfig` is a base :class:`~medtl.config.RunConfig` plus axes (backbones, strategies,
cuts, initialisations, training sizes, seeds). It references runs by their key
(:meth:`RunConfig.key`), so re-running trains only what is missing and runs trained elsewhere into
the same folder count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from medtl import initialisations
from medtl.config import _RULE_FORMS, RunConfig, _Config
from medtl.datasets import parse_train_size
from medtl.fields import Rule, between, check_fields, one_of, setting
from medtl.fields import bad as _bad
from medtl.metrics.operating import valid_rule
from medtl.strategies import FULL, canonical, get_strategy, reference

CUT_MODES = ("blocks", "layers", "search")


def _criteria() -> tuple[str, ...]:
    from medtl.study.criteria import CRITERIA

    return tuple(CRITERIA)


_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,80}")  # matched whole (fullmatch): no trailing newline
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
        criterion: how a cut is chosen, on validation (:data:`medtl.study.criteria.CRITERIA`): ``val_auprc``,
            ``val_auroc``, ``val_loss``, or a metric at the operating point chosen on validation
            (``val_op_specificity``: with the default rule, specificity at 90% sensitivity).
        operating_point: the rule that picks each run's threshold on its validation split
            (:mod:`medtl.metrics.operating`): the conclusions compare the selected cut with full
            fine-tuning at it.
        prevalence: the deployment prevalence of the PR-side numbers (AP, PPV, NPV, flagged per 1,000,
            net benefit); None: the test set's own.
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
    criterion: str = setting("val_auprc", rule=one_of(_criteria))
    start: dict[str, tuple[str, ...]] = field(default_factory=dict)
    operating_point: str = setting("sensitivity:0.9", rule=Rule(valid_rule, _RULE_FORMS))
    prevalence: float | None = setting(None, rule=between(0, 1, lo_open=True, hi_open=True))

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME_RE.fullmatch(self.name):
            raise _bad("name", self.name, "letters, digits, '-', '_' and '.' (a folder name)")
        if not isinstance(self.base, RunConfig):
            raise _bad("base", self.base, "a RunConfig")
        for axis in (*_AXES, "cuts"):  # JSON gives lists; frozen fields are tuples
            v = getattr(self, axis)
            if isinstance(v, list):
                object.__setattr__(self, axis, tuple(v))
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
        from medtl.models.registry import check_run  # torch, when a study is checked; not at import (start-up)

        for cfg in self.stage1():
            check_run(cfg)

    def _start_cuts(self) -> dict[str, tuple[str, ...]]:
        """``start`` in one form: backbone -> its distinct cut names, bottom first (JSON lists, a bare
        name and aliases such as ResNet's ``layer4`` = ``full`` normalised; unknown names refused)."""
        from medtl.models import registry

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
            stages = registry.cut_stages(b)
            unknown = [c for c in cuts if c not in stages]
            if unknown:
                raise _bad("start", start, f"cuts of {b} ({', '.join(stages)}); not {', '.join(map(str, unknown))}")
            name = {p.stage: p.name for p in registry.distinct_cuts(b, "layer")}  # one name per distinct network
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
        out = [i for i in self.inits if has_weights or not initialisations.parse(i).kind.published]
        if not out:
            raise ValueError(
                f"inits {list(self.inits)} leave no initialisation for {backbone}: it has no ImageNet weights"
            )
        return out

    def started(self, backbone: str, init: str) -> tuple[str, ...] | None:
        """The cuts stage 1 starts from for (``backbone``, ``init``), or None: every block."""
        return self.start.get(backbone) if initialisations.is_pretrained(init) else None

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
        """The RunConfig of one cell; ``truncate`` at ``full`` is full fine-tuning (one canonical run:
        :func:`medtl.strategies.canonical`)."""
        strategy, cut = canonical(strategy, cut)
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
            cuts = cut_names(backbone, "layer")
        elif started:
            cuts = list(started)
        else:
            cuts = cut_names(backbone, "block")
        if st.cut_rule == "below_full":
            cuts = [c for c in cuts if c != FULL]
        elif FULL not in cuts:  # the full network competes too (for truncate it is full fine-tuning)
            cuts.append(FULL)
        return cuts

    def stage1(self) -> list[RunConfig]:
        """Stage 1 (or the whole grid without a search): every cell's RunConfig, full fine-tuning included."""
        out: dict[str, RunConfig] = {}
        for b in self.backbones:
            for s in (*self.strategies, reference().name):
                for i in self.inits_for(b):
                    cuts = [FULL] if get_strategy(s).cut_rule == "none" else self.candidates(b, s, i)
                    for z in self.train_sizes:
                        for seed in self.seeds:
                            for c in cuts:
                                cfg = self.run_config(b, s, c, i, z, seed)
                                out.setdefault(cfg.key(), cfg)
        return list(out.values())


def cut_names(backbone: str, level: str) -> list[str]:
    """The names of :func:`medtl.models.registry.distinct_cuts`: one per distinct network, bottom first."""
    from medtl.models import registry

    return [p.name for p in registry.distinct_cuts(backbone, level)]
