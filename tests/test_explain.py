"""Grad-CAM on runs (medtl/explain.py): a training model is explained on an eval copy, scores of an
explanation, and ``python -m medtl explain``."""

import numpy as np
import pytest
import torch

from medtl import explain, train
from medtl.cli import main
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.models import build
from medtl.runs import RunStore


@pytest.mark.slow
def test_training_model_untouched(tmp_path):
    """Handed the training model itself (train mode), explain works on an eval copy: the maps are
    those of the fresh copy loaded from model.pt, and the training model's mode, BatchNorm
    statistics and gradients are unchanged, with no hooks left."""
    store = RunStore(tmp_path)
    cfg = RunConfig(
        DataConfig(n_images=120, image_size=32),
        ModelConfig("resnet18", "truncate", "layer1", "random"),
        TrainConfig(epochs=1, batch_size=16, bootstrap=20),
    )
    rid = store.create(cfg)
    assert train.run(cfg, store, rid)["state"] == "done"
    fresh = explain.load_model(store, rid)
    training_model = build(cfg.model, 32).train()
    training_model.load_state_dict(torch.load(store.path(rid) / "model.pt", weights_only=True)["state_dict"])
    before = {k: v.clone() for k, v in training_model.state_dict().items()}
    assert fresh is not training_model and not fresh.training
    from medtl.data import load

    data = load(cfg.data)
    idx = data.splits["test"][:4]
    e = explain.explain(training_model, data, idx)
    assert e.maps.shape == (4, 32, 32)
    np.testing.assert_allclose(e.maps, explain.explain(fresh, data, idx).maps, rtol=1e-4, atol=1e-6)
    assert training_model.training and all(m.training for m in training_model.modules())
    for k, v in training_model.state_dict().items():
        assert torch.equal(before[k], v), k
    assert all(p.grad is None for p in training_model.parameters())
    for model in (fresh, training_model):
        for mod in model.modules():
            assert not mod._forward_hooks and not mod._backward_hooks


def _explanation(masks: np.ndarray, native: np.ndarray) -> explain.Explanation:
    n = len(masks)
    maps = np.kron(native, np.ones((1, 4, 4)))  # upsampled by 4 (nearest: enough here)
    return explain.Explanation(
        np.arange(n), np.zeros((n, 1, 16, 16), np.uint8), maps, np.zeros(n), np.ones(n), masks, native
    )


def test_scores_point_on_the_native_maps_over_images_with_a_lesion():
    masks = np.zeros((3, 16, 16), bool)
    masks[0, 4:8, 4:8] = True  # the cell (1, 1) of a 4x4 map, centre (6, 6)
    masks[1, 0, 15] = True  # a corner pixel: out of reach of every cell centre at tolerance 1
    native = np.zeros((3, 4, 4))
    native[:, 1, 1] = 1
    s = explain.scores(_explanation(masks, native), tolerance=1)
    assert s["n"] == 2  # the third image has no lesion
    assert s["pointing_game"] == 0.5 and s["pointing_game_ceiling"] == 0.5
    assert s["pointing_game_chance"] == s["pointing_game_random"] == pytest.approx((1 / 16 + 0) / 2)
    assert s["energy_in_mask"] == pytest.approx(0.5) and s["energy_in_mask_chance"] == pytest.approx((16 + 1) / 2 / 256)
    assert explain.scores(_explanation(np.zeros((2, 16, 16), bool), native[:2])) == {"n": 0}
    e = _explanation(masks, native)
    e.masks = None
    assert explain.scores(e) == {"n": 0}


@pytest.mark.slow
def test_overlay_png_and_cli(tmp_path, capsys):
    store = RunStore(tmp_path / "runs")
    cfg = RunConfig(
        DataConfig(n_images=160, image_size=32),
        ModelConfig("resnet18", "truncate", "layer2", "random"),
        TrainConfig(epochs=1, batch_size=16, bootstrap=20),
    )
    rid = store.create(cfg)
    train.run(cfg, store, rid)
    out = tmp_path / "maps"
    assert main(["explain", rid, "--n", "4", "--out", str(out), "--runs-dir", str(store.root), "--json"]) == 0
    import json

    r = json.loads(capsys.readouterr().out)
    for key in ("pointing_game_chance", "energy_in_mask_chance", "pointing_game_random", "energy_in_mask_random"):
        assert 0 < r[key] < 1
    assert r["layer"] == "layer2" and r["map_size"] == [4, 4] and r["contrast"] is True  # the default, as on the page
    assert 0 < r["n"] <= 4 and len(list(out.glob("*.png"))) == r["n"]
    assert (
        main(["explain", rid, "--n", "4", "--layer", "layer1", "--contrast", "--runs-dir", str(store.root), "--json"])
        == 0
    )
    r = json.loads(capsys.readouterr().out)
    assert (
        r["contrast"] is True
        and r["layer"] == "layer1"
        and r["map_size"] == [8, 8]
        and 0 <= r["pointing_game"] <= r["pointing_game_ceiling"]
    )
    assert main(["explain", rid, "--n", "4", "--plain", "--no-sanity", "--runs-dir", str(store.root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["contrast"] is False
    with pytest.raises(SystemExit):  # argparse: one or the other
        main(["explain", rid, "--plain", "--contrast", "--runs-dir", str(store.root)])
    assert "not allowed with" in capsys.readouterr().err
    assert main(["explain", rid, "--layer", "layer4", "--runs-dir", str(store.root)]) == 2
    assert "layer4" in capsys.readouterr().err
    assert main(["explain", "nope-123", "--runs-dir", str(store.root)]) == 2
    assert "No run 'nope-123'" in capsys.readouterr().err
