import json

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from torch import nn

from medtl import advise as A
from medtl.cli import main
from medtl.config import ModelConfig
from medtl.models import build, registry

# --- LogME ---------------------------------------------------------------------------------------


def _data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, d))
    y = (f[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(float)
    return f, y


def _reference_evidence(f, y, alpha, beta):
    """You et al. 2021, Eq. 2, with explicit matrices: A = alpha I + beta F'F, m = beta A^-1 F'y."""
    n, d = f.shape
    a = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ y)
    ev = (
        d / 2 * np.log(alpha)
        + n / 2 * np.log(beta)
        - n / 2 * np.log(2 * np.pi)
        - beta / 2 * np.sum((f @ m - y) ** 2)
        - alpha / 2 * m @ m
        - np.linalg.slogdet(a)[1] / 2
    )
    return ev / n


@pytest.mark.parametrize("n, d", [(40, 6), (12, 25)])  # more samples than features, and fewer (rank-deficient)
def test_reference_evidence_is_the_gaussian_marginal_likelihood(n, d):
    f, y = _data(n, d)
    for alpha, beta in [(1.0, 1.0), (0.3, 4.0), (20.0, 0.5)]:
        direct = multivariate_normal(np.zeros(n), np.eye(n) / beta + f @ f.T / alpha).logpdf(y) / n
        assert _reference_evidence(f, y, alpha, beta) == pytest.approx(direct, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("n, d", [(60, 8), (15, 30)])
def test_logme_fixed_point_maximises_the_evidence(n, d):
    f, y = _data(n, d, seed=1)
    ev, alpha, beta = A.logme_fit(f, y)
    assert ev == pytest.approx(_reference_evidence(f, y, alpha, beta), rel=1e-9)
    direct = multivariate_normal(np.zeros(n), np.eye(n) / beta + f @ f.T / alpha).logpdf(y) / n
    assert ev == pytest.approx(direct, rel=1e-9, abs=1e-9)  # the evidence LogME reports, against scipy
    for fa in (0.5, 0.9, 1.1, 2.0):
        for fb in (0.5, 0.9, 1.0, 1.1, 2.0):
            assert _reference_evidence(f, y, alpha * fa, beta * fb) <= ev + 1e-12
    h = 1e-4  # a stationary point: zero gradient in (log alpha, log beta)
    da = _reference_evidence(f, y, alpha * np.exp(h), beta) - _reference_evidence(f, y, alpha * np.exp(-h), beta)
    db = _reference_evidence(f, y, alpha, beta * np.exp(h)) - _reference_evidence(f, y, alpha, beta * np.exp(-h))
    assert abs(da) / (2 * h) < 1e-5 and abs(db) / (2 * h) < 1e-5


def test_logme_prefers_informative_features_and_averages_labels():
    rng = np.random.default_rng(2)
    y = (rng.random(200) < 0.3).astype(float)
    noise = rng.normal(size=(200, 16))
    signal = noise + 1.5 * y[:, None] * (rng.random(16) > 0.5)
    assert A.logme(signal, y) > A.logme(noise, y)
    assert A.logme(signal, y) == pytest.approx((A.logme_fit(signal, y)[0] + A.logme_fit(signal, 1 - y)[0]) / 2)
    y2 = np.stack([y, (rng.random(200) < 0.5).astype(float)], 1)
    assert A.logme(signal, y2) == pytest.approx((A.logme(signal, y2[:, 0]) + A.logme(signal, y2[:, 1])) / 2)


# --- probe ---------------------------------------------------------------------------------------


def test_probe_matches_scikit_learn_cross_validation():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    f, y = _data(150, 10, seed=3)
    f = f + np.random.default_rng(4).normal(scale=1.0, size=f.shape)  # not perfectly separable
    au, ap = A.probe(f, y, folds=5, seed=7)
    clf = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=500))
    cv = StratifiedKFold(5, shuffle=True, random_state=7)
    ref = cross_validate(clf, f, y.astype(int), cv=cv, scoring=("roc_auc", "average_precision"))
    assert au == pytest.approx(ref["test_roc_auc"].mean(), abs=1e-9)
    assert ap == pytest.approx(ref["test_average_precision"].mean(), abs=1e-9)
    assert 0.6 < au < 1


def test_probe_skips_a_label_with_too_few_positives():
    f, y = _data(50, 4)
    y2 = np.stack([y, np.eye(50)[0]], 1)  # the second label has one positive
    assert A.probe(f, y2, 3) == pytest.approx(A.probe(f, y, 3))
    assert np.isnan(A.probe(f, np.eye(50)[0], 3)[0])


