import itertools

import numpy as np
import pytest

from medtl import metrics, toy


def test_defaults_reproduce_the_paper():
    res = toy.compare()
    a, b = res["A"].summary(), res["B"].summary()
    assert a["auroc"]["mean"] == pytest.approx(0.999, abs=0.001)
    assert b["auroc"]["mean"] == pytest.approx(0.990, abs=0.002)
    assert a["auprc"]["mean"] == pytest.approx(0.87, abs=0.03)
    assert b["auprc"]["mean"] == pytest.approx(0.40, abs=0.03)


def test_exact_expectation_for_a_by_enumeration():
    """For k=12 all 66 placements can be enumerated: many draws converge to that mean."""
    aps = []
    for negs in itertools.combinations(range(12), 2):
        y = np.zeros(1000, int)
        y[[i for i in range(12) if i not in negs]] = 1
        aps.append(metrics.average_precision(y, -np.arange(1000.0)))
    sim = toy.simulate(10, 990, 12, draws=5000, seed=1)
    assert sim.metrics["auprc"].mean() == pytest.approx(np.mean(aps), abs=0.005)


def test_positives_lie_in_top_k_and_scores_fall():
    r = toy.simulate(5, 50, 9, draws=100, seed=2)
    assert (r.labels.sum(1) == 5).all()
    assert r.labels[:, 9:].sum() == 0
    assert (np.diff(r.scores) < 0).all()
    # Every slot of the top k is used by some draw: the placement is random, not fixed.
    assert (r.labels[:, :9].sum(0) > 0).all()


def test_per_draw_metrics_match_single_evaluations():
    r = toy.simulate(10, 200, 40, draws=5, seed=0)
    for i in range(5):
        assert r.metrics["auroc"][i] == pytest.approx(metrics.auroc(r.labels[i], r.scores))
        assert r.metrics["auprc"][i] == pytest.approx(metrics.average_precision(r.labels[i], r.scores))


def test_cut_curves_bands_bracket_mean():
    cc = toy.simulate(10, 90, 30, draws=50).cut_curves()
    assert cc["cut"][0] == 1 and cc["cut"][-1] == 100
    assert (cc["tpr_lo"] <= cc["tpr"] + 1e-12).all() and (cc["tpr"] <= cc["tpr_hi"] + 1e-12).all()
    assert cc["tpr"][-1] == 1 and cc["fpr"][-1] == 1


@pytest.mark.parametrize(
    "args, match",
    [((10, 990, 5), "k must lie"), ((0, 10, 5), "n_pos"), ((10, 0, 10), "n_neg"), ((10, 10, 2000), "k must lie")],
)
def test_invalid_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        toy.simulate(*args)


def test_too_large_refused():
    with pytest.raises(ValueError, match="fewer draws"):
        toy.simulate(10, 199_990, 20, draws=5000)


@pytest.mark.parametrize(("n_pos", "n_neg", "k"), [(10, 990, 12), (3, 20, 7), (4, 30, 4), (2, 5, 7)])
def test_expected_values_are_exact(n_pos, n_neg, k):
    """Enumerate every placement of the positives in the top k and average AUROC and AP directly."""
    aurocs, aps = [], []
    score = -np.arange(n_pos + n_neg, dtype=float)
    for slots in itertools.combinations(range(k), n_pos):
        y = np.zeros(n_pos + n_neg, int)
        y[list(slots)] = 1
        aurocs.append(metrics.auroc(y, score))
        aps.append(metrics.average_precision(y, score))
    exp = toy.expected(n_pos, n_neg, k)
    assert exp["auroc"] == pytest.approx(np.mean(aurocs), abs=1e-12)
    assert exp["auprc"] == pytest.approx(np.mean(aps), abs=1e-12)


def test_mean_points_are_the_threshold_average_of_the_draws():
    r = toy.simulate(5, 40, 12, draws=30, seed=3)
    roc, pr = r.mean_points()
    per_draw = [metrics.roc_points(y, r.scores) for y in r.labels]
    assert np.allclose(roc["tpr"], np.mean([p["tpr"] for p in per_draw], axis=0))
    assert np.allclose(roc["fpr"], np.mean([p["fpr"] for p in per_draw], axis=0))
    prs = [metrics.pr_points(y, r.scores) for y in r.labels]
    assert np.allclose(pr["precision"], np.mean([p["precision"] for p in prs], axis=0))
