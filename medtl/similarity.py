"""Feature reuse per cut: how much of the initial network's representation survives training.

Linear CKA (Kornblith et al., ICML 2019) between two representations of the same images, with
the unbiased HSIC estimator (Song et al., JMLR 2012, eq. 5; as recommended for CKA by Nguyen et
al., ICLR 2021), at every block-level stage of a run's network up to its cut: the network before
training (its initialisation rebuilt exactly: ImageNet, ``file:``, ``run:``, or random with the
run's seed as the trainer seeds it) against the network after training (``model.pt``), and, as the
baseline, an independently initialised random network against the trained one. This is the
analogue of the per-cut SVCCA figure of the truncated transfer learning study: high similarity
at the bottom and low at the top says the bottom layers are reused and the top is re-learned.

Representations are the stage's activations flattened over channels and positions (``flatten``,
as Kornblith et al. compare them), or averaged over positions (``gap``, one value per channel:
cheaper, and blind to where things are). Networks run in eval mode.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from medtl.config import RunConfig
from medtl.datasets import train_size_label
from medtl.initialisations import RANDOM, is_pretrained, state_dict
from medtl.models import build
from medtl.models.transfer import TransferNet
from medtl.runs import RunStore

FEATURES = ("flatten", "gap")


def gram(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """The linear kernel (n, n) of representations (n, ...), in float64, features centred."""
    x = torch.as_tensor(x).reshape(len(x), -1).double()
    x = x - x.mean(dim=0, keepdim=True)
    return (x @ x.T).numpy()


def hsic_unbiased(k: np.ndarray, l: np.ndarray) -> float:  # noqa: E741 (the paper's names)
    """Song et al.'s unbiased HSIC_1 of two (n, n) kernel matrices (n >= 4)."""
    n = len(k)
    if n < 4:
        raise ValueError(f"The unbiased HSIC needs at least 4 samples. Got {n}")
    k, l = k.copy(), l.copy()  # noqa: E741
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    ones_k, ones_l = k.sum(axis=0), l.sum(axis=0)  # 1^T K, 1^T L
    value = np.sum(k * l) + ones_k.sum() * ones_l.sum() / ((n - 1) * (n - 2)) - 2 * (ones_k @ ones_l) / (n - 2)
    return float(value / (n * (n - 3)))


