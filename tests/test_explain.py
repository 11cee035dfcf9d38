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
    ("convnext_tiny", "truncate", "features.3", 64),
    ("vit_b_16", "truncate", "encoder.layers.encoder_layer_2", 32),  # the patch tokens on their grid
    ("vit_b_16", "freeze", "encoder.layers.encoder_layer_0", 32),  # the full ViT: read at the last block's input
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


def test_scores_perfect_wrong_and_empty_maps():
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


def test_tolerance_disc_is_torchrays():
    """One lesion pixel, 15 px: TorchRay's ``(dy**2 + dx**2) < 15**2`` accepts 697 pixels (an L1
    diamond, as binary_dilation gives, would accept 481)."""
    mask = np.zeros((64, 64), bool)
    mask[32, 32] = True
    assert explain.tolerance_region(mask, 15).sum() == 697


def _region_by_enumeration(mask: np.ndarray, tol: float) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    out = np.zeros_like(mask)
    for y in range(mask.shape[0]):
        for x in range(mask.shape[1]):
            out[y, x] = mask[y, x] or bool(np.any((ys - y) ** 2 + (xs - x) ** 2 < tol**2))
    return out


def test_pointing_game_and_chance_match_direct_computations():
    rng = np.random.default_rng(0)
    masks = np.zeros((5, 24, 24), bool)
    for k in masks:  # a blob and a stray pixel, anywhere (also at the border)
        y, x = rng.integers(0, 24, 2)
        k[max(0, y - 2) : y + 2, max(0, x - 1) : x + 3] = True
        k[tuple(rng.integers(0, 24, 2))] = True
    tol = 3.5
    for k in masks:
        np.testing.assert_array_equal(explain.tolerance_region(k, tol), _region_by_enumeration(k, tol))
    # chance = the mean hit rate over all maps whose maximum is each pixel (a uniform random map's argmax)
    chance = explain.pointing_game_chance(masks, tol)["chance"]
    for k, c in zip(masks, chance, strict=True):
        region = _region_by_enumeration(k, tol)
        hits = []
        for y in range(24):
            for x in range(24):
                one_hot = np.zeros((1, 24, 24))
                one_hot[0, y, x] = 1
                hits.append(explain.pointing_game(one_hot, k[None], tol)[0])
        assert c == pytest.approx(np.mean(hits)) == pytest.approx(region.mean())
    # a coarse 4x6 map points at its cells' centres: chance and ceiling by enumerating its cells
    res = explain.pointing_game_chance(masks, tol, (4, 6))
    for k, c, ceil in zip(masks, res["chance"], res["ceiling"], strict=True):
        hits = []
        for y in range(4):
            for x in range(6):
                m = np.zeros((1, 4, 6))
                m[0, y, x] = 1
                hits.append(explain.pointing_game(m, k[None], tol)[0])
                assert hits[-1] == _region_by_enumeration(k, tol)[int((y + 0.5) * 6), int((x + 0.5) * 4)]
        assert c == pytest.approx(np.mean(hits)) and ceil == max(hits)
    # energy: a map with exchangeable values puts in expectation the mask's area fraction inside it
    np.testing.assert_allclose(explain.energy_in_mask_chance(masks), masks.mean(axis=(1, 2)))
    draws = np.mean([explain.energy_in_mask(rng.random(masks.shape), masks) for _ in range(400)], axis=0)
    np.testing.assert_allclose(draws, masks.mean(axis=(1, 2)), rtol=0.1)


def test_edge_cell_peak_points_at_the_cell_not_the_corner():
    """Upsampled bilinearly, a peak in a corner cell is a plateau up to the border whose first
    pixel is the image corner; the native map points at the cell's centre."""
    native = np.zeros((1, 4, 4))
    native[0, 0, 0] = 1
    up = explain.upsample(native, (64, 64))
    assert np.unravel_index(up[0].argmax(), (64, 64)) == (0, 0)
    mask = np.zeros((1, 64, 64), bool)
    mask[0, 6:10, 6:10] = True  # a lesion around the corner cell's centre (8, 8)
    assert explain.pointing_game(up, mask, tolerance=4)[0] == 0
    assert explain.pointing_game(native, mask, tolerance=4)[0] == 1


def test_feature_module_resolves_cuts_to_their_maps():
    cfg = ModelConfig("resnet18", "truncate", "layer3", "random")
    m = _eval_copy(cfg, 64)
    assert explain.gradcam_layers(cfg) == ["stem", "layer1", "layer2", "layer3"]
    x = torch.rand(2, 1, 64, 64)
    for cut in ("stem", "layer1", "layer2", "layer2.0", "layer3"):
        out = []
        h = explain.feature_module(m, cfg, cut).register_forward_hook(lambda _m, _i, o, out=out: out.append(o))
        m(x)
        h.remove()
        from medtl.models import get_cut

        p = get_cut("resnet18", cut)
        assert out[0].shape == (2, p.channels, 64 // p.reduction, 64 // p.reduction), cut
    assert explain.feature_module(m, cfg, None) is m.last_conv_layer
    with pytest.raises(ValueError, match="above what this network keeps"):
        explain.feature_module(m, cfg, "layer4")
    dcfg = ModelConfig("densenet121", "truncate", "features.transition2", "random")
    d = _eval_copy(dcfg, 64)
    assert explain.gradcam_native(
        d, torch.rand(1, 1, 64, 64), explain.feature_module(d, dcfg, "features.denseblock1")
    ).shape == (1, 16, 16)
    with pytest.raises(ValueError, match="keeps whole: no module outputs its feature map"):
        explain.feature_module(d, dcfg, "features.denseblock2.denselayer3")


def test_contrastive_maps_subtract_the_reference_before_the_relu():
    m = _eval_copy(ModelConfig("resnet18", "truncate", "layer2", "random"), 48)
    x, ref_images = torch.rand(3, 1, 48, 48), torch.rand(5, 1, 48, 48)
    signed = explain.gradcam_native(m, x, signed=True)
    assert (signed < 0).any() and np.array_equal(explain.gradcam_native(m, x), np.clip(signed, 0, None))
    ref = explain.reference_map(m, ref_images)
    np.testing.assert_allclose(ref, explain.gradcam_native(m, ref_images, signed=True).mean(0))
    np.testing.assert_allclose(explain.gradcam_native(m, x, reference=ref), np.clip(signed - ref, 0, None), atol=1e-7)


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
