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
    "args, param, match",
    [
        ((10, 990, 5), "k", "k must lie between"),
        ((0, 10, 5), "n_pos", "n_pos must be at least 1. Got 0"),
        ((10, 0, 10), "n_neg", "n_neg must be at least 1. Got 0"),
        ((10, 10, 2000), "k", "Got 2,000"),
    ],
)
def test_invalid_arguments(args, param, match):
    with pytest.raises(toy.SettingError, match=match) as e:
        toy.simulate(*args)
    assert e.value.param == param and isinstance(e.value, ValueError)


@pytest.mark.parametrize(
    "settings, blamed",
    [
        ((10, 0, 12, 30, 200), ["n_neg"]),  # the k's range depends on the counts: not blamed for them
        ((0, 990, 12, 30, 200), ["n_pos"]),
        ((0, 0, 12, 30, 0), ["n_pos", "n_neg", "draws"]),
        ((10, 990, 3, 30, 200), ["k_a"]),
        ((10, 990, 12, 5000, 200), ["k_b"]),
        ((20, 990, 12, 30, 200), ["k_a"]),  # 20 positives do not fit in A's top 12; B's top 30 holds them
        ((10, 990, 12, 30, 0), ["draws"]),
        ((10, 199_990, 12, 30, 200), ["draws"]),  # 200 x 200,000 cells is more than MAX_CELLS
        ((10, 990, 12, 30, 200), []),
    ],
)
def test_problems_blame_the_setting_at_fault(settings, blamed):
    n_pos, n_neg, k_a, k_b, draws = settings
    found = toy.problems(n_pos, n_neg, {"k_a": k_a, "k_b": k_b}, draws)
    assert [e.param for e in found] == blamed
    for e in found:
        assert str(e) == f"{e.param} {e.problem}" and "Got" in e.problem  # names the argument and the bad value


def test_draws_cap_says_what_is_allowed():
    (e,) = toy.problems(10, 199_990, {"k_a": 12}, 200)
    assert e.problem.startswith("must be at most 100 for 200,000 examples")
    assert toy.problems(10, 199_990, {"k_a": 12}, 100) == []


def test_at_cut_counts_one_draw_and_the_mean_over_draws():
    r = toy.simulate(10, 90, 30, draws=20, seed=4)
    for cut in (1, 12, 30, 100):
        assert r.at_cut(cut, draw=3) == metrics.confusion_at(r.labels[3], r.scores, r.scores[cut - 1])
        mean = r.at_cut(cut)
        assert mean["tp"] == pytest.approx(r.labels[:, :cut].sum(axis=1).mean())
        assert mean["tp"] + mean["fn"] == 10 and mean["fp"] + mean["tn"] == pytest.approx(90)
        assert mean["tp"] + mean["fp"] == pytest.approx(cut)


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


@pytest.mark.slow
@pytest.mark.parametrize("prevalence", [None, 0.01, 0.05, 0.2, 0.5])
@pytest.mark.parametrize(("n_pos", "n_neg", "k"), [(3, 20, 7), (4, 30, 9), (2, 5, 7)])
def test_expected_values_at_a_deployment_prevalence_are_exact(n_pos, n_neg, k, prevalence):
    """Every placement of the positives, scored by scikit-learn with each negative weighted
    (n_pos / n_neg)(1 - π)/π: the closed forms of AP, precision at a cut and flagged per true positive."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    w = 1.0 if prevalence is None else n_pos / n_neg * (1 - prevalence) / prevalence
    score = -np.arange(n_pos + n_neg, dtype=float)
    cut, m = k - 1, max(1, n_pos - 1)
    aps, aurocs, precisions, per_tp = [], [], [], []
    for slots in itertools.combinations(range(k), n_pos):
        y = np.zeros(n_pos + n_neg, int)
        y[list(slots)] = 1
        sw = np.where(y == 1, 1.0, w)
        aps.append(average_precision_score(y, score, sample_weight=sw))
        aurocs.append(roc_auc_score(y, score, sample_weight=sw))
        tp = y[:cut].sum()
        precisions.append(tp / (tp + w * (cut - tp)))
        rank = np.flatnonzero(y)[m - 1] + 1  # images flagged to find m positives
        per_tp.append((m + w * (rank - m)) / m)
    exp = toy.expected(n_pos, n_neg, k, prevalence)
    assert exp["auprc"] == pytest.approx(np.mean(aps), abs=1e-12)
    assert exp["auroc"] == pytest.approx(np.mean(aurocs), abs=1e-12)  # AUROC does not move
    assert toy.expected_at_cut(n_pos, n_neg, k, cut, prevalence)["precision"] == pytest.approx(
        np.mean(precisions), abs=1e-12
    )
    op = toy.expected_at_sensitivity(n_pos, n_neg, k, m / n_pos, prevalence)
    assert op["found"] == m and op["per_tp"] == pytest.approx(np.mean(per_tp), abs=1e-12)
    if prevalence is not None:
        sweep = toy.expected_over_prevalence(n_pos, n_neg, k, [prevalence])
        assert sweep["auprc"][0] == pytest.approx(exp["auprc"], abs=1e-12)


def test_the_same_draws_at_another_prevalence():
    """Re-weighting negatives keeps AUROC and the rank of the m-th positive, moves AP to scikit-learn's weighted AP."""
    from sklearn.metrics import average_precision_score

    r = toy.simulate(5, 60, 15, draws=25, seed=2)
    at = r.at_prevalence(0.3)
    w = 5 / 60 * 0.7 / 0.3
    assert np.allclose(at.metrics["auroc"], r.metrics["auroc"], atol=1e-12)
    sk = [average_precision_score(y, r.scores, sample_weight=np.where(y == 1, 1.0, w)) for y in r.labels]
    assert np.allclose(at.metrics["auprc"], sk, atol=1e-12)
    assert at.at_prevalence(None).metrics["auprc"] == pytest.approx(r.metrics["auprc"], abs=1e-12)
    s = r.at_sensitivity(0.8, 0.3)
    ranks = [np.flatnonzero(y)[3] + 1 for y in r.labels]  # 4 of 5 positives
    assert s["flagged"] == pytest.approx(np.mean(ranks)) and s["per_tp"] == pytest.approx(
        np.mean([(4 + w * (x - 4)) / 4 for x in ranks])
    )
    with pytest.raises(ValueError, match="sensitivity must be"):
        r.at_sensitivity(0.0)
    with pytest.raises(ValueError, match="prevalence must be"):
        r.at_prevalence(1.5)


