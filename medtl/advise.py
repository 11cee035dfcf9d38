"""The cut advisor: score every cut point of a pretrained backbone before training.

One forward pass of (a sample of) the training split through the full network, with hooks on
the output of every cut; the features are global-average pooled per cut and scored two ways:

- **LogME** (You et al., ICML 2021, "LogME: Practical Assessment of Pre-trained Models for
  Transfer Learning"): the log marginal evidence per sample of a Bayesian linear model on the
  features, maximised over its prior precision alpha and noise precision beta by the paper's
  fixed-point iteration, computed from one SVD of the features. The evidence is evaluated
  exactly, including ``-(D - k)/2 log alpha`` from the zero singular values of features of rank
  ``k < D`` (thuml/LogME's fixed-point code sums over the k nonzero ones only, which shifts the
  evidence of wide features, D > N, by that term; tests check against the Gaussian marginal).
- a **linear probe**: logistic regression (scikit-learn) on standardised features,
  ``class_weight="balanced"``, stratified k-fold; AUROC and AUPRC (average precision) are the
  means over folds.

Multi-label targets: the mean over labels. The table is ranked by ``score``: the mean of the
two scores' percentile ranks among the cuts (LogME evidence and probe AUPRC), ties broken by
the probe AUPRC. Random initialisation is refused: its features are not something a pretrained
network transfers, so their scores would rank nothing that exists before training.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import nn

from medtl import initialisations
from medtl import metrics as M
from medtl.config import DataConfig, ModelConfig
from medtl.models import registry
from medtl.runs import RunStore
from medtl.strategies import FULL, reference

LEVELS = registry.LEVELS
SCORE = "mean percentile rank of LogME and probe AUPRC among the cuts (ties: probe AUPRC)"


# --- LogME ---------------------------------------------------------------------------------------


def _spectrum(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared singular values (rank k) and left singular vectors (N, k) of ``f``."""
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    keep = s > s.max(initial=0.0) * max(f.shape) * np.finfo(np.float64).eps
    return s[keep] ** 2, u[:, keep]


def _evidence_terms(sigma: np.ndarray, x2: np.ndarray, rest: float, t: float) -> tuple[float, float, float]:
    """gamma, ||m||^2 and ||y - F m||^2 at ``t = alpha / beta`` (in the SVD basis)."""
    gamma = float(np.sum(sigma / (sigma + t)))
    m2 = float(np.sum(sigma * x2 / (sigma + t) ** 2))
    res2 = float(np.sum(t**2 * x2 / (sigma + t) ** 2) + rest)
    return gamma, m2, res2


def _log_evidence(n: int, d: int, sigma: np.ndarray, alpha: float, beta: float, m2: float, res2: float) -> float:
    """Log marginal evidence per sample of ``y ~ N(F w, 1/beta)``, ``w ~ N(0, 1/alpha)``."""
    logdet = np.sum(np.log(alpha + beta * sigma)) + (d - sigma.size) * np.log(alpha)
    ev = d / 2 * np.log(alpha) + n / 2 * np.log(beta) - n / 2 * np.log(2 * np.pi)
    return float((ev - beta / 2 * res2 - alpha / 2 * m2 - logdet / 2) / n)


def logme_fit(
    features: np.ndarray, y: np.ndarray, max_iter: int = 100, tol: float = 1e-6
) -> tuple[float, float, float]:
    """LogME of one target column: (evidence per sample, alpha, beta) at the fixed point.

    The MacKay updates ``alpha = gamma / ||m||^2``, ``beta = (N - gamma) / ||y - F m||^2`` with
    ``gamma = sum sigma_i / (sigma_i + alpha/beta)`` (You et al. 2021, Algorithm 1), iterated
    until ``alpha/beta`` changes by less than ``tol`` (relative).
    """
    f, y = np.asarray(features, np.float64), np.asarray(y, np.float64)
    n, d = f.shape
    sigma, u = _spectrum(f)
    x2 = (u.T @ y) ** 2
    rest = max(float(y @ y - x2.sum()), 0.0)
    tiny = 1e-12 * max(float(y @ y), 1e-12)  # keeps the updates finite when y lies in the span of F
    alpha, beta = 1.0, 1.0
    for _ in range(max_iter):
        t = alpha / beta
        gamma, m2, res2 = _evidence_terms(sigma, x2, rest, t)
        alpha, beta = gamma / (m2 + tiny), (n - gamma) / (res2 + tiny)
        if abs(alpha / beta - t) <= tol * t:
            break
    _, m2, res2 = _evidence_terms(sigma, x2, rest, alpha / beta)
    return _log_evidence(n, d, sigma, alpha, beta, m2, res2), alpha, beta


