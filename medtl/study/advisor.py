"""The cut advisor's start of a search: score each backbone's block-level cuts before training."""

from __future__ import annotations

from medtl.initialisations import is_pretrained
from medtl.runs import RunStore
from medtl.study.config import StudyConfig


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
    out = {b: next((i for i in study.inits_for(b) if is_pretrained(i)), None) for b in study.backbones}
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