def _sk_weight(y: np.ndarray, prevalence: float | None) -> np.ndarray:
    """scikit-learn's sample weights for a deployment prevalence: each negative counts w times."""
    n_pos = y.sum()
    w = 1.0 if prevalence is None else n_pos / (y.size - n_pos) * (1 - prevalence) / prevalence
    return np.where(y == 1, 1.0, w)


@pytest.mark.parametrize("prevalence", [None, 0.2])
def test_drawn_curves_and_legends_are_scikit_learns(prevalence):
    """The page's curves: draw 1's own ROC and PR points and its AUROC/AP in the legend, or the means over draws;
    the marks sit where the top ``cut`` are predicted positive; the legend lines shorten for presentation."""
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    res = {n: r.at_prevalence(prevalence) for n, r in toy.compare(5, 60, 9, 20, draws=30, seed=4).items()}
    one = toy.drawn(res, one_draw=True)
    for (name, r), (label, roc) in zip(res.items(), one.roc.items(), strict=True):
        y, sw = r.labels[0], _sk_weight(r.labels[0], prevalence)
        auroc, ap = roc_auc_score(y, r.scores), average_precision_score(y, r.scores, sample_weight=sw)
        assert label == f"{name} (top {r.k}), draw 1 · AUROC {auroc:.3f} · AP {ap:.3f}"
        fpr, tpr, _ = roc_curve(y, r.scores, drop_intermediate=False)
        assert np.allclose(roc["fpr"], fpr) and np.allclose(roc["tpr"], tpr)
        precision, recall, _ = precision_recall_curve(y, r.scores, sample_weight=sw, drop_intermediate=False)
        assert np.allclose(one.pr[label]["precision"], precision) and np.allclose(one.pr[label]["recall"], recall)
    mean = toy.drawn(res)
    for (name, r), label in zip(res.items(), mean.roc, strict=True):
        sk = [
            (roc_auc_score(y, r.scores), average_precision_score(y, r.scores, sample_weight=_sk_weight(y, prevalence)))
            for y in r.labels
        ]
        auroc, ap = np.mean(sk, axis=0)
        assert label == f"{name} (top {r.k}) · mean AUROC {auroc:.3f} · mean AP {ap:.3f}"
        assert mean.roc_bands[label]["x"].shape == mean.roc_bands[label]["lo"].shape
    marks_roc, marks_pr = mean.marks(7)
    for label, roc in mean.roc.items():
        tp = roc["tp"][marks_roc[label]]
        assert roc["tp"][marks_roc[label]] + roc["fp"][marks_roc[label]] == pytest.approx(7)
        assert mean.pr[label]["tp"][marks_pr[label]] == pytest.approx(tp)  # one point, both curves
    short = toy.drawn(res, short=True)
    assert [x.split(" · ")[0] for x in short.roc] == ["A", "B"] and "mean" not in " ".join(short.roc)
    assert [x.split(" · ")[0] for x in toy.drawn(res, True, short=True).roc] == ["A, draw 1", "B, draw 1"]


def test_confusion_summary_and_gaps_tables():
    from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score

    res = toy.compare(5, 60, 9, 20, draws=30, seed=4)
    one = toy.confusion(res, 12, draw=0)
    for name, r in res.items():
        tn, fp, fn, tp = confusion_matrix(r.labels[0], np.arange(r.scores.size) < 12).ravel()
        assert list(one[name]) == list(toy.CONFUSION)
        assert (one[name]["tp"], one[name]["fp"], one[name]["fn"], one[name]["tn"]) == (tp, fp, fn, tn)
        assert one[name]["precision"] == pytest.approx(tp / 12)
    means = toy.confusion(res, 12)
    assert means["A"]["tp"] == 5 and means["B"]["tp"] == pytest.approx(res["B"].labels[:, :12].sum(1).mean())
    table = toy.summary_table(res)
    assert list(table) == ["A (top 9)", "B (top 20)"] and list(table["A (top 9)"]) == list(toy.METRIC_NAMES.values())
    aps = {n: [average_precision_score(y, r.scores) for y in r.labels] for n, r in res.items()}
    aurocs = {n: [roc_auc_score(y, r.scores) for y in r.labels] for n, r in res.items()}
    ap_b = table["B (top 20)"]["AUPRC (average precision)"]
    assert ap_b == f"{np.mean(aps['B']):.4f} ± {np.std(aps['B']):.4f}"
    gap = toy.gaps(res)
    assert gap["auprc"] == pytest.approx(np.mean(aps["A"]) - np.mean(aps["B"]))
    assert gap["auroc"] == pytest.approx(np.mean(aurocs["A"]) - np.mean(aurocs["B"])) and gap["auroc"] > 0