def test_rank_orders_by_the_mean_percentile_rank():
    rows = [
        A.CutScore("a", "block", 8, -0.6, 0.7, 0.40, 0.0),
        A.CutScore("b", "block", 8, -0.5, 0.8, 0.50, 0.0),
        A.CutScore("c", "block", 8, -0.7, 0.6, 0.45, 0.0),
    ]
    out = A.rank(rows)
    assert [r.cut for r in out] == ["b", "c", "a"]  # b: 1.0; a and c tie at 0.25, c has the higher AUPRC
    assert [r.rank for r in out] == [1, 2, 3] and out[0].score == 1.0


# --- features at every cut -----------------------------------------------------------------------


def _random_source(tmp_path, backbone):
    torch.manual_seed(0)
    model = registry.get_spec(backbone).builder()
    for m in model.modules():  # BatchNorm statistics that are not the identity, as in a trained net
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / f"{backbone}.pt"
    torch.save(model.state_dict(), path)
    return f"file:{path}"


@pytest.mark.parametrize(
    "backbone, size, cuts",
    [
        ("resnet18", 32, ["stem", "layer1.0", "layer2", "layer4"]),
        (
            "densenet121",
            32,
            ["features.denseblock1.denselayer3", "features.denseblock1", "full"],
        ),
        ("cbr_tiny", 96, ["cbr1", "cbr2", "full"]),
        ("convnext_tiny", 32, ["stem", "features.3.1", "full"]),
        ("vit_b_16", 32, ["encoder.layers.encoder_layer_0", "full"]),  # the class token after each block
    ],
)
@pytest.mark.slow
def test_hooked_features_equal_the_truncated_networks(tmp_path, backbone, size, cuts):
    init = _random_source(tmp_path, backbone)
    images = np.random.default_rng(0).integers(0, 256, (6, 1, size, size), dtype=np.uint8)
    full = build(ModelConfig(backbone, "finetune", "full", init), size)
    points = [registry.get_cut(backbone, c) for c in cuts]
    feats = A.cut_features(full, backbone, points, images, batch_size=4)
    assert not any(m._forward_hooks for m in full.modules())  # hooks are released
    x = torch.from_numpy(images).float() / 255
    for p in points:
        net = build(ModelConfig(backbone, "truncate", p.name, init), size).eval()
        with torch.no_grad():
            ref = net.pool(net.features(x)).numpy()
        assert feats[p.name].shape == (6, p.channels)
        np.testing.assert_allclose(feats[p.name], ref, rtol=1e-4, atol=1e-5, err_msg=p.name)


def test_select_cuts_one_per_stage():
    block = [p.name for p in A.select_cuts("resnet18")]
    assert block == ["stem", "layer1", "layer2", "layer3", "full"]  # layer4 is the full network: one name
    layer = [p.name for p in A.select_cuts("resnet18", "layer")]
    assert layer == ["stem", "layer1.0", "layer1", "layer2.0", "layer2", "layer3.0", "layer3", "layer4.0", "full"]
    assert [p.name for p in A.select_cuts("densenet121")][-2:] == ["features.denseblock4", "full"]
    with pytest.raises(ValueError, match="level must be one of block, layer"):
        A.select_cuts("resnet18", "stage")


# --- command line --------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_json(tmp_path, capsys):
    init = _random_source(tmp_path, "resnet18")
    args = ["advise", "--init", init, "--n-images", "160", "--image-size", "32", "--n", "80", "--folds", "3"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"backbone", "init", "target", "n", "level", "score", "forward_seconds", "seconds", "cuts"} <= set(out)
    assert out["n"] == 80 and out["target"] == "nodule" and out["level"] == "block"
    assert [c["rank"] for c in out["cuts"]] == [1, 2, 3, 4, 5]
    assert sorted(c["cut"] for c in out["cuts"]) == ["full", "layer1", "layer2", "layer3", "stem"]
    for c in out["cuts"]:
        assert set(c) == {"cut", "level", "channels", "logme", "probe_auroc", "probe_auprc", "seconds", "score", "rank"}
        assert np.isfinite(c["logme"]) and 0 <= c["probe_auroc"] <= 1 and 0 < c["probe_auprc"] <= 1
    assert main(args) == 0
    assert "ranked by" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, match",
    [
        (["--init", "random"], "init 'random' has nothing pretrained"),
        (["--init", "file:/x.pt", "--backbone", "foo"], "Unknown backbone 'foo'"),
        (["--init", "imagenet"], "--download resnet18"),
        (["--init", "file:/nonexistent.pt", "--n-images", "40"], "/nonexistent.pt does not exist"),
        (["--init", "file:/x.pt", "--level", "block", "--n", "5"], "n must be at least 20"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(args, match, capsys):
    assert main(["advise", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1 and "Traceback" not in err