def logme(features: np.ndarray, y: np.ndarray, exclusive: bool = False) -> float:
    """LogME of a classification target: (N,) binary, or (N, L) multi-label / one-hot.

    Binary labels are scored as in the reference: the mean evidence of the two one-hot columns
    (negative, positive). Multi-label: the mean of that over labels; one-hot classes
    (``exclusive``): the mean over the class columns.
    """
    y2 = np.asarray(y, np.float64).reshape(len(y), -1)
    if exclusive:
        return float(np.mean([logme_fit(features, y2[:, k])[0] for k in range(y2.shape[1])]))
    per_label = [np.mean([logme_fit(features, c)[0] for c in (1 - y2[:, k], y2[:, k])]) for k in range(y2.shape[1])]
    return float(np.mean(per_label))


# --- linear probe --------------------------------------------------------------------------------


def probe(features: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0, c: float = 1.0) -> tuple[float, float]:
    """Cross-validated logistic regression: mean (AUROC, AUPRC) over stratified folds and labels.

    Labels with fewer than two images of either class are left out; NaN when none is left.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y2 = np.asarray(y).reshape(len(y), -1)
    au, ap = [], []
    for k in range(y2.shape[1]):
        yk = y2[:, k].astype(int)
        k_folds = min(folds, int(yk.sum()), int(len(yk) - yk.sum()))
        if k_folds < 2:
            continue
        fold_au, fold_ap = [], []
        for tr, te in StratifiedKFold(k_folds, shuffle=True, random_state=seed).split(features, yk):
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=500))
            with warnings.catch_warnings():
                # a probe that has not fully converged still ranks; its scores are what is measured
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf.fit(features[tr], yk[tr])
            s = clf.decision_function(features[te])
            fold_au.append(M.auroc(yk[te], s))
            fold_ap.append(M.average_precision(yk[te], s))
        au.append(np.mean(fold_au))
        ap.append(np.mean(fold_ap))
    return (float(np.mean(au)), float(np.mean(ap))) if au else (float("nan"), float("nan"))


# --- features at every cut -----------------------------------------------------------------------


def cut_sources(backbone: str, point: registry.CutPoint) -> tuple[list[str], bool]:
    """The module paths (in a full built backbone; truncation keeps module names) whose pooled
    outputs, concatenated, are the features at ``point``, and whether a ReLU comes first: the
    family's knowledge."""
    return registry.get_spec(backbone).family.pooled_sources(registry.stage_paths(backbone), point)


