"""Watching the validation history: when to stop early, and whether training went wrong.

Divergence rules (a run that breaks one still ends ``done``; it gets a ``warning`` sentence in
``status.json`` and ``metrics.json`` under ``val.warning``, and the user decides):

- *Exploded loss*: a validation loss that is not finite, or above ``LOSS_FACTOR`` (10) times the
  smaller of the first epoch's validation loss and the *chance loss* (the loss of a model that
  outputs logit 0 for every image on the validation split, e.g. about ln 2 per image for balanced
  binary BCE). The chance term catches a run that exploded within its first epoch (lr=1:
  585.6 after epoch 1 against about 0.7); the first-epoch term catches a later blow-up.
- *Chance AUROC*: every epoch's validation AUROC within ``0.5 ± AUROC_BAND`` (0.05), in a run
  of at least ``MIN_EPOCHS_AT_CHANCE`` (3) epochs (fewer epochs are too early to tell; epochs
  without an AUROC, a split with one class, are left out).
"""

from __future__ import annotations

import math

LOSS_FACTOR = 10.0
AUROC_BAND = 0.05
MIN_EPOCHS_AT_CHANCE = 3


class EarlyStopping:
    """Stop after ``patience`` epochs without improvement (0: never), as Lightning's ``EarlyStopping``."""

    def __init__(self, patience: int, stale: int = 0):
        self.patience, self.stale = patience, stale

    def step(self, improved: bool) -> bool:
        """Count one epoch; True when training should stop now."""
        self.stale = 0 if improved else self.stale + 1
        return bool(self.patience) and self.stale >= self.patience


def divergence_warning(history: list[dict], chance_loss: float | None = None) -> str | None:
    """A readable sentence where the history breaks a rule of this module, else None."""
    if not history:
        return None
    for h in history:
        if not math.isfinite(h["val_loss"]):
            return (
                f"Training diverged: the validation loss became {h['val_loss']} at epoch {h['epoch']}. "
                "Lower the learning rate (e.g. 10x)"
            )
    first = history[0]["val_loss"]
    limit = LOSS_FACTOR * min(first, chance_loss) if chance_loss else LOSS_FACTOR * first
    worst = max(history, key=lambda h: h["val_loss"])
    if limit > 0 and worst["val_loss"] > limit:
        ref = (
            f"a constant prediction's {chance_loss:.3g}"
            if chance_loss and chance_loss <= first
            else f"the first epoch's {first:.3g}"
        )
        return (
            f"Training diverged: the validation loss reached {worst['val_loss']:.4g} at epoch {worst['epoch']}, "
            f"more than {LOSS_FACTOR:g}x {ref}. Lower the learning rate (e.g. 10x)"
        )
    aurocs = [h["val_auroc"] for h in history if h.get("val_auroc") is not None and math.isfinite(h["val_auroc"])]
    if len(aurocs) >= MIN_EPOCHS_AT_CHANCE and all(abs(a - 0.5) <= AUROC_BAND for a in aurocs):
        return (
            f"The model did not learn: the validation AUROC stayed at chance ({min(aurocs):.2f}-{max(aurocs):.2f}) "
            f"for all {len(aurocs)} epochs. Check the labels, or change the learning rate"
        )
    return None