def cka(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
    """Linear CKA of two representations of the same n images (rows), unbiased HSIC."""
    if len(x) != len(y):
        raise ValueError(f"x and y must describe the same images. Got {len(x)} and {len(y)} rows")
    return cka_gram(gram(x), gram(y))


def cka_gram(k: np.ndarray, l: np.ndarray) -> float:  # noqa: E741
    """Linear CKA from two kernel matrices; NaN where a representation is constant."""
    denom = np.sqrt(max(hsic_unbiased(k, k), 0.0) * max(hsic_unbiased(l, l), 0.0))
    return float(hsic_unbiased(k, l) / denom) if denom > 0 else float("nan")


# --- the networks of a run ------------------------------------------------------------------------


def initial_model(store: RunStore, run_id: str, seed: int | None = None) -> TransferNet:
    """The run's network as it was before training, in eval mode.

    ``seed=None`` rebuilds it exactly as the trainer did (seed everything with the run's seed,
    then build); another seed gives an independently initialised network of the same init kind.
    """
    cfg = store.config(run_id)
    return _built(cfg, store, cfg.train.seed if seed is None else seed)


def random_model(store: RunStore, run_id: str, seed: int | None = None) -> TransferNet:
    """An independently initialised random network of the run's architecture (the baseline)."""
    cfg = store.config(run_id)
    other = cfg.replace(model=cfg.model.replace(init=RANDOM))
    seed = cfg.train.seed + 1_000_003 if seed is None else seed
    return _built(other, store, seed)


def _built(cfg: RunConfig, store: RunStore, seed: int) -> TransferNet:
    from medtl import data as D
    from medtl.data.augment import normalization_stats
    from medtl.train import seed_everything

    data = D.load(cfg.data)
    n_out = 1 if data.target is not None else len(data.label_names)
    mcfg = cfg.model if cfg.model.num_outputs == n_out else cfg.model.replace(num_outputs=n_out)
    norm = None if is_pretrained(mcfg.init) else normalization_stats(data)
    source = state_dict(mcfg.init, mcfg.backbone, mcfg.weights, store)
    # as the trainer does: seed everything, then build (loading data and weights draws no torch random numbers)
    seed_everything(seed)
    return build(mcfg, data.image_size, data.channels, norm, source).eval()


@torch.no_grad()
def stage_features(
    model: TransferNet, modules: dict[str, nn.Module], images: torch.Tensor, kind: str = "flatten", batch_size: int = 64
) -> dict[str, np.ndarray]:
    """Each named module's output for ``images`` (float in [0, 1]), as (n, d) representations."""
    if kind not in FEATURES:
        raise ValueError(f"features must be one of {', '.join(FEATURES)}. Got {kind!r}")
    out: dict[str, list[torch.Tensor]] = {name: [] for name in modules}
    handles = [
        m.register_forward_hook(
            lambda _m, _i, o, name=name: out[name].append(model.pool(o) if kind == "gap" else o.flatten(1))
        )
        for name, m in modules.items()
    ]
    try:
        for s in range(0, len(images), batch_size):
            model(images[s : s + batch_size])
    finally:
        for h in handles:
            h.remove()
    return {name: torch.cat(v).numpy() for name, v in out.items()}


def run_similarity(
    store: RunStore, run_id: str, indices: np.ndarray | list[int] | None = None, n: int = 256, features: str = "flatten"
) -> dict:
    """Linear CKA per stage between the run's network before and after training, and between an
    independent random network and the trained one, on test images (``indices``, else the first ``n``)."""
    from medtl import data as D
    from medtl.cam import gradcam_layers
    from medtl.explain import load_model

    if n < 4:
        raise ValueError(f"n must be at least 4 (the unbiased HSIC needs 4 images). Got {n}")
    cfg = store.config(run_id)
    trained = load_model(store, run_id)
    data = D.load(cfg.data)
    idx = np.sort(np.asarray(indices if indices is not None else data.splits["test"][:n]))
    if len(idx) < 4:
        raise ValueError(f"indices must name at least 4 images. Got {len(idx)}")
    x = torch.from_numpy(np.asarray(data.images[idx])).float() / 255
    stages = gradcam_layers(cfg.model)
    nets = {"trained": trained, "initial": initial_model(store, run_id), "random": random_model(store, run_id)}
    grams = {
        key: {
            s: gram(f) for s, f in stage_features(net, {s: net.feature_module(s) for s in stages}, x, features).items()
        }
        for key, net in nets.items()
    }
    return {
        "run": run_id,
        "init": cfg.model.init,
        "features": features,
        "n": int(len(idx)),
        "stages": stages,
        "cka_initial": [cka_gram(grams["initial"][s], grams["trained"][s]) for s in stages],
        "cka_random": [cka_gram(grams["random"][s], grams["trained"][s]) for s in stages],
    }


# --- per run, cached; per study, mean over seeds ----------------------------------------------------


def cached_similarity(store: RunStore, run_id: str, n: int = 64, features: str = "flatten") -> dict:
    """:func:`run_similarity` on the first ``n`` test images, kept in the run folder
    (``similarity_<features>_<n>.json``): a finished run's networks do not change."""
    import json

    from medtl.runs import atomic_write

    path = store.path(run_id) / f"similarity_{features}_{n}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    result = run_similarity(store, run_id, n=n, features=features)
    atomic_write(path, json.dumps(result))
    return result


def mean_similarity(store: RunStore, run_ids: list[str], n: int = 64, features: str = "flatten") -> dict:
    """CKA per stage averaged over runs of one configuration (its seeds), with the per-run values."""
    if not run_ids:
        raise ValueError("mean_similarity needs at least one run")
    each = [cached_similarity(store, r, n, features) for r in run_ids]
    stages = each[0]["stages"]
    with np.errstate(all="ignore"):
        mean = {k: np.nanmean([e[k] for e in each], axis=0).tolist() for k in ("cka_initial", "cka_random")}
    return {
        "runs": list(run_ids),
        "init": each[0]["init"],
        "features": features,
        "n": each[0]["n"],
        "stages": stages,
        **mean,
        "per_run": {e["run"]: e["cka_initial"] for e in each},
    }


def study_similarity(summary: dict, store: RunStore, n: int = 64, progress=None) -> dict[str, dict]:
    """Per decided group of a study summary (:func:`medtl.study.conclusions.summarize`): CKA per stage
    of its selected cut and of full fine-tuning, each the mean over seeds; label -> result."""
    todo: dict[str, list[str]] = {}
    for g in summary["groups"]:
        runs = g.get("runs") or {}
        size = g.get("size") if isinstance(g.get("size"), str) else train_size_label(g.get("train_size"))
        if runs.get("selected") and g["selected"] != "full":
            todo.setdefault(f"{g['backbone']} {g['strategy']}@{g['selected']} · {g['init']} · {size}", runs["selected"])
        if runs.get("full"):
            todo.setdefault(f"{g['backbone']} full fine-tuning · {g['init']} · {size}", runs["full"])
    out = {}
    for k, (label, ids) in enumerate(todo.items(), 1):
        if progress:
            progress(k, len(todo), label)
        try:
            out[label] = mean_similarity(store, ids, n)
        except (OSError, ValueError, KeyError) as e:  # e.g. a run: source deleted since; the rest still shows
            out[label] = {"error": f"{type(e).__name__}: {e}", "runs": ids}
    return out
