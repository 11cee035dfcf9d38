import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

from medtl import stats


def _pair(n=60, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    y[:2] = [0, 1]
    a = y * 1.0 + rng.normal(0, 0.8, n)
    b = y * 0.6 + rng.normal(0, 0.8, n) + 0.3 * a
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    return y, a, b


def _delong_direct(y, a, b):
    """DeLong (1988) by its definition: psi over every (positive, negative) pair, O(m n)."""

    def comps(s):
        x, z = s[y == 1], s[y == 0]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        return psi.mean(), psi.mean(axis=1), psi.mean(axis=0)

    (ta, v10a, v01a), (tb, v10b, v01b) = comps(a), comps(b)
    s10 = np.cov(np.vstack([v10a, v10b]))
    s01 = np.cov(np.vstack([v01a, v01b]))
    s = s10 / v10a.size + s01 / v01a.size
    var = s[0, 0] + s[1, 1] - 2 * s[0, 1]
    z = (ta - tb) / np.sqrt(var)
    return ta, tb, 2 * norm.sf(abs(z))


@pytest.mark.parametrize("ties", [False, True])
def test_delong_matches_direct_structural_components(ties):
    y, a, b = _pair(ties=ties)
    r = stats.delong(y, a, b)
    ta, tb, p = _delong_direct(y, a, b)
    assert r["auroc_a"] == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert r["auroc_a"] == pytest.approx(ta, abs=1e-12) and r["auroc_b"] == pytest.approx(tb, abs=1e-12)
    assert r["p"] == pytest.approx(p, rel=1e-9)
    assert 0 < r["p"] < 1


def test_delong_identical_scores_and_mean_over_seeds():
    y, a, b = _pair()
    assert stats.delong(y, a, a)["p"] == 1.0
    # K paired rows: the mean AUROC difference, and a single row is the plain test
    two = stats.delong(y, np.vstack([a, b]), np.vstack([b, a]))
    assert two["delta"] == pytest.approx(0.0, abs=1e-12)
    one = stats.delong(y, a[None, :], b[None, :])
    assert one["p"] == pytest.approx(stats.delong(y, a, b)["p"])


@pytest.mark.slow
def test_paired_bootstrap_matches_a_plain_sklearn_loop_on_the_same_resamples():
    y, a, b = _pair(n=50, seed=3)
    n_boot, chunk, seed = 120, 50, 7
    r = stats.paired_bootstrap(y, a, b, n_boot=n_boot, seed=seed, chunk=chunk)
    rng = np.random.default_rng(seed)
    d_au, d_ap, au_a = [], [], []
    for start in range(0, n_boot, chunk):
        w = stats.stratified_counts(y, min(chunk, n_boot - start), rng).astype(int)
        for row in w:
            idx = np.repeat(np.arange(y.size), row)  # the resample, image by image
            assert y[idx].sum() == y.sum()  # stratified: class counts kept
            au_a.append(roc_auc_score(y[idx], a[idx]))
            d_au.append(au_a[-1] - roc_auc_score(y[idx], b[idx]))
            d_ap.append(average_precision_score(y[idx], a[idx]) - average_precision_score(y[idx], b[idx]))
    pct = [2.5, 97.5]
    np.testing.assert_allclose(r["auroc"]["delta"]["ci"], np.percentile(d_au, pct), atol=1e-12)
    np.testing.assert_allclose(r["auprc"]["delta"]["ci"], np.percentile(d_ap, pct), atol=1e-12)
    np.testing.assert_allclose(r["auroc"]["a"]["ci"], np.percentile(au_a, pct), atol=1e-12)
    assert r["auroc"]["delta"]["value"] == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b))
    assert r["auprc"]["delta"]["value"] == pytest.approx(average_precision_score(y, a) - average_precision_score(y, b))


def test_paired_bootstrap_mean_over_seeds():
    y, a, b = _pair(n=40, seed=1)
    _, a2, b2 = _pair(n=40, seed=1)
    a2 = a2 + np.random.default_rng(9).normal(0, 0.5, 40)
    r = stats.paired_bootstrap(y, np.vstack([a, a2]), np.vstack([b, b2]), n_boot=50)
    mean_a = np.mean([roc_auc_score(y, a), roc_auc_score(y, a2)])
    assert r["auroc"]["a"]["value"] == pytest.approx(mean_a)
    lo, hi = r["auprc"]["delta"]["ci"]
    assert lo <= r["auprc"]["delta"]["value"] <= hi


@pytest.mark.slow
def test_bootstrap_mean_over_seeds_matches_a_plain_loop():
    """The interval of the mean over seeds (the Compare page's truncation figure): the same resamples
    for every seed, against scikit-learn image by image."""
    y, a, b = _pair(n=60, seed=2)
    s = np.vstack([a, b, 0.5 * a + b])
    r = stats.bootstrap_mean(y, s, n_boot=90, seed=5, chunk=40)
    rng = np.random.default_rng(5)
    au, ap = [], []
    for start in range(0, 90, 40):
        for row in stats.stratified_counts(y, min(40, 90 - start), rng).astype(int):
            idx = np.repeat(np.arange(y.size), row)
            au.append(np.mean([roc_auc_score(y[idx], k[idx]) for k in s]))
            ap.append(np.mean([average_precision_score(y[idx], k[idx]) for k in s]))
    np.testing.assert_allclose(r["auroc"], np.percentile(au, [2.5, 97.5]), atol=1e-12)
    np.testing.assert_allclose(r["auprc"], np.percentile(ap, [2.5, 97.5]), atol=1e-12)


