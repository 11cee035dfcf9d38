"""Speed of the ROC-vs-PRC page's recomputation and of the vectorised bootstrap.

Run: ``python benchmarks/bench_metrics.py``. Baselines run in the same process:
- the page's recomputation is measured as it runs (``toy.compare`` plus the first draw's curves);
  the baseline is the same statistics computed draw by draw with scikit-learn;
- the bootstrap (1,000 stratified resamples of 10,000 predictions) is compared with a loop that
  calls ``roc_auc_score`` and ``average_precision_score`` once per resample.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import numpy as np
from sklearn import metrics as sk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import best_of, markdown_table, write_result  # noqa: E402
from medtl import metrics, toy  # noqa: E402


def recompute(n_pos, n_neg, k_a, k_b, draws):
    res = toy.compare(n_pos, n_neg, k_a, k_b, draws)
    for r in res.values():
        metrics.roc_points(r.labels[0], r.scores)
        metrics.pr_points(r.labels[0], r.scores)
        r.cut_curves()
    return res


def recompute_sklearn(n_pos, n_neg, k_a, k_b, draws):
    res = toy.compare(n_pos, n_neg, k_a, k_b, draws)
    for r in res.values():
        for y in r.labels:
            sk.roc_auc_score(y, r.scores)
            sk.average_precision_score(y, r.scores)
            p, rec, _ = sk.precision_recall_curve(y, r.scores)
            sk.auc(rec, p)


def bootstrap_loop(y, s, n_boot=1000, seed=0):
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    out = np.empty((n_boot, 2))
    for b in range(n_boot):
        idx = np.r_[rng.choice(pos, pos.size), rng.choice(neg, neg.size)]
        out[b] = sk.roc_auc_score(y[idx], s[idx]), sk.average_precision_score(y[idx], s[idx])
    return np.percentile(out, [2.5, 97.5], axis=0)


def main() -> None:
    rows = []
    for label, scale in (("default (10 + 990, 200 draws)", 1), ("10x (100 + 9,900, 200 draws)", 10)):
        args = (10 * scale, 990 * scale, 12 * scale, 30 * scale, 200)
        ours = best_of(lambda a=args: recompute(*a), repeat=5)
        base = best_of(lambda a=args: recompute_sklearn(*a), repeat=1, warmup=0)
        rows.append(
            [f"page recomputation, {label}", f"{ours * 1e3:.1f} ms", f"{base * 1e3:.0f} ms", f"{base / ours:.0f}x"]
        )

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 10_000)
    s = rng.normal(size=10_000) + y
    ours = best_of(lambda: metrics.bootstrap_ci(y, s, n_boot=1000), repeat=3)
    base = best_of(lambda: bootstrap_loop(y, s), repeat=1, warmup=0)
    rows.append(
        [
            "bootstrap CI, 1,000 resamples x 10,000 predictions",
            f"{ours * 1e3:.0f} ms",
            f"{base * 1e3:.0f} ms",
            f"{base / ours:.1f}x",
        ]
    )

    text = (
        f"Measured on {platform.processor() or platform.machine()}, {platform.python_version()}, "
        f"numpy {np.__version__}; best of several runs, baseline in the same run.\n\n"
        + markdown_table(["what", "medtl", "scikit-learn loop", "speed-up"], rows)
    )
    write_result("metrics", text)


if __name__ == "__main__":
    main()
