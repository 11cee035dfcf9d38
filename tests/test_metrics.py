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


@pytest.mark.slow
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


# --- operating points, calibration, prevalence, decision curves (issue 21) --------------------------

from sklearn.calibration import calibration_curve  # noqa: E402

from medtl.metrics import calibration as C  # noqa: E402
from medtl.metrics import decision as D  # noqa: E402
from medtl.metrics import operating as O  # noqa: E402
from medtl.metrics import registry as R  # noqa: E402


def _probs(seed: int, n: int, prevalence: float = 0.25, signal: float = 1.5, dtype=np.float32):
    """Labels and sigmoid probabilities as the trainer stores them (float32), with ties from rounding."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(int)
    z = np.round(signal * (2 * y - 1) + rng.normal(0, 1.2, n), 2)
    return y, (1 / (1 + np.exp(-z))).astype(dtype)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_thresholds_chosen_on_validation_match_their_definitions(seed):
    y, s = _probs(seed, 300)
    pos, neg = s[y == 1], s[y == 0]
    cand = np.unique(s)
    for target in (0.8, 0.9, 0.95, 1.0):
        # sensitivity >= s: the highest validation score t with at least s of the positives scored >= t
        want = max(t for t in cand if np.mean(pos >= t) >= target - 1e-12)
        assert O.choose_threshold(y, s, f"sensitivity:{target}") == want
        # specificity >= s: the lowest validation score t with at least s of the negatives scored < t
        ok = [t for t in cand if np.mean(neg < t) >= target - 1e-12]
        want = min(ok) if ok else np.nextafter(s.max(), np.inf)
        assert O.choose_threshold(y, s, f"specificity:{target}") == pytest.approx(want, abs=0)
    fpr, tpr, thr = sk.roc_curve(y, s, drop_intermediate=False)
    assert O.choose_threshold(y, s, "youden") == thr[np.argmax(tpr - fpr)]
    assert O.choose_threshold(y, s, "threshold:0.42") == 0.42


@pytest.mark.parametrize("seed", [0, 1])
def test_rates_at_a_threshold_match_sklearn(seed):
    y, s = _probs(seed, 500)
    t = O.choose_threshold(*_probs(seed + 10, 300), "sensitivity:0.9")
    pred = (s >= t).astype(int)
    r = {k: float(v[0]) for k, v in O.rates(*O.confusion_weighted(y, s, np.ones((1, y.size)), t)).items()}
    assert r["sensitivity"] == pytest.approx(sk.recall_score(y, pred), abs=1e-9)
    assert r["specificity"] == pytest.approx(sk.recall_score(1 - y, 1 - pred), abs=1e-9)
    assert r["ppv"] == pytest.approx(sk.precision_score(y, pred), abs=1e-9)
    assert r["npv"] == pytest.approx(sk.precision_score(1 - y, 1 - pred), abs=1e-9)
    assert r["f1"] == pytest.approx(sk.f1_score(y, pred), abs=1e-9)
    assert r["flagged_per_1000"] == pytest.approx(1000 * pred.mean(), abs=1e-9)
    nothing = O.rates(*O.confusion_weighted(y, s, np.ones((1, y.size)), 2.0))
    assert np.isnan(nothing["ppv"][0]) and nothing["specificity"][0] == 1  # nothing flagged: PPV undefined


def test_sensitivity_at_specificity_reads_the_roc_curve():
    for seed in range(3):
        y, s = _probs(seed, 400)
        fpr, tpr, _ = sk.roc_curve(y, s, drop_intermediate=False)
        for spec in (0.8, 0.9, 0.99):
            want = tpr[1 - fpr >= spec - 1e-12].max()
            assert O.sensitivity_at_specificity(y, s, spec) == pytest.approx(want, abs=1e-9)


def test_rules_parse_and_bad_rules_name_the_forms():
    assert O.parse_rule("sensitivity:0.9") == O.Rule("sensitivity", 0.9)
    assert O.parse_rule(" Youden ").text == "youden" and O.parse_rule("specificity:0.95").label == "specificity ≥ 95%"
    for bad in ("sensitivity", "sensitivity:1.5", "specificity:0", "youden:0.3", "recall:0.9", "threshold:x"):
        with pytest.raises(ValueError, match="operating point"):
            O.parse_rule(bad)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_brier_ece_and_reliability_match_sklearn_and_a_numpy_loop(seed):
    y, p = _probs(seed, 700)
    p64 = p.astype(np.float64)
    assert C.brier(y, p) == pytest.approx(sk.brier_score_loss(y, p64), abs=1e-9)
    edges = np.linspace(0, 1, 16)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):  # bins (lo, hi], 0 in the first (torchmetrics')
        inside = (p64 > lo) & (p64 <= hi) | ((lo == 0) & (p64 == 0))
        if inside.any():
            ece += inside.mean() * abs(y[inside].mean() - p64[inside].mean())
    assert C.ece(y, p) == pytest.approx(ece, abs=1e-9)
    for strategy in ("uniform", "quantile"):
        rel = C.reliability(y, p, 10, strategy)
        true, pred = calibration_curve(y, p64, n_bins=10, strategy=strategy)
        np.testing.assert_allclose(rel["fraction_positive"], true, atol=1e-9)
        np.testing.assert_allclose(rel["mean_predicted"], pred, atol=1e-9)
        assert rel["count"].sum() == y.size
    # equal-mass bins: sklearn's quantile edges, each bin weighted by its share of images
    rel = C.reliability(y, p, 15, "quantile")
    want = np.sum(rel["count"] / y.size * np.abs(rel["fraction_positive"] - rel["mean_predicted"]))
    assert C.ece(y, p, strategy="quantile") == pytest.approx(want, abs=1e-9)


def test_ece_equals_torchmetrics_documented_example():
    # torchmetrics' binary_calibration_error docstring: preds, target, n_bins=2, norm="l1" -> 0.2900
    assert C.ece([0, 0, 1, 1, 1], [0.25, 0.25, 0.55, 0.75, 0.75], n_bins=2) == pytest.approx(0.29, abs=1e-9)


def test_temperature_scaling_keeps_auroc_and_lowers_validation_log_loss():
    rng = np.random.default_rng(4)
    for true_t in (0.4, 1.0, 3.0):  # a calibrated logit made under- (0.4) or over-confident (3.0) by a known factor
        a = rng.normal(-1, 2, 4000)
        y = (rng.random(a.size) < 1 / (1 + np.exp(-a))).astype(int)
        p = (1 / (1 + np.exp(-true_t * a))).astype(np.float32)
        vy, vp, ty, tp_ = y[:2000], p[:2000], y[2000:], p[2000:]
        t = C.fit_temperature(vy, vp)
        assert t == pytest.approx(true_t, rel=0.15)
        scaled = C.apply_temperature(tp_, t)
        assert M.auroc(ty, scaled) == M.auroc(ty, tp_)  # exactly: the order of the scores is kept
        assert M.average_precision(ty, scaled) == pytest.approx(M.average_precision(ty, tp_), abs=1e-12)
        before, after = sk.log_loss(vy, vp.astype(np.float64)), sk.log_loss(vy, C.apply_temperature(vp, t))
        assert C.log_loss(vy, vp) == pytest.approx(before, abs=1e-9)
        assert after <= before + 1e-12
        if true_t != 1.0:
            assert after < before - 1e-3
    # softmax outputs: the same scalar on log-probabilities keeps every row's order
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1]])
    onehot = np.eye(3)[[0, 1, 2, 1]]
    t = C.fit_temperature(onehot, probs, exclusive=True)
    np.testing.assert_array_equal(np.argsort(C.apply_temperature(probs, t, True), 1), np.argsort(probs, 1))
    assert C.log_loss(onehot, C.apply_temperature(probs, t, True), True) <= C.log_loss(onehot, probs, True)


@pytest.mark.parametrize("prevalence", [0.01, 0.057, 0.3, 0.5])
def test_metrics_at_a_deployment_prevalence_are_sklearns_weighted_ones(prevalence):
    y, s = _probs(1, 600, prevalence=0.5)
    n_pos, n_neg = y.sum(), (1 - y).sum()
    w = np.where(y == 1, 1.0, n_pos / n_neg * (1 - prevalence) / prevalence)
    assert M.negative_weight(y, prevalence) == pytest.approx(w[y == 0][0], abs=0)
    assert M.average_precision(y, s, prevalence) == pytest.approx(
        sk.average_precision_score(y, s, sample_weight=w), abs=1e-9
    )
    p, r, _ = sk.precision_recall_curve(y, s, sample_weight=w)
    pr = M.pr_points(y, s, prevalence)
    np.testing.assert_allclose(pr["precision"], p, atol=1e-9)
    np.testing.assert_allclose(pr["recall"], r, atol=1e-9)
    assert M.auroc(y, s) == pytest.approx(sk.roc_auc_score(y, s, sample_weight=w), abs=1e-9)  # AUROC does not move
    # PPV and NPV at the deployment prevalence: Bayes' rule on sensitivity and specificity
    t = 0.5
    pred = s >= t
    sens, spec = pred[y == 1].mean(), (~pred[y == 0]).mean()
    ppv = sens * prevalence / (sens * prevalence + (1 - spec) * (1 - prevalence))
    npv = spec * (1 - prevalence) / (spec * (1 - prevalence) + (1 - sens) * prevalence)
    at = R.intervals(y, s, R.Context(threshold=t), ["op.ppv", "op.npv", "op.flagged_per_1000"], prevalence, n_boot=20)
    assert at["op.ppv"][0] == pytest.approx(ppv, abs=1e-9)
    assert at["op.npv"][0] == pytest.approx(npv, abs=1e-9)
    assert at["op.flagged_per_1000"][0] == pytest.approx(
        1000 * (sens * prevalence + (1 - spec) * (1 - prevalence)), abs=1e-9
    )
    with pytest.raises(ValueError, match="prevalence must be a number in"):
        M.average_precision(y, s, 1.0)


@pytest.mark.slow
def test_net_benefit_is_the_closed_form_and_dcurves():
    y, p = _probs(2, 500, prevalence=0.2, dtype=np.float64)
    t = np.array([0.05, 0.1, 0.2, 0.35, 0.5, 0.8])
    for prevalence in (None, 0.05):
        nb = D.net_benefit(y, p, t, prevalence)
        prev = y.mean() if prevalence is None else prevalence
        flagged = p[None, :] >= t[:, None]
        sens, fpr = flagged[:, y == 1].mean(1), flagged[:, y == 0].mean(1)
        np.testing.assert_allclose(nb["model"], sens * prev - fpr * (1 - prev) * t / (1 - t), atol=1e-9)
        np.testing.assert_allclose(nb["treat_all"], prev - (1 - prev) * t / (1 - t), atol=1e-9)
        assert not nb["treat_none"].any()
    dcurves = pytest.importorskip("dcurves")
    import pandas as pd

    df = pd.DataFrame({"y": y, "p": p})
    for prevalence in (None, 0.05):
        ref = dcurves.dca(data=df, outcome="y", modelnames=["p"], thresholds=t, prevalence=prevalence)
        nb = D.net_benefit(y, p, t, prevalence)
        for name, ours in (("p", nb["model"]), ("all", nb["treat_all"]), ("none", nb["treat_none"])):
            np.testing.assert_allclose(ours, ref[ref["model"] == name]["net_benefit"].to_numpy(), atol=1e-9)


def test_evaluate_intervals_share_the_bootstrap_resamples():
    """Every record's interval comes from the resamples of bootstrap_ci: AUROC/AP equal it, and an
    operating-point metric equals a per-resample scikit-learn loop over the same draws."""
    y, s = _probs(3, 250)
    vy, vs = _probs(13, 200)
    pred = {"y_true": y, "y_score": s, "val_y_true": vy, "val_y_score": vs}
    out = R.evaluate(pred, n_boot=60, seed=7)
    ci = M.bootstrap_ci(y, s, n_boot=60, seed=7)
    assert out["auroc_ci"] == list(ci["auroc"]) and out["auprc_ci"] == list(ci["auprc"])
    t = out["op"]["threshold"]
    assert t == O.choose_threshold(vy, vs, "sensitivity:0.9")
    order = np.argsort(-s.astype(np.float64), kind="stable")
    ys, ss = y[order], s[order]
    w = M.stratified_weights(ys, 60, np.random.default_rng(7))
    ppv = [sk.precision_score(ys, ss >= t, sample_weight=w[b]) for b in range(60)]
    spec = [sk.recall_score(1 - ys, ss < t, sample_weight=w[b]) for b in range(60)]
    brier = [sk.brier_score_loss(ys, ss, sample_weight=w[b]) for b in range(60)]
    assert out["op"]["ppv_ci"] == pytest.approx(list(np.percentile(ppv, [2.5, 97.5])), abs=1e-9)
    assert out["op"]["specificity_ci"] == pytest.approx(list(np.percentile(spec, [2.5, 97.5])), abs=1e-9)
    assert out["brier_ci"] == pytest.approx(list(np.percentile(brier, [2.5, 97.5])), abs=1e-9)
    for key in ("sensitivity", "specificity", "ppv", "npv", "f1", "flagged_per_1000"):
        lo, hi = out["op"][f"{key}_ci"]
        assert lo <= out["op"][key] <= hi
    assert out["calibration"]["auroc_scaled"] == out["auroc"]
    assert out["calibration"]["val_nll_scaled"] <= out["calibration"]["val_nll"]
    old = R.evaluate({"y_true": y, "y_score": s}, n_boot=20)  # recorded before validation predictions were kept
    assert old["op"]["available"] is False and "runs reevaluate" in old["op"]["reason"]
    assert old["calibration"]["temperature"] is None


def test_every_record_is_complete_and_named_for_its_reference():
    for key, m in R.METRICS.items():
        assert m.key == key and m.column == f"test.{key}" and m.label and m.definition
        assert m.needs in ("ranks", "threshold", "probabilities")
    assert [k for k, m in R.METRICS.items() if not m.higher_is_better] == ["brier", "ece"]
    with pytest.raises(ValueError, match="Unknown metric"):
        R.get("test.accuracy")


@pytest.mark.slow
def test_a_new_record_reaches_every_reader(tmp_path, monkeypatch, capsys):
    """Adding a metric is one record (README, Extending): registered here at run time, it reaches
    metrics.json's test section, the runs table, ``runs show`` (text and --json), the Compare page's
    columns and metric choices, and a study's paired operating-point table, with no other change."""
    import json
    from pathlib import Path

    from sklearn.metrics import balanced_accuracy_score
    from streamlit.testing.v1 import AppTest

    from medtl import compare
    from medtl.cli import main
    from medtl.config import RunConfig
    from medtl.runs import RunStore
    from medtl.study import operating

    def balanced(y, s, w, ctx):
        r = O.rates(*O.confusion_weighted(y, s, w, ctx.threshold)) if ctx.threshold is not None else None
        return np.full(np.atleast_2d(w).shape[0], np.nan) if r is None else (r["sensitivity"] + r["specificity"]) / 2

    record = R.Metric("op.balanced_accuracy", "balanced accuracy", "bal. acc.", True, "threshold", balanced, "sklearn")
    y, s = _probs(5, 300)
    vy, vs = _probs(15, 200)
    pred = {"index": np.arange(y.size), "y_true": y, "y_score": s, "val_y_true": vy, "val_y_score": vs}
    R.register(record)
    try:
        out = R.evaluate(pred, n_boot=30)
        t = out["op"]["threshold"]
        assert out["op"]["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, s >= t), abs=1e-9)
        assert len(out["op"]["balanced_accuracy_ci"]) == 2
        assert compare.METRICS["test.op.balanced_accuracy"] is record
        assert "test.op.balanced_accuracy" in compare.run_columns(pred, n_boot=20)
        store = RunStore(tmp_path)
        ids = [store.create(RunConfig(), state="done") for _ in range(2)]
        for rid in ids:
            store.write_predictions(rid, **pred)
            model = {"params": 1e6, "macs": 1e8, "latency_ms": 1.0}
            test = {"n": int(y.size), "n_pos": int(y.sum()), **out}
            store.write_metrics(rid, {"test": test, "model": model, "train": {"seconds": 1.0}})
        # the runs table and runs show
        assert store.table()["test.op.balanced_accuracy"].iloc[0] == pytest.approx(out["op"]["balanced_accuracy"])
        assert main(["runs", "show", ids[0], "--runs-dir", str(tmp_path)]) == 0
        assert "balanced accuracy" in capsys.readouterr().out
        assert main(["runs", "show", ids[0], "--json", "--prevalence", "0.05", "--runs-dir", str(tmp_path)]) == 0
        shown = json.loads(capsys.readouterr().out)["metrics"]["test"]["op"]
        assert shown["balanced_accuracy"] == pytest.approx(out["op"]["balanced_accuracy"])
        # the Compare page: a column and a choice of metric (sorted by it)
        monkeypatch.setenv("MEDTL_RUNS", str(tmp_path))
        page = str(Path(__file__).resolve().parents[1] / "pages" / "3_Compare.py")
        at = AppTest.from_file(page, default_timeout=120).run()
        assert not at.exception
        assert "bal. acc." in at.dataframe[0].value.columns
        assert "balanced accuracy" in at.selectbox(key="metric").options  # its label
        at.selectbox(key="metric").set_value("test.op.balanced_accuracy").run()
        assert not at.exception
        # a study's paired comparison at the operating point
        r = operating.compare(store, ids[:1], ids[1:], n_boot=20)
        assert r["metrics"]["op.balanced_accuracy"]["delta"]["value"] == 0
        assert "bal. acc." in operating.table(
            {"groups": [{"init": "random", "size": "100%", "selected": "layer1", "operating": r}]}
        )
    finally:
        del R.METRICS[record.key]
    assert "test.op.balanced_accuracy" not in compare.METRICS


def test_a_study_comparison_at_the_operating_point_over_seeds(tmp_path):
    """Two seeds a side: paired intervals over the test images, McNemar per seed, and the interval over
    seeds of a difference of two rates kept inside [-1, 1] (a t interval with one degree of freedom is huge)."""
    from medtl.config import RunConfig
    from medtl.runs import RunStore
    from medtl.study import operating

    store = RunStore(tmp_path)
    y, _ = _probs(0, 200)
    ids = []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        s = 1 / (1 + np.exp(-(rng.normal(0, 1, y.size) + (1 + seed) * (2 * y - 1))))
        vy, vs = _probs(10 + seed, 150)
        rid = store.create(RunConfig(), state="done")
        store.write_predictions(rid, index=np.arange(y.size), y_true=y, y_score=s, val_y_true=vy, val_y_score=vs)
        ids.append(rid)
    r = operating.compare(store, ids[:2], ids[2:], "specificity:0.8", 0.05, n_boot=50, seeds=[0, 1])
    assert r["available"] and r["prevalence"] == 0.05 and [m["seed"] for m in r["mcnemar"]] == [0, 1]
    for key in ("op.sensitivity", "op.specificity"):
        lo, hi = r["seed_delta"][key]["ci"]
        assert -1.0 <= lo <= r["seed_delta"][key]["value"] <= hi <= 1.0
    assert r["metrics"]["op.ppv"]["a"]["ci"][0] <= r["metrics"]["op.ppv"]["a"]["value"]


def test_a_rate_with_no_denominator_reads_undefined_in_a_study(tmp_path):
    """A model that flags every test image has no NPV (no image called negative): the study's table, its
    sentences and the report say "undefined" and why, never "nan"."""
    from medtl.config import RunConfig
    from medtl.runs import RunStore
    from medtl.study import operating

    store = RunStore(tmp_path)
    y, s = _probs(0, 200)
    vy, vs = _probs(1, 150)
    ids = []
    for test_scores in (0.6 + 0.3 * s, s):  # A: every score above the threshold; B: an ordinary model
        rid = store.create(RunConfig(), state="done")
        store.write_predictions(
            rid, index=np.arange(y.size), y_true=y, y_score=test_scores, val_y_true=vy, val_y_score=vs
        )
        ids.append(rid)
    r = operating.compare(store, ids[:1], ids[1:], "threshold:0.5", n_boot=30)
    assert np.isnan(r["metrics"]["op.npv"]["a"]["value"]) and np.isfinite(r["metrics"]["op.npv"]["b"]["value"])
    table = operating.table({"groups": [{"init": "random", "size": "100%", "selected": "layer1", "operating": r}]})
    npv = table[R.METRICS["op.npv"].short].iloc[0]
    assert npv.startswith("undefined / ") and "nan" not in table.to_string().lower()
    assert "calls no image negative" in operating.undefined_note(table)
    assert operating.undefined_note(table.drop(columns=[R.METRICS["op.npv"].short])) == ""
    assert "nan" not in " ".join(operating.words(r, "A", "B")).lower()
