"""Transfer strategies as records: what each keeps, freezes and re-initialises relative to the cut.

One :class:`Strategy` per strategy; validation (``medtl.config``), the network builder
(``medtl.models.transfer``), the sweep expansion, comparisons, the Train form and the block
diagrams all read these records. Adding a strategy = one record here + its build rule in
``medtl.models.transfer.BUILD_RULES``. This module imports no torch (``medtl.config`` uses it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FULL = "full"


@dataclass(frozen=True)
class Strategy:
    """What a strategy does with a backbone cut at ``cut``.

    Attributes:
        name: the config value (``ModelConfig.strategy``).
        label: a short display label (``"TTL"``).
        description: one sentence for forms and help.
        cut_rule: how the cut is used: ``"none"`` (the cut is ignored and mapped to ``full``),
            ``"optional"`` (any cut, ``full`` included), ``"below_full"`` (a cut below ``full`` is needed).
        keeps_top: the layers above the cut stay in the network (False: they are discarded).
        frozen: which backbone stages are frozen: ``"none"``, ``"below"`` (up to the cut) or ``"all"``.
        reinit_above: the layers above the cut are re-initialised (not loaded from the source).
        backbone_lr_mult: the default learning-rate multiplier of the backbone relative to the head.
        diagram: per region (below the cut, above the cut) what happens to it: ``"fine-tuned"``,
            ``"frozen"``, ``"random"`` or ``"discarded"``.
        words: how a sentence names it at a cut, with ``{backbone}`` and ``{cut}`` (``truncating {backbone} at {cut}``).
        reference: the strategy every other one is compared with (full fine-tuning: the whole network
            trained, the usual TL); one record is (:func:`reference`).
    """

    name: str
    label: str
    description: str
    cut_rule: Literal["none", "optional", "below_full"]
    keeps_top: bool
    frozen: Literal["none", "below", "all"] = "none"
    reinit_above: bool = False
    backbone_lr_mult: float = 1.0
    diagram: tuple[str, str] = ("fine-tuned", "fine-tuned")
    words: str = "{backbone} at {cut}"
    reference: bool = False

    def effective_cut(self, cut: str) -> str:
        """The cut this strategy really uses (``finetune`` trains the whole network: ``full``)."""
        return FULL if self.cut_rule == "none" else cut

    def kept_cut(self, cut: str) -> str:
        """The deepest point of the backbone that stays in the network (what sets the minimum input size)."""
        return self.effective_cut(cut) if not self.keeps_top else FULL

    def check_cut(self, cut: str) -> None:
        """Raise ValueError when ``cut`` does not fit this strategy (names are checked by the backbone)."""
        if self.cut_rule == "none" and cut != FULL:
            raise ValueError(
                f"strategy {self.name!r} trains the whole network, so cut must be 'full'. Got cut={cut!r}; "
                "use strategy 'truncate' to cut the network"
            )
        if self.cut_rule == "below_full" and cut == FULL:
            raise ValueError(
                f"strategy {self.name!r} needs a cut below 'full' (what is {'frozen' if self.frozen == 'below' else 'kept pretrained'}). "
                "Got cut='full'"
            )

    def short(self, cut: str) -> str:
        """``truncate@layer2``, or just ``finetune`` for a strategy without a cut."""
        return self.name if self.cut_rule == "none" else f"{self.name}@{cut}"

    def at(self, backbone: str, cut: str) -> str:
        """This strategy at ``cut`` in a sentence: ``truncating resnet18 at layer2``."""
        return self.words.format(backbone=backbone, cut=cut)


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy(
            "truncate",
            "TTL",
            "truncated TL: keep the backbone up to the cut, discard the rest, fine-tune what is kept",
            "optional",
            keeps_top=False,
            diagram=("fine-tuned", "discarded"),
            words="truncating {backbone} at {cut}",
        ),
        Strategy(
            "finetune",
            "FTL",
            "full TL: fine-tune the whole network",
            "none",
            keeps_top=True,
            words="full fine-tuning of {backbone}",
            reference=True,
        ),
        Strategy(
            "freeze",
            "LWFT",
            "layer-wise fine-tuning: freeze up to the cut, fine-tune above",
            "below_full",
            keeps_top=True,
            frozen="below",
            diagram=("frozen", "fine-tuned"),
            words="freezing {backbone} up to {cut}",
        ),
        Strategy(
            "transfusion",
            "TF",
            "Transfusion: pretrained up to the cut, re-initialised above, all trained",
            "below_full",
            keeps_top=True,
            reinit_above=True,
            diagram=("fine-tuned", "random"),
            words="keeping {backbone}'s pretrained layers up to {cut} (Transfusion)",
        ),
        Strategy(
            "linear",
            "probe",
            "linear probe: frozen backbone (optionally cut), only the head is trained",
            "optional",
            keeps_top=False,
            frozen="all",
            diagram=("frozen", "discarded"),
            words="a linear probe on {backbone} at {cut}",
        ),
    )
}


def reference() -> Strategy:
    """The record every other strategy is compared with: full fine-tuning (the whole network trained)."""
    return next(s for s in STRATEGIES.values() if s.reference)


def canonical(name: str, cut: str) -> tuple[str, str]:
    """The one (strategy, cut) a network is recorded under: a cut the strategy ignores is ``full``, and a
    strategy that trains the whole network at ``full`` as the reference does (``truncate@full``) is the
    reference, so that the same network is one run."""
    s, ref = get_strategy(name), reference()
    cut = s.effective_cut(cut)
    if cut == FULL and (s.frozen, s.reinit_above) == (ref.frozen, ref.reinit_above):
        return ref.name, FULL
    return s.name, cut


def get_strategy(name: str) -> Strategy:
    """The record for ``name``; unknown names raise with the list of valid ones."""
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown strategy {name!r}. Valid strategies: {', '.join(STRATEGIES)}") from None
