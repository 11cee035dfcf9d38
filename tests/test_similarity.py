import itertools
import json

import numpy as np
import pytest
import torch

from medtl import similarity, train
from medtl.cli import main
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.explain import load_model
from medtl.plots import cka_figure
from medtl.runs import RunStore


def _hsic_by_loops(k: np.ndarray, l: np.ndarray) -> float:  # noqa: E741
    """Song et al. (2012), eq. 5: the U-statistic over ordered 4-tuples of distinct indices."""
    n = len(k)
    total = 0.0
    for i, j, q, r in itertools.permutations(range(n), 4):
        total += k[i, j] * l[i, j] + k[i, j] * l[q, r] - 2 * k[i, j] * l[i, q]
    return total / (n * (n - 1) * (n - 2) * (n - 3))


def test_unbiased_hsic_and_cka_match_direct_computation():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 5)), rng.normal(size=(7, 3))
    y[:, 0] += x[:, 0]
    k, l = x @ x.T, y @ y.T  # noqa: E741
    assert similarity.hsic_unbiased(k, l) == pytest.approx(_hsic_by_loops(k, l), rel=1e-10)
    direct = _hsic_by_loops(k, l) / np.sqrt(_hsic_by_loops(k, k) * _hsic_by_loops(l, l))
    assert similarity.cka(x, y) == pytest.approx(direct, rel=1e-9)


def test_cka_identity_orthogonal_and_scale_invariance():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 12))
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    y = np.tanh(x @ rng.normal(size=(12, 8)))
    assert similarity.cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert similarity.cka(x, x @ q) == pytest.approx(1.0, abs=1e-10)
    assert similarity.cka(x, 3.7 * x) == pytest.approx(1.0, abs=1e-10)
    base = similarity.cka(x, y)
    assert 0 < base < 1
    assert similarity.cka(x @ q * 0.2, y) == pytest.approx(base, abs=1e-10)
    assert similarity.cka(x.reshape(40, 3, 2, 2), y) == pytest.approx(base)  # maps are flattened
    with pytest.raises(ValueError, match="same images"):
        similarity.cka(x, y[:10])
    with pytest.raises(ValueError, match="at least 4"):
        similarity.cka(x[:3], y[:3])


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory):
    """A linear probe from random init: the backbone is frozen (BatchNorm in eval), so the trained
    backbone is the initial one, exactly when the initialisation is rebuilt as the trainer seeds it."""
    store = RunStore(tmp_path_factory.mktemp("runs"))
    cfg = RunConfig(
        DataConfig(n_images=120, image_size=32),
        ModelConfig("resnet18", "linear", "layer2", "random"),
        TrainConfig(epochs=1, batch_size=16, bootstrap=20, seed=3),
    )
    rid = store.create(cfg)
    assert train.run(cfg, store, rid)["state"] == "done"
    return store, rid


@pytest.mark.slow
def test_initial_model_is_the_trainers_initialisation(linear_run):
    store, rid = linear_run
    init, trained = similarity.initial_model(store, rid), load_model(store, rid)
    for k, v in trained.backbone.state_dict().items():
        assert torch.equal(init.backbone.state_dict()[k], v), k
    other = similarity.random_model(store, rid)
    assert not torch.equal(other.backbone.conv1.weight, init.backbone.conv1.weight)


@pytest.mark.slow
def test_similarity_cli_and_figure(linear_run, capsys):
    store, rid = linear_run
    assert main(["similarity", rid, "--n", "12", "--features", "gap", "--json", "--runs-dir", str(store.root)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["stages"] == ["stem", "layer1", "layer2"] and r["n"] == 12 and r["features"] == "gap"
    assert r["cka_initial"] == pytest.approx([1.0] * 3, abs=1e-6)  # the frozen backbone did not move
    assert all(c < 0.999 for c in r["cka_random"])
    fig = cka_figure({"probe": r})
    assert len(fig.data) == 2 and list(fig.data[0].x) == r["stages"]
    assert main(["similarity", rid, "--n", "2", "--runs-dir", str(store.root)]) == 2
    assert "at least 4" in capsys.readouterr().err