def test_paired_seeds_and_summary():
    y, a, b = _pair(n=40)
    out = stats.paired_seeds(y, np.vstack([a, a + 0.1]), np.vstack([b, b]), seeds=[0, 1], n_boot=40)
    assert [r["seed"] for r in out["per_seed"]] == [0, 1]
    assert out["a"]["auroc"]["n"] == 2 and out["a"]["auroc"]["std"] >= 0
    assert 0 <= out["pooled"]["delong"]["p"] <= 1
    assert stats.seed_summary([1.0]) == {"mean": 1.0, "std": 0.0, "n": 1}
    assert stats.significant([0.01, 0.2]) and not stats.significant([-0.01, 0.2])


def test_bad_input_names_the_problem():
    y, a, b = _pair(n=20)
    with pytest.raises(ValueError, match="same shape"):
        stats.paired_bootstrap(y, a, np.vstack([b, b]))
    with pytest.raises(ValueError, match="one class"):
        stats.delong(np.zeros(20), a, b)


@pytest.mark.slow
def test_paired_records_match_a_plain_sklearn_loop_on_the_same_resamples():
    """Operating-point metrics of two runs, each at its own threshold, paired on shared resamples; PPV at a
    deployment prevalence is scikit-learn's with the negatives weighted."""
    from sklearn.metrics import precision_score, recall_score

    from medtl.metrics import Context, negative_weight

    y, a, b = _pair(n=80, seed=5)
    ta, tb = 0.4, 0.7
    n_boot, chunk, seed, prev = 90, 40, 2, 0.05
    keys = ["op.sensitivity", "op.specificity", "op.ppv", "auprc"]
    r = stats.paired_records(
        y, [(a, Context(threshold=ta))], [(b, Context(threshold=tb))], keys, prev, n_boot, seed=seed, chunk=chunk
    )
    k = negative_weight(y, prev)
    rng = np.random.default_rng(seed)
    d = {key: [] for key in keys}
    for start in range(0, n_boot, chunk):
        for row in stats.stratified_counts(y, min(chunk, n_boot - start), rng):
            wp = row * np.where(y == 1, 1.0, k)
            d["op.sensitivity"].append(
                recall_score(y, a >= ta, sample_weight=row) - recall_score(y, b >= tb, sample_weight=row)
            )
            d["op.specificity"].append(
                recall_score(1 - y, a < ta, sample_weight=row) - recall_score(1 - y, b < tb, sample_weight=row)
            )
            d["op.ppv"].append(
                precision_score(y, a >= ta, sample_weight=wp) - precision_score(y, b >= tb, sample_weight=wp)
            )
            d["auprc"].append(
                average_precision_score(y, a, sample_weight=wp) - average_precision_score(y, b, sample_weight=wp)
            )
    for key in keys:
        np.testing.assert_allclose(r[key]["delta"]["ci"], np.percentile(d[key], [2.5, 97.5]), atol=1e-9)
    w = np.where(y == 1, 1.0, k)
    assert r["op.ppv"]["a"]["value"] == pytest.approx(precision_score(y, a >= ta, sample_weight=w), abs=1e-9)
    assert r["auprc"]["b"]["value"] == pytest.approx(average_precision_score(y, b, sample_weight=w), abs=1e-9)
    # the mean over rows (seeds), each with its own threshold
    one = stats.bootstrap_records(
        y, [(a, Context(threshold=ta)), (b, Context(threshold=tb))], ["op.sensitivity"], n_boot=20
    )
    want = (recall_score(y, a >= ta) + recall_score(y, b >= tb)) / 2
    assert one["op.sensitivity"]["value"] == pytest.approx(want, abs=1e-9)


def test_paired_bootstrap_at_a_prevalence_moves_ap_not_auroc():
    y, a, b = _pair(n=70, seed=1)
    r0, r1 = stats.paired_bootstrap(y, a, b, n_boot=50), stats.paired_bootstrap(y, a, b, n_boot=50, prevalence=0.02)
    assert r1["auroc"] == r0["auroc"]
    w = np.where(y == 1, 1.0, y.sum() / (1 - y).sum() * 0.98 / 0.02)
    assert r1["auprc"]["a"]["value"] == pytest.approx(average_precision_score(y, a, sample_weight=w), abs=1e-9)
    assert list(stats.bootstrap_mean(y, a, n_boot=50, prevalence=0.02)["auprc"]) == r1["auprc"]["a"]["ci"]


def test_mcnemar_exact_is_the_binomial_test_of_the_discordant_images():
    from scipy.stats import binomtest

    rng = np.random.default_rng(0)
    for n, flip in ((40, 0.2), (200, 0.1), (15, 0.5)):
        y = rng.integers(0, 2, n)
        a = np.where(rng.random(n) < flip, 1 - y, y)
        b = np.where(rng.random(n) < flip * 1.5, 1 - y, y)
        r = stats.mcnemar_exact(y, a, b)
        assert r["a_only"] == int(np.sum((a == y) & (b != y))) and r["b_only"] == int(np.sum((a != y) & (b == y)))
        assert r["p"] == pytest.approx(binomtest(r["a_only"], r["a_only"] + r["b_only"], 0.5).pvalue, abs=1e-12)
    assert stats.mcnemar_exact([0, 1], [0, 1], [0, 1])["p"] == 1.0
