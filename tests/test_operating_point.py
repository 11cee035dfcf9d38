"""Issue 21's done-when on a trained run: the operating point chosen on validation, its test sensitivity,
specificity, PPV and NPV, the Brier score and ECE equal an independent scikit-learn/NumPy computation from
predictions.npz; ``runs show --prevalence`` gives scikit-learn's weighted AP; temperature scaling keeps AUROC
and lowers the validation log loss; a run recorded before validation predictions were kept says so until
``runs reevaluate`` recomputes them from model.pt."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from sklearn import metrics as sk

from medtl import train
from medtl.cli import main
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.metrics import calibration as C
from medtl.runs import RunStore


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("runs"))
    cfg = RunConfig(
        DataConfig(n_images=120, image_size=32),
        ModelConfig("resnet18", "truncate", "layer1", "random"),
        TrainConfig(epochs=2, batch_size=16, bootstrap=200, device="cpu"),
    )
    rid = store.create(cfg)
    assert train.run(cfg, store, rid)["state"] == "done"
    return store, rid


def _threshold_at_sensitivity(y: np.ndarray, s: np.ndarray, target: float) -> float:
    """The highest validation score t such that at least ``target`` of the positives score >= t."""
    pos = s[y == 1]
    return max(t for t in np.unique(s) if np.mean(pos >= t) >= target - 1e-12)


def _ece(y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> float:
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = ((p > lo) & (p <= hi)) | ((lo == 0) & (p == 0))
        if inside.any():
            total += inside.mean() * abs(y[inside].mean() - p[inside].mean())
    return total


@pytest.mark.slow
def test_operating_point_and_calibration_equal_an_independent_computation(trained):
    store, rid = trained
    p, m = store.predictions(rid), store.metrics(rid)["test"]
    vy, vs = p["val_y_true"], p["val_y_score"].astype(np.float64)
    y, s = p["y_true"].astype(int), p["y_score"].astype(np.float64)
    op = m["op"]
    assert op["rule"] == "sensitivity:0.9" and op["chosen_on"] == "validation"
    t = _threshold_at_sensitivity(vy, vs, 0.9)
    assert op["threshold"] == pytest.approx(t, abs=1e-12)
    pred = (s >= t).astype(int)
    assert op["sensitivity"] == pytest.approx(sk.recall_score(y, pred), abs=1e-9)
    assert op["specificity"] == pytest.approx(sk.recall_score(1 - y, 1 - pred), abs=1e-9)
    assert op["ppv"] == pytest.approx(sk.precision_score(y, pred, zero_division=np.nan), abs=1e-9, nan_ok=True)
    assert op["npv"] == pytest.approx(sk.precision_score(1 - y, 1 - pred, zero_division=np.nan), abs=1e-9, nan_ok=True)
    assert op["flagged_per_1000"] == pytest.approx(1000 * pred.mean(), abs=1e-9)
    assert (op["tp"], op["fp"]) == (int(((pred == 1) & (y == 1)).sum()), int(((pred == 1) & (y == 0)).sum()))
    assert m["brier"] == pytest.approx(sk.brier_score_loss(y, s), abs=1e-9)
    assert m["ece"] == pytest.approx(_ece(y, s), abs=1e-9)
    fpr, tpr, _ = sk.roc_curve(y, s)
    assert m["sens_at_spec"] == pytest.approx(tpr[1 - fpr >= 0.9 - 1e-12].max(), abs=1e-9)
    for key in ("sensitivity", "specificity", "flagged_per_1000"):
        lo, hi = op[f"{key}_ci"]
        assert lo <= op[key] <= hi


@pytest.mark.slow
def test_temperature_scaling_keeps_auroc_and_lowers_validation_log_loss(trained):
    store, rid = trained
    p, cal = store.predictions(rid), store.metrics(rid)["test"]["calibration"]
    t = cal["temperature"]
    assert t == C.fit_temperature(p["val_y_true"], p["val_y_score"])
    scaled = C.apply_temperature(p["y_score"], t)
    assert sk.roc_auc_score(p["y_true"], scaled) == sk.roc_auc_score(p["y_true"], p["y_score"].astype(np.float64))
    assert cal["auroc_scaled"] == store.metrics(rid)["test"]["auroc"]
    vy, vs = p["val_y_true"], p["val_y_score"].astype(np.float64)
    assert cal["val_nll"] == pytest.approx(sk.log_loss(vy, vs), abs=1e-9)
    assert cal["val_nll_scaled"] == pytest.approx(sk.log_loss(vy, C.apply_temperature(vs, t)), abs=1e-9)
    assert cal["val_nll_scaled"] <= cal["val_nll"]
    assert cal["ece_scaled"] == pytest.approx(_ece(p["y_true"].astype(np.float64), scaled), abs=1e-9)


@pytest.mark.slow
def test_runs_show_at_a_deployment_prevalence_is_sklearns_weighted_ap(trained, capsys):
    store, rid = trained
    assert main(["runs", "show", rid, "--json", "--prevalence", "0.05", "--runs-dir", str(store.root)]) == 0
    out = json.loads(capsys.readouterr().out)
    test = out["metrics"]["test"]
    p = store.predictions(rid)
    y, s = p["y_true"].astype(int), p["y_score"].astype(np.float64)
    w = np.where(y == 1, 1.0, y.sum() / (1 - y).sum() * 0.95 / 0.05)
    assert test["prevalence"] == 0.05
    assert test["auprc_at_prevalence"] == pytest.approx(sk.average_precision_score(y, s, sample_weight=w), abs=1e-9)
    assert test["auprc"] == store.metrics(rid)["test"]["auprc"]  # the test set's own stays as recorded
    t = test["op"]["threshold"]
    ppv = sk.precision_score(y, s >= t, sample_weight=w, zero_division=np.nan)
    npv = sk.precision_score(1 - y, s < t, sample_weight=w, zero_division=np.nan)
    assert test["op"]["ppv_at_prevalence"] == pytest.approx(ppv, abs=1e-9, nan_ok=True)
    assert test["op"]["npv_at_prevalence"] == pytest.approx(npv, abs=1e-9, nan_ok=True)
    # the readable form names the records, and another rule is read from the predictions
    assert main(["runs", "show", rid, "--operating-point", "specificity:0.95", "--runs-dir", str(store.root)]) == 0
    text = capsys.readouterr().out
    assert "specificity ≥ 95% chosen on validation" in text and "Brier score" in text and "ECE (15" in text
    assert main(["runs", "show", rid, "--prevalence", "2", "--runs-dir", str(store.root)]) == 2
    assert "prevalence must be a number in (0, 1)" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_recorded_before_validation_predictions_says_so_until_reevaluated(trained, tmp_path, capsys):
    store, rid = trained
    old = RunStore(tmp_path / "runs")
    shutil.copytree(store.path(rid), old.path(rid))
    p = old.predictions(rid)
    old.write_predictions(rid, index=p["index"], y_true=p["y_true"], y_score=p["y_score"])  # as before issue 19
    m = old.metrics(rid)
    keep = ("auroc", "auprc", "auroc_ci", "auprc_ci", "auprc_trapezoid", "n", "n_pos")
    m["test"] = {k: v for k, v in m["test"].items() if k in keep}
    old.write_metrics(rid, m)
    assert main(["runs", "show", rid, "--runs-dir", str(old.root)]) == 0
    assert (
        f"operating point not available: re-run or `python -m medtl runs reevaluate {rid}`" in capsys.readouterr().out
    )
    assert main(["runs", "reevaluate", rid, "--runs-dir", str(old.root)]) == 0
    assert "at sensitivity ≥ 90% (validation)" in capsys.readouterr().out
    again, first = old.metrics(rid)["test"], store.metrics(rid)["test"]
    assert set(old.predictions(rid)) >= {"val_index", "val_y_true", "val_y_score"}
    np.testing.assert_allclose(old.predictions(rid)["y_score"], store.predictions(rid)["y_score"], atol=1e-6)
    for key in ("auroc", "auprc", "brier", "ece"):
        assert again[key] == pytest.approx(first[key], abs=1e-6)
    assert again["op"]["threshold"] == pytest.approx(first["op"]["threshold"], abs=1e-6)
    assert m["model"] == old.metrics(rid)["model"]  # what was measured in training is kept
