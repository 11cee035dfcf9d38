import numpy as np
import pytest
import torch
from torch import nn

from medtl import explain, train
from medtl.cli import main
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.models import build
from medtl.runs import RunStore


def _eval_copy(cfg: ModelConfig, size: int):
    torch.manual_seed(0)
    m = build(cfg, size).eval()
    for mod in m.modules():
        if isinstance(mod, nn.ReLU):
            mod.inplace = False
    return m


CASES = [
    ("resnet18", "truncate", "layer2", 64),
    ("resnet18", "truncate", "layer3.0", 64),
    ("resnet50", "finetune", "full", 64),
    ("densenet121", "truncate", "features.transition2", 64),
    ("densenet121", "truncate", "features.denseblock2.denselayer4", 64),
    ("densenet121", "finetune", "full", 64),
    ("cbr_tiny", "truncate", "cbr2", 64),
    ("cbr_small", "finetune", "full", 121),
]


@pytest.mark.parametrize("backbone, strategy, cut, size", CASES)
def test_shapes_every_backbone_and_cut_kind(backbone, strategy, cut, size):
    m = _eval_copy(ModelConfig(backbone, strategy, cut, "random"), size)
    maps = explain.gradcam(m, torch.rand(3, 1, size, size))
    assert maps.shape == (3, size, size) and (maps >= 0).all()


def test_batched_equals_single_and_hooks_released():
    m = _eval_copy(ModelConfig("resnet18", "truncate", "layer2", "random"), 48)
    x = torch.rand(5, 1, 48, 48)
    batched = explain.gradcam(m, x, batch_size=5)
    single = np.concatenate([explain.gradcam(m, x[i : i + 1]) for i in range(5)])
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-6)
    for mod in m.modules():
        assert not mod._forward_hooks and not mod._forward_pre_hooks and not mod._backward_hooks
        assert not getattr(mod, "_backward_pre_hooks", {})
    assert all(p.grad is None for p in m.parameters())


def test_training_model_untouched(tmp_path):
    """Grad-CAM loads a fresh copy from model.pt: the training model's BatchNorm statistics and
    mode are unchanged."""
    store = RunStore(tmp_path)
    cfg = RunConfig(
        DataConfig(n_images=120, image_size=32),
        ModelConfig("resnet18", "truncate", "layer1", "random"),
        TrainConfig(epochs=1, batch_size=16, bootstrap=20),
    )
    rid = store.create(cfg)
    assert train.run(cfg, store, rid)["state"] == "done"
    training_model = build(cfg.model, 32).train()
    training_model.load_state_dict(torch.load(store.path(rid) / "model.pt", weights_only=True)["state_dict"])
    before = {k: v.clone() for k, v in training_model.state_dict().items()}
    fresh = explain.load_model(store, rid)
    assert fresh is not training_model and not fresh.training
    from medtl.data import load

    data = load(cfg.data)
    e = explain.explain(fresh, data, data.splits["test"][:4])
    assert e.maps.shape == (4, 32, 32)
    assert training_model.training
    for k, v in training_model.state_dict().items():
        assert torch.equal(before[k], v), k
    for mod in fresh.modules():
        assert not mod._forward_hooks and not mod._backward_hooks


def test_scores_and_chance_level():
    masks = np.zeros((4, 20, 20), bool)
    masks[:, 5:8, 5:8] = True
    perfect = masks.astype(float)
    assert explain.pointing_game(perfect, masks, tolerance=0).mean() == 1
    assert explain.energy_in_mask(perfect, masks).mean() == 1
    wrong = np.zeros((4, 20, 20))
    wrong[:, 15, 15] = 1
    assert explain.pointing_game(wrong, masks, tolerance=2).mean() == 0
    zero = np.zeros((4, 20, 20))
    assert explain.pointing_game(zero, masks).mean() == 0 and explain.energy_in_mask(zero, masks).mean() == 0
    chance = explain.random_baseline(masks, tolerance=0)
    assert chance["energy_in_mask"] == pytest.approx(9 / 400, rel=0.15)


def test_randomised_weights_change_the_maps():
    m = _eval_copy(ModelConfig("resnet18", "truncate", "layer2", "random"), 48)
    x = torch.rand(4, 1, 48, 48)
    maps = explain.gradcam(m, x)
    assert explain.randomization_check(m, x, maps) < 0.99
    before = {k: v.clone() for k, v in m.state_dict().items()}
    explain.randomized_copy(m)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())  # the original is left alone


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
    for key in ("pointing_game", "pointing_game_random", "energy_in_mask", "energy_in_mask_random", "n"):
        assert key in r
    assert 0 < r["n"] <= 4 and len(list(out.glob("*.png"))) == r["n"]
    assert main(["explain", "nope-123", "--runs-dir", str(store.root)]) == 2
    assert "No run 'nope-123'" in capsys.readouterr().err
