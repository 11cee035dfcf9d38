"""Paired statistics of two classifiers scored on the same test images.

The differences in AUROC and in average precision get a paired, stratified bootstrap interval:
each resample draws positives and negatives separately (as :func:`medtl.metrics.bootstrap_ci`)
and the same resample weights both classifiers, so their correlation is kept. The curves of all
resamples come from :func:`medtl.metrics.weighted_curves`, vectorised. DeLong's test compares two
correlated AUROCs with the fast midrank algorithm of Sun & Xu (2014, IEEE SPL 21(11)).

Scores may be ``(N,)`` (one run each) or ``(K, N)`` (K seeds each, paired by row): the statistic
is then the mean over seeds, which on one test set is again a linear function of the per-image
structural components, so DeLong and the bootstrap apply unchanged.

Any metric record (:data:`medtl.metrics.METRICS`: operating point, calibration, ...) gets the same
paired intervals through :func:`paired_records`; a deployment ``prevalence`` re-weights the negatives of
every prevalence-dependent metric (AP, PPV, NPV). Decisions at the operating point are compared on the
same images by McNemar's exact test (:func:`mcnemar_exact`).
"""

from __future__ import annotations

import numpy as np

from medtl.metrics import (
    Context,
    _check_bootstrap,
    _interval,
    check_binary,
    get,
    negative_weight,
    stratified_weights,
    weighted_curves,
)

__all__ = [
    "stratified_counts",
    "bootstrap_mean",
    "paired_bootstrap",
    "delong",
    "seed_summary",
    "paired_seeds",
    "significant",
    "delta_over_sets",
    "seed_interval",
    "paired_records",
    "bootstrap_records",
    "mcnemar_exact",
]