@contextmanager
def pooled_outputs(
    root: nn.Module, paths: list[str], relu: set[str], pool=lambda out: out.mean(dim=(2, 3))
) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Forward hooks that store the pooled output of each module (global average pooling, or the
    family's ``pool``; a ReLU first for those in ``relu``); removed on exit."""
    store: dict[str, list[torch.Tensor]] = {p: [] for p in paths}

    def hook(path: str):
        def fn(_module, _inputs, out):
            out = torch.relu(out) if path in relu else out
            store[path].append(pool(out.float()).cpu())

        return fn

    handles = [root.get_submodule(p).register_forward_hook(hook(p)) for p in paths]
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def select_cuts(backbone: str, level: str = "block") -> list[registry.CutPoint]:
    """The cut points to score, one per distinct network (:func:`medtl.models.registry.distinct_cuts`)."""
    return list(registry.distinct_cuts(backbone, level))


@torch.no_grad()
def cut_features(model, backbone: str, points: list[registry.CutPoint], images: np.ndarray, batch_size: int = 64):
    """Pooled features (N, channels) per cut name, from one eval-mode pass over uint8 ``images``."""
    from medtl.data.augment import to_float

    device = next(model.parameters()).device
    # NHWC convolutions are faster on CUDA and with oneDNN on CPU, as in training
    channels_last = device.type in ("cuda", "cpu")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    sources = {p.name: cut_sources(backbone, p) for p in points}
    paths = list(dict.fromkeys(s for src, _ in sources.values() for s in src))
    relu = {s for src, r in sources.values() if r for s in src}
    model.eval()
    with pooled_outputs(model.backbone, paths, relu, model.pool) as store:
        for s in range(0, len(images), batch_size):
            model.features(to_float(images[s : s + batch_size], device, channels_last))
    pooled = {p: torch.cat(v).numpy() for p, v in store.items()}
    return {name: np.concatenate([pooled[s] for s in src], axis=1) for name, (src, _) in sources.items()}


# --- the advisor ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CutScore:
    cut: str
    level: str
    channels: int
    logme: float
    probe_auroc: float
    probe_auprc: float
    seconds: float
    score: float = float("nan")
    rank: int = 0


def _percentile_rank(v: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    v = np.where(np.isnan(v), -np.inf, v)
    return (rankdata(v) - 1) / max(len(v) - 1, 1)


def rank(rows: list[CutScore]) -> list[CutScore]:
    """Rows with ``score`` (see :data:`SCORE`) and ``rank`` (1 = best), best first."""
    if not rows:
        return []
    pr = (
        _percentile_rank(np.array([r.logme for r in rows])) + _percentile_rank(np.array([r.probe_auprc for r in rows]))
    ) / 2
    order = sorted(range(len(rows)), key=lambda i: (-pr[i], -np.nan_to_num(rows[i].probe_auprc, nan=-1)))
    return [replace(rows[i], score=float(pr[i]), rank=r + 1) for r, i in enumerate(order)]


def sample_indices(y: np.ndarray, indices: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Up to ``n`` of ``indices``, stratified by label combination, sorted (a memory map reads them in order)."""
    if n >= len(indices):
        return np.sort(indices)
    from sklearn.model_selection import train_test_split

    y2 = np.asarray(y).reshape(len(y), -1).astype(np.int64)
    strata = y2 @ (1 << np.arange(y2.shape[1]))  # one stratum per combination of labels
    _, counts = np.unique(strata, return_counts=True)
    try:
        part, _ = train_test_split(
            indices, train_size=n, random_state=seed, stratify=strata if counts.min() > 1 else None
        )
    except ValueError:  # a combination too rare to stratify: a plain random sample
        part, _ = train_test_split(indices, train_size=n, random_state=seed)
    return np.sort(part)


def advise(
    data: DataConfig,
    backbone: str,
    init: str,
    weights: str = "IMAGENET1K_V1",
    n: int = 512,
    level: str = "block",
    folds: int = 5,
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 64,
    runs_dir=None,
    threads: int | None = None,
) -> dict:
    """Score every cut of ``backbone`` initialised from ``init`` for the task in ``data``.

    Returns a dict: the task; timings: ``load_seconds`` (the data, which training pays too),
    ``build_seconds``, ``forward_seconds`` (the one pass), ``score_seconds`` (LogME and probes) and
    ``seconds`` (the advisor's own cost: build + forward + scores); ``score`` (how rows are ranked) and ``cuts``: rows of :class:`CutScore` as dicts, best first.

    Raises:
        ValueError: ``init`` is ``random``, an unknown backbone or level, ``n`` or ``folds`` too small.
        FileNotFoundError: the initialisation is absent (e.g. ImageNet weights offline).
    """
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    from medtl.data import load
    from medtl.models import build
    from medtl.train import pick_device

    if not initialisations.is_pretrained(init):
        raise ValueError(
            "init 'random' has nothing pretrained to assess: the advisor scores the features a pretrained "
            "initialisation gives at each cut before training. Use 'imagenet', 'file:<path>' or 'run:<id>'"
        )
    if n < 20:
        raise ValueError(f"n must be at least 20 images. Got {n}")
    if folds < 2:
        raise ValueError(f"folds must be at least 2. Got {folds}")
    cfg = ModelConfig(backbone, reference().name, FULL, init, weights)  # validates backbone and init
    # an absent source (ImageNet weights offline, a wrong path) fails before any data work
    source = initialisations.state_dict(init, backbone, weights, RunStore(runs_dir))
    points = select_cuts(backbone, level)
    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    ds = load(data)
    train = ds.splits["train"]
    idx = sample_indices(ds.y(train), train, n, seed)
    y = ds.y(idx)
    images = np.asarray(ds.images[idx])
    t1 = time.perf_counter()
    dev = pick_device(device)
    model = build(cfg, ds.image_size, ds.channels, source=source).to(dev)
    t2 = time.perf_counter()
    feats = cut_features(model, backbone, points, images, batch_size)
    t3 = time.perf_counter()
    rows = []
    # The matrices are small (n x channels): one BLAS thread is faster than several, and on a busy
    # machine threads that spin for cores made scoring 30x slower (measured on a shared 2-core VM).
    with threadpool_limits(1):
        for p in points:
            t = time.perf_counter()
            f = feats[p.name]
            ev = logme(f, y, ds.exclusive)
            au, ap = probe(f, y, folds, seed)
            rows.append(CutScore(p.name, p.level, int(f.shape[1]), ev, au, ap, time.perf_counter() - t))
    t4 = time.perf_counter()
    return {
        "dataset": data.dataset,
        "target": ds.target_name,
        "backbone": backbone,
        "init": init,
        "image_size": ds.image_size,
        "n": int(len(idx)),
        "n_pos": int(np.asarray(y).reshape(len(y), -1).max(axis=1).sum()),
        "level": level,
        "folds": folds,
        "device": str(dev),
        "score": SCORE,
        "load_seconds": t1 - t0,
        "build_seconds": t2 - t1,
        "forward_seconds": t3 - t2,
        "score_seconds": t4 - t3,
        "seconds": t4 - t1,
        "cuts": [asdict(r) for r in rank(rows)],
    }
