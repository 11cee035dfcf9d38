"""Grad-CAM maps (medtl/cam.py): every backbone and cut kind, batching, hooks released, layers by
cut, contrastive maps, the randomised-weights check, eval copies."""

import numpy as np
import pytest
import torch

from medtl import cam
from medtl.config import ModelConfig
from medtl.models import build


def _eval_copy(cfg: ModelConfig, size: int):
    torch.manual_seed(0)
    return cam.ready(build(cfg, size))


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


@pytest.mark.slow
@pytest.mark.parametrize("backbone, strategy, cut, size", CASES)
def test_shapes_every_backbone_and_cut_kind(backbone, strategy, cut, size):
    m = _eval_copy(ModelConfig(backbone, strategy, cut, "random"), size)
    maps = cam.gradcam(m, torch.rand(3, 1, size, size))
    assert maps.shape == (3, size, size) and (maps >= 0).all()


def test_batched_equals_single_and_hooks_released():
    m = _eval_copy(ModelConfig("resnet18", "truncate", "layer2", "random"), 48)
    x = torch.rand(5, 1, 48, 48)
    batched = cam.gradcam(m, x, batch_size=5)
    single = np.concatenate([cam.gradcam(m, x[i : i + 1]) for i in range(5)])
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-6)
    for mod in m.modules():
        assert not mod._forward_hooks and not mod._forward_pre_hooks and not mod._backward_hooks
        assert not getattr(mod, "_backward_pre_hooks", {})
    assert all(p.grad is None for p in m.parameters())


def test_feature_module_resolves_cuts_to_their_maps():
    cfg = ModelConfig("resnet18", "truncate", "layer3", "random")
    m = _eval_copy(cfg, 64)
    assert cam.gradcam_layers(cfg) == ["stem", "layer1", "layer2", "layer3"]
    x = torch.rand(2, 1, 64, 64)
    for cut in ("stem", "layer1", "layer2", "layer2.0", "layer3"):
        out = []
        h = cam.feature_module(m, cfg, cut).register_forward_hook(lambda _m, _i, o, out=out: out.append(o))
        m(x)
        h.remove()
        from medtl.models import get_cut

        p = get_cut("resnet18", cut)
        assert out[0].shape == (2, p.channels, 64 // p.reduction, 64 // p.reduction), cut
    assert cam.feature_module(m, cfg, None) is m.last_conv_layer
    with pytest.raises(ValueError, match="above what this network keeps"):
        cam.feature_module(m, cfg, "layer4")
    dcfg = ModelConfig("densenet121", "truncate", "features.transition2", "random")
    d = _eval_copy(dcfg, 64)
    assert cam.gradcam_native(
        d, torch.rand(1, 1, 64, 64), cam.feature_module(d, dcfg, "features.denseblock1")
    ).shape == (1, 16, 16)
    with pytest.raises(ValueError, match="keeps whole: no module outputs its feature map"):
        cam.feature_module(d, dcfg, "features.denseblock2.denselayer3")


def test_contrastive_maps_subtract_the_reference_before_the_relu():
    m = _eval_copy(ModelConfig("resnet18", "truncate", "layer2", "random"), 48)
    x, ref_images = torch.rand(3, 1, 48, 48), torch.rand(5, 1, 48, 48)
    signed = cam.gradcam_native(m, x, signed=True)
    assert (signed < 0).any() and np.array_equal(cam.gradcam_native(m, x), np.clip(signed, 0, None))
    ref = cam.reference_map(m, ref_images)
    np.testing.assert_allclose(ref, cam.gradcam_native(m, ref_images, signed=True).mean(0))
    np.testing.assert_allclose(cam.gradcam_native(m, x, reference=ref), np.clip(signed - ref, 0, None), atol=1e-7)


def test_randomised_weights_change_the_maps():
    m = _eval_copy(ModelConfig("resnet18", "truncate", "layer2", "random"), 48)
    x = torch.rand(4, 1, 48, 48)
    maps = cam.gradcam(m, x)
    assert cam.randomization_check(m, x, maps) < 0.99
    before = {k: v.clone() for k, v in m.state_dict().items()}
    cam.randomized_copy(m)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())  # the original is left alone


def test_eval_copy_leaves_a_training_model_alone():
    m = build(ModelConfig("resnet18", "truncate", "layer1", "random"), 32).train()
    copy = cam.eval_copy(m)
    assert copy is not m and not copy.training and m.training
    assert any(isinstance(x, torch.nn.ReLU) and x.inplace for x in m.modules())  # the original's ReLUs as they were
    assert not any(isinstance(x, torch.nn.ReLU) and x.inplace for x in copy.modules())
    assert cam.eval_copy(copy) is copy  # ready already: no second copy