def _scores(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    s = s[None, :] if s.ndim == 1 else s
    if s.ndim != 2:
        raise ValueError(f"scores must be (N,) or (K, N). Got shape {s.shape}")
    y, _ = check_binary(y_true, s[0])
    for row in s:
        check_binary(y, row)
    return y, s


def _pair(y_true, scores_a, scores_b) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, a = _scores(y_true, scores_a)
    _, b = _scores(y, scores_b)
    if a.shape != b.shape:
        raise ValueError(f"scores_a and scores_b must have the same shape (paired). Got {a.shape} and {b.shape}")
    return y, a, b


def stratified_counts(y: np.ndarray, rows: int, rng: np.random.Generator) -> np.ndarray:
    """How often each image is drawn in each of ``rows`` stratified resamples, shape ``(rows, N)``.

    Positives are drawn among positives and negatives among negatives, keeping both counts.
    """
    return stratified_weights(y, rows, rng)


def _metrics(y: np.ndarray, s: np.ndarray, w: np.ndarray, factor: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """AUROC and AP of scores ``s`` (N,) under each row of weights ``w`` (B, N); negatives weigh ``factor``
    more (a deployment prevalence: AP moves, AUROC does not)."""
    order = np.argsort(-s, kind="stable")
    yo, wo = y[order], w[:, order]
    c = weighted_curves(s[order], wo * yo, factor * wo * (1 - yo))
    return c.auroc(), c.average_precision()


def _mean_metrics(y: np.ndarray, s: np.ndarray, w: np.ndarray, factor: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    au, ap = zip(*(_metrics(y, row, w, factor) for row in s), strict=True)
    return np.mean(au, axis=0), np.mean(ap, axis=0)


def _draws(
    y: np.ndarray, sets: list[np.ndarray], n_boot: int, seed: int, chunk: int, factor: float = 1.0
) -> list[tuple[list, list]]:
    """AUROC and AP draws (mean over rows) of each ``(K, N)`` score set, all on the same stratified resamples."""
    rng = np.random.default_rng(seed)
    out: list[tuple[list, list]] = [([], []) for _ in sets]
    for start in range(0, n_boot, chunk):
        w = stratified_counts(y, min(chunk, n_boot - start), rng)
        for (au, ap), s in zip(out, sets, strict=True):
            m = _mean_metrics(y, s, w, factor)
            au.append(m[0])
            ap.append(m[1])
    return out


def bootstrap_mean(
    y_true,
    scores,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    chunk: int = 250,
    prevalence: float | None = None,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of the mean AUROC and mean AP over the rows of ``scores`` ``(K, N)``
    (e.g. K seeds of one experiment on one test set), the rows resampled together; AP at a deployment
    ``prevalence`` if given.

    Returns:
        ``{"auroc": (lo, hi), "auprc": (lo, hi)}``.
    """
    _check_bootstrap(n_boot, alpha)
    y, s = _scores(y_true, scores)
    ((au, ap),) = _draws(y, [s], n_boot, seed, chunk, negative_weight(y, prevalence))
    return {"auroc": _interval(au, alpha), "auprc": _interval(ap, alpha)}


def paired_bootstrap(
    y_true,
    scores_a,
    scores_b,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    chunk: int = 250,
    prevalence: float | None = None,
) -> dict[str, dict]:
    """AUROC and AP of A, of B and of A - B, with percentile intervals from the same resamples.

    Args:
        y_true: 0/1 labels of the N test images.
        scores_a, scores_b: scores, ``(N,)`` or ``(K, N)`` with rows paired (e.g. by seed);
            with K rows the metric is the mean over rows.
        n_boot: resamples; alpha: 1 - coverage; seed: of the resampling; chunk: resamples per batch.
        prevalence: AP at this deployment prevalence (negatives re-weighted); AUROC does not change.

    Returns:
        ``{"auroc": {"a", "b", "delta"}, "auprc": {...}}``, each leaf ``{"value", "ci"}``.
    """
    _check_bootstrap(n_boot, alpha)
    y, a, b = _pair(y_true, scores_a, scores_b)
    ones = np.ones((1, y.size))
    factor = negative_weight(y, prevalence)
    point = {"a": _mean_metrics(y, a, ones, factor), "b": _mean_metrics(y, b, ones, factor)}
    da, db = _draws(y, [a, b], n_boot, seed, chunk, factor)
    draws = {"a": da, "b": db, "delta": tuple([x - y_ for x, y_ in zip(da[k], db[k], strict=True)] for k in range(2))}
    out: dict[str, dict] = {}
    for k, metric in enumerate(("auroc", "auprc")):
        values = {"a": float(point["a"][k][0]), "b": float(point["b"][k][0])}
        values["delta"] = values["a"] - values["b"]
        out[metric] = {
            part: {"value": values[part], "ci": list(_interval(draws[part][k], alpha))} for part in ("a", "b", "delta")
        }
    return out


def _midrank_components(y: np.ndarray, s: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUROC and its structural components V10 (per positive) and V01 (per negative), by midranks."""
    from scipy.stats import rankdata  # scipy loads when statistics are computed, not when the CLI starts

    pos, neg = s[y == 1], s[y == 0]
    m, n = pos.size, neg.size
    tz = rankdata(np.r_[pos, neg])  # midranks over all images
    tx, ty = rankdata(pos), rankdata(neg)  # midranks within each class
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    return float(v10.mean()), v10, v01


def delong(y_true, scores_a, scores_b) -> dict[str, float]:
    """DeLong's test of equal AUROC for two classifiers scored on the same images.

    Args:
        y_true: 0/1 labels; scores_a, scores_b: ``(N,)`` or ``(K, N)`` (mean AUROC over K paired rows).

    Returns:
        ``{"auroc_a", "auroc_b", "delta", "se", "z", "p"}``; ``p`` is two-sided. Identical
        scores give ``se = 0`` and ``p = 1``.
    """
    y, a, b = _pair(y_true, scores_a, scores_b)
    comps = []
    for s in (a, b):
        parts = [_midrank_components(y, row) for row in s]
        comps.append(
            (
                np.mean([p[0] for p in parts]),
                np.mean([p[1] for p in parts], axis=0),
                np.mean([p[2] for p in parts], axis=0),
            )
        )
    (auc_a, v10a, v01a), (auc_b, v10b, v01b) = comps
    # Var(A - B) = (s10_aa + s10_bb - 2 s10_ab) / m + (same for V01) / n: the variance of the difference of components
    d10, d01 = v10a - v10b, v01a - v01b
    var = (d10.var(ddof=1) if d10.size > 1 else 0.0) / d10.size + (d01.var(ddof=1) if d01.size > 1 else 0.0) / d01.size
    delta = float(auc_a - auc_b)
    se = float(np.sqrt(max(var, 0.0)))
    if se <= 1e-15:
        z, p = 0.0, 1.0 if abs(delta) < 1e-15 else 0.0
    else:
        from scipy.stats import norm

        z = delta / se
        p = float(2 * norm.sf(abs(z)))
    return {"auroc_a": float(auc_a), "auroc_b": float(auc_b), "delta": delta, "se": se, "z": float(z), "p": p}


def delta_over_sets(
    pairs: list[tuple],
    metric: str,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    chunk: int = 250,
    rule: str | None = None,
) -> dict:
    """A - B of ``metric``, averaged over image sets that both classifiers scored (e.g. each seed's own
    validation subset), with a stratified bootstrap interval: every set is resampled on its own, and one
    resample weights A and B alike.

    Args:
        pairs: ``[(y_true, scores_a, scores_b), ...]``, one per set; scores are probabilities.
        metric: ``auroc``, ``auprc`` (average precision), ``loss`` (mean binary log loss) or a metric
            record at the operating point (``op.specificity``): each classifier's threshold is the one
            ``rule`` picks on that set, held fixed over its resamples.

    Returns:
        ``{"value": mean difference, "ci": [lo, hi]}``.
    """
    if metric not in ("auroc", "auprc", "loss") and not metric.startswith("op."):
        raise ValueError(f"metric must be auroc, auprc, loss or an operating-point metric (op.*). Got {metric!r}")
    _check_bootstrap(n_boot, alpha)
    if not pairs:
        raise ValueError("delta_over_sets needs at least one set of images")
    values, draws = [], []
    for k, (y_true, a, b) in enumerate(pairs):
        y, sa, sb = _pair(y_true, a, b)
        if metric.startswith("op."):  # each classifier at its own threshold, chosen on this set
            from medtl.metrics.operating import DEFAULT_RULE, choose_threshold

            ra, rb = ([(s[0], Context(threshold=choose_threshold(y, s[0], rule or DEFAULT_RULE)))] for s in (sa, sb))
            ones = np.ones((1, y.size))
            values.append(float(_record_mean(y, ra, metric, ones, 1.0)[0] - _record_mean(y, rb, metric, ones, 1.0)[0]))
            w = stratified_counts(y, n_boot, np.random.default_rng(seed + k))
            draws.append(_record_mean(y, ra, metric, w, 1.0) - _record_mean(y, rb, metric, w, 1.0))
            continue
        if metric == "loss":
            eps = 1e-7
            la, lb = (
                -(y * np.log(np.clip(s[0], eps, 1)) + (1 - y) * np.log(np.clip(1 - s[0], eps, 1))) for s in (sa, sb)
            )
            rng = np.random.default_rng(seed + k)
            w = stratified_counts(y, n_boot, rng)
            values.append(float(la.mean() - lb.mean()))
            draws.append((w @ (la - lb)) / w.sum(axis=1))
            continue
        i = 0 if metric == "auroc" else 1
        ones = np.ones((1, y.size))
        values.append(float(_mean_metrics(y, sa, ones)[i][0] - _mean_metrics(y, sb, ones)[i][0]))
        da, db = _draws(y, [sa, sb], n_boot, seed + k, chunk)
        draws.append(np.concatenate(da[i]) - np.concatenate(db[i]))
    return {"value": float(np.mean(values)), "ci": list(_interval([np.mean(draws, axis=0)], alpha))}


def seed_interval(values, alpha: float = 0.05) -> dict:
    """Mean of per-seed values with its t interval (``mean ± t * sd / sqrt(k)``): the spread that
    training randomness adds, which a bootstrap over one test set does not see. One value: no interval (NaN)."""
    from scipy.stats import t

    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        raise ValueError("seed_interval needs at least one value")
    mean = float(v.mean())
    if v.size < 2:
        return {"value": mean, "ci": [float("nan"), float("nan")], "n": int(v.size)}
    half = float(t.ppf(1 - alpha / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
    return {"value": mean, "ci": [mean - half, mean + half], "n": int(v.size)}


def seed_summary(values) -> dict[str, float]:
    """Mean, sample standard deviation (0 for one value) and count of a metric over seeds."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        raise ValueError("seed_summary needs at least one value")
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0, "n": int(v.size)}


def paired_seeds(
    y_true, scores_a, scores_b, seeds=None, n_boot: int = 1000, seed: int = 0, prevalence: float | None = None
) -> dict:
    """Paired comparison of two configurations over seeds (rows of ``(K, N)`` scores paired by seed).

    Returns:
        ``{"per_seed": [{"seed", "auroc": {...}, "auprc": {...}, "delong_p"}], "pooled": {...},
        "a": {"auroc": mean/std/n, "auprc": ...}, "b": {...}}``; ``pooled`` compares the mean over
        seeds with the same resamples for every seed.
    """
    y, a, b = _pair(y_true, scores_a, scores_b)
    seeds = list(range(len(a))) if seeds is None else list(seeds)
    if len(seeds) != len(a):
        raise ValueError(f"seeds must name each of the {len(a)} rows. Got {seeds}")
    per_seed = []
    for k, sd in enumerate(seeds):
        bs = paired_bootstrap(y, a[k], b[k], n_boot=n_boot, seed=seed, prevalence=prevalence)
        per_seed.append({"seed": sd, **_deltas(bs), "delong_p": delong(y, a[k], b[k])["p"]})
    pooled = paired_bootstrap(y, a, b, n_boot=n_boot, seed=seed, prevalence=prevalence)
    out = {"per_seed": per_seed, "pooled": {**pooled, "delong": delong(y, a, b)}}
    ones = np.ones((1, y.size))
    factor = negative_weight(y, prevalence)
    for part, s in (("a", a), ("b", b)):
        per_row = [_metrics(y, row, ones, factor) for row in s]
        out[part] = {m: seed_summary(r[k][0] for r in per_row) for k, m in enumerate(("auroc", "auprc"))}
    return out


def _deltas(bs: dict) -> dict:
    return {m: bs[m]["delta"] for m in ("auroc", "auprc")}


def significant(ci) -> bool:
    """A difference is significant when its interval does not contain 0 (an undefined interval never is)."""
    lo, hi = ci
    return bool(lo > 0 or hi < 0)


# --- any metric record, paired; decisions at the operating point ------------------------------------

Rows = list[tuple[np.ndarray, Context]]  # one (scores, context) per seed: the context holds that run's threshold


def _record_mean(y: np.ndarray, rows: Rows, key: str, w: np.ndarray, factor: float) -> np.ndarray:
    m = get(key)
    wm = w * np.where(y == 1, 1.0, factor) if m.prevalence and factor != 1.0 else w
    return np.mean([m.weighted(y, np.asarray(s, dtype=np.float64), wm, ctx) for s, ctx in rows], axis=0)


def _record_check(y_true, *sets: Rows) -> np.ndarray:
    y = np.asarray(y_true).ravel()
    check_binary(y, np.zeros(y.size))
    for rows in sets:
        if not rows:
            raise ValueError("each side needs at least one run (scores and context)")
        for s, _ in rows:
            if np.asarray(s).shape != y.shape:
                raise ValueError(f"scores must be (N,) for the {y.size} test images. Got {np.asarray(s).shape}")
    return y


def bootstrap_records(
    y_true,
    rows: Rows,
    keys,
    prevalence: float | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    chunk: int = 250,
) -> dict[str, dict]:
    """Each metric record in ``keys``, the mean over ``rows`` (e.g. seeds, each with its own threshold),
    with a stratified bootstrap interval (the rows resampled together).

    Returns:
        ``{key: {"value", "ci"}}``.
    """
    _check_bootstrap(n_boot, alpha)
    y = _record_check(y_true, rows)
    factor = negative_weight(y, prevalence)
    ones = np.ones((1, y.size))
    out = {k: {"value": float(_record_mean(y, rows, k, ones, factor)[0])} for k in keys}
    draws: dict[str, list] = {k: [] for k in keys}
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, chunk):
        w = stratified_counts(y, min(chunk, n_boot - start), rng)
        for k in keys:
            draws[k].append(_record_mean(y, rows, k, w, factor))
    for k in keys:
        out[k]["ci"] = list(_interval(draws[k], alpha)) if np.isfinite(out[k]["value"]) else [np.nan, np.nan]
    return out


def paired_records(
    y_true,
    rows_a: Rows,
    rows_b: Rows,
    keys,
    prevalence: float | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    chunk: int = 250,
) -> dict[str, dict]:
    """A, B and A - B of each metric record in ``keys`` on the same test images: every resample weights
    both sides alike (their correlation kept); with several rows per side, the mean over rows.

    Returns:
        ``{key: {"a", "b", "delta"}}``, each leaf ``{"value", "ci"}``.
    """
    _check_bootstrap(n_boot, alpha)
    y = _record_check(y_true, rows_a, rows_b)
    factor = negative_weight(y, prevalence)
    ones = np.ones((1, y.size))
    out: dict[str, dict] = {}
    draws: dict[str, dict[str, list]] = {k: {"a": [], "b": [], "delta": []} for k in keys}
    for k in keys:
        va, vb = (float(_record_mean(y, r, k, ones, factor)[0]) for r in (rows_a, rows_b))
        out[k] = {"a": {"value": va}, "b": {"value": vb}, "delta": {"value": va - vb}}
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, chunk):
        w = stratified_counts(y, min(chunk, n_boot - start), rng)
        for k in keys:
            da, db = (_record_mean(y, r, k, w, factor) for r in (rows_a, rows_b))
            draws[k]["a"].append(da)
            draws[k]["b"].append(db)
            draws[k]["delta"].append(da - db)
    for k in keys:
        for part in ("a", "b", "delta"):
            ok = np.isfinite(out[k][part]["value"])
            out[k][part]["ci"] = list(_interval(draws[k][part], alpha)) if ok else [np.nan, np.nan]
    return out


def mcnemar_exact(y_true, pred_a, pred_b) -> dict:
    """McNemar's exact test of equal error rates of two classifiers' decisions on the same images.

    ``b``: images A gets right and B wrong, ``c``: the reverse; two-sided p = ``min(1, 2 P(X <= min(b, c)))``
    for X ~ Binomial(b + c, 1/2) (statsmodels' ``mcnemar(exact=True)``); no discordant image: p = 1.
    """
    y = np.asarray(y_true).ravel().astype(bool)
    a, b = np.asarray(pred_a).ravel().astype(bool), np.asarray(pred_b).ravel().astype(bool)
    if not y.shape == a.shape == b.shape:
        raise ValueError(f"y_true, pred_a and pred_b must have the same length. Got {y.size}, {a.size}, {b.size}")
    right_a, right_b = a == y, b == y
    n_b, n_c = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    n = n_b + n_c
    from scipy.stats import binom  # scipy loads when statistics are computed, not when the CLI starts

    p = 1.0 if n == 0 else float(min(1.0, 2 * binom.cdf(min(n_b, n_c), n, 0.5)))
    return {"a_only": n_b, "b_only": n_c, "p": p}
