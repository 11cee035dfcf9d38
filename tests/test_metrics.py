import numpy as np
import pytest
from sklearn import metrics as sk

from medtl import metrics as M


@pytest.fixture(params=[0, 1, 2])
def data(request):
    rng = np.random.default_rng(request.param)
    n = [50, 500, 3000][request.param]
    y = rng.integers(0, 2, n)
    # Rounded scores create ties, the case where implementations usually disagree.
    s = np.round(rng.normal(size=n) + y, request.param + 1)
    return y, s


def test_auroc_and_ap_match_sklearn(data):
    y, s = data
    assert M.auroc(y, s) == pytest.approx(sk.roc_auc_score(y, s), abs=1e-9)
    assert M.average_precision(y, s) == pytest.approx(sk.average_precision_score(y, s), abs=1e-9)
    p, r, _ = sk.precision_recall_curve(y, s)
    assert M.auprc_trapezoid(y, s) == pytest.approx(sk.auc(r, p), abs=1e-9)


def test_curve_points_match_sklearn(data):
    y, s = data
    fpr, tpr, thr = sk.roc_curve(y, s, drop_intermediate=False)
    roc = M.roc_points(y, s)
    np.testing.assert_allclose(roc["fpr"], fpr, atol=1e-9)
    np.testing.assert_allclose(roc["tpr"], tpr, atol=1e-9)
    np.testing.assert_array_equal(roc["thresholds"], thr)
    p, r, t = sk.precision_recall_curve(y, s)
    pr = M.pr_points(y, s)
    np.testing.assert_allclose(pr["precision"], p, atol=1e-9)
    np.testing.assert_allclose(pr["recall"], r, atol=1e-9)
    np.testing.assert_array_equal(pr["thresholds"][:-1], t)
    assert pr["recall"][-1] == 0 and pr["precision"][-1] == 1


def test_one_class_raises():
    with pytest.raises(ValueError, match="Only one class"):
        M.auroc(np.ones(5), np.arange(5))
    with pytest.raises(ValueError, match="Only one class"):
        M.bootstrap_ci(np.zeros(5), np.arange(5))


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="same length"):
        M.auroc([0, 1], [0.1])
    with pytest.raises(ValueError, match="only 0 and 1"):
        M.auroc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        M.auroc([0, 1], [0.1, np.nan])


def test_bootstrap_matches_loop_reference():
    """The vectorised bootstrap equals a per-resample scikit-learn loop on the same resamples."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(size=300) + y, 1)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    # Rebuild the exact resamples from the same generator stream to compare value by value.
    rng2 = np.random.default_rng(7)
    cp = rng2.multinomial(pos.size, np.full(pos.size, 1 / pos.size), size=20)
    cn = rng2.multinomial(neg.size, np.full(neg.size, 1 / neg.size), size=20)
    pw, nw = np.zeros((20, 300)), np.zeros((20, 300))
    pw[:, pos], nw[:, neg] = cp, cn
    c = M.weighted_curves(s, pw, nw)
    for b in range(20):
        idx = np.r_[np.repeat(pos, cp[b]), np.repeat(neg, cn[b])]
        assert c.auroc()[b] == pytest.approx(sk.roc_auc_score(y[idx], s[idx]), abs=1e-9)
        assert c.average_precision()[b] == pytest.approx(sk.average_precision_score(y[idx], s[idx]), abs=1e-9)


def test_bootstrap_interval_contains_estimate():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 2000)
    s = rng.normal(size=2000) + y
    ci = M.bootstrap_ci(y, s, n_boot=400, seed=3)
    assert ci["auroc"][0] < M.auroc(y, s) < ci["auroc"][1]
    assert ci["auprc"][0] < M.average_precision(y, s) < ci["auprc"][1]
    assert ci == M.bootstrap_ci(y, s, n_boot=400, seed=3)  # deterministic per seed


def test_label_bootstrap_matches_sklearn_loop():
    """Mean over labels per resample (images resampled together) equals scikit-learn with
    sample weights on the same resamples; a rare label missing from a resample is left out."""
    rng = np.random.default_rng(0)
    n, L, B = 120, 3, 40
    y = (rng.random((n, L)) < [0.5, 0.3, 0.04]).astype(float)
    s = np.round(rng.normal(size=(n, L)) + y, 1)
    ci = M.bootstrap_ci_labels(y, s, n_boot=B, seed=5, alpha=0.2)
    w = M._resample_counts(np.random.default_rng(5), B, n)
    au, ap = [], []
    for b in range(B):
        ok = [k for k in range(L) if 0 < (w[b] * y[:, k]).sum() < w[b].sum()]
        au.append(np.mean([sk.roc_auc_score(y[:, k], s[:, k], sample_weight=w[b]) for k in ok]))
        ap.append(np.mean([sk.average_precision_score(y[:, k], s[:, k], sample_weight=w[b]) for k in ok]))
    assert ci["auroc"] == pytest.approx(tuple(np.percentile(au, [10, 90])), abs=1e-9)
    assert ci["auprc"] == pytest.approx(tuple(np.percentile(ap, [10, 90])), abs=1e-9)
    with pytest.raises(ValueError, match="No label has both"):
        M.bootstrap_ci_labels(np.ones((5, 2)), np.zeros((5, 2)))


def test_confusion_at_threshold():
    y = np.array([1, 1, 0, 0, 0])
    s = np.array([0.9, 0.4, 0.6, 0.2, 0.1])
    c = M.confusion_at(y, s, 0.5)
    assert (c["tp"], c["fp"], c["fn"], c["tn"]) == (1, 1, 1, 2)
    assert c["sensitivity"] == 0.5 and c["specificity"] == pytest.approx(2 / 3)
    assert c["precision"] == 0.5 and c["f1"] == 0.5
    assert np.isnan(M.confusion_at(y, s, 2.0)["precision"])  # nothing flagged
