import json

import pytest
import torch
import torchvision

from medtl.cli import main
from medtl.config import STRATEGIES, ModelConfig
from medtl.models import build, cbr, param_groups, registry, weights
from medtl.models.profile import cut_table, macs, profile

BACKBONES = list(registry.BACKBONES)


def _size(backbone: str) -> int:
    return max(64, registry.min_input_size(backbone))


@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_published_cut_matches_a_dry_forward(backbone):
    """Channels and reduction of every cut point, checked by running the truncated network."""
    torch.manual_seed(0)
    full = registry.get_spec(backbone).builder()
    size = registry.min_input_size(backbone) if backbone.startswith("cbr") else 32
    x = torch.rand(2, 3, size, size)
    for point in registry.cut_points(backbone):
        if size < registry.min_input_size(backbone, point.name):
            continue
        net = registry.truncate(full, point.stage)
        y = net(x)
        assert y.shape[1] == point.channels, point
        expected = (
            cbr.output_size(backbone, size, point.stage + 1) if backbone.startswith("cbr") else size // point.reduction
        )
        assert y.shape[-1] == expected, point
        y.mean().backward()  # every cut trains
    # Names are torchvision's: a truncated state dict is a subset of the full one.
    assert set(registry.truncate(full, registry.cut_points(backbone)[1].stage).state_dict()) <= set(full.state_dict())


def _representative_cuts(backbone):
    pts = [p for p in registry.cut_points(backbone) if p.name != "full"]
    layer = [p for p in pts if p.level == "layer"]
    chosen = {pts[0].name, pts[len(pts) // 2].name, pts[-1].name}
    if layer:
        chosen.add(layer[len(layer) // 3].name)
    return sorted(chosen)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_strategy_builds_and_trains(backbone, strategy):
    size = _size(backbone)
    cuts = (
        ["full"]
        if strategy == "finetune"
        else _representative_cuts(backbone) + (["full"] if strategy in ("truncate", "linear") else [])
    )
    for cut in cuts:
        if strategy in ("truncate", "linear") and size < registry.min_input_size(backbone, cut):
            continue
        cfg = ModelConfig(backbone, strategy, cut, "random")
        model = build(cfg, image_size=size)
        model.train()
        out = model(torch.rand(2, 1, size, size))
        assert out.shape == (2, 1)
        out.sum().backward()
        groups = param_groups(model, 1e-3)
        trainable = sum(p.numel() for g in groups for p in g["params"])
        assert trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
        head = sum(p.numel() for p in model.head.parameters())
        all_frozen = (
            strategy == "freeze" and registry.get_cut(backbone, cut).stage == registry.get_cut(backbone, "full").stage
        )
        if strategy == "linear" or all_frozen:
            assert trainable == head
        else:
            assert trainable > head


def test_resnet50_published_ttl_sizes():
    bb = lambda cut: sum(
        p.numel() for p in build(ModelConfig("resnet50", "truncate", cut, "random")).backbone.parameters()
    )
    assert bb("layer3") == 8_543_296  # TTL-1: stem + layer1-3
    assert bb("layer3.3") == 6_308_928  # TTL-2: stem + 11 bottlenecks
    full = build(ModelConfig("resnet50", "finetune", "full", "random"), 224, in_channels=3)
    assert macs(full, 224, 3) == pytest.approx(4.1e9, rel=0.01)


def test_cut_table_agrees_with_built_models():
    rows = {r["name"]: r for r in cut_table("resnet18", 64)}
    for cut in ("stem", "layer2", "layer3.0", "full"):
        strategy = "finetune" if cut == "full" else "truncate"
        m = build(ModelConfig("resnet18", strategy, cut, "random"), 64, in_channels=3)
        assert rows[cut]["params"] == sum(p.numel() for p in m.parameters())
        assert rows[cut]["macs"] == macs(m, 64, 3)


def test_truncated_models_are_smaller_and_faster():
    small = profile(build(ModelConfig("resnet50", "truncate", "layer2", "random"), 64), 64, batches=(8,), min_time=0.2)
    big = profile(build(ModelConfig("resnet50", "finetune", "full", "random"), 64), 64, batches=(8,), min_time=0.2)
    assert small["params"] < big["params"] / 10
    assert small["macs"] < big["macs"] / 2
    assert small["latency_ms_b8"] < big["latency_ms_b8"]  # single-threaded medians: stable enough to order


def test_cbr_minimum_sizes_and_error():
    assert [cbr.min_input_size(n) for n in ("cbr_large_t", "cbr_large_w", "cbr_small", "cbr_tiny")] == [
        217,
        121,
        121,
        91,
    ]
    with pytest.raises(ValueError, match="at least 91 px"):
        build(ModelConfig("cbr_tiny", "finetune", "full", "random"), image_size=64)
    build(ModelConfig("cbr_tiny", "truncate", "cbr2", "random"), image_size=64)  # a shallower cut fits


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"backbone": "vgg16"}, "Valid backbones: resnet18"),
        ({"cut": "layer9"}, "Unknown cut 'layer9'"),
        ({"strategy": "magic"}, "strategy must be one of"),
        ({"strategy": "finetune", "cut": "layer2"}, "cut must be 'full'"),
        ({"strategy": "freeze", "cut": "full"}, "needs a cut below"),
        ({"init": "imagenet", "backbone": "cbr_tiny", "cut": "cbr2"}, "no ImageNet weights"),
        ({"init": "web"}, "init must be"),
        ({"slim": True}, "slim=True"),
    ],
)
def test_config_validation_messages(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(**kwargs)


def test_config_json_round_trip():
    cfg = ModelConfig("densenet121", "freeze", "features.transition2", "random", dropout=0.2)
    assert ModelConfig.from_dict(json.loads(cfg.to_json())) == cfg
    with pytest.raises(ValueError, match="Unknown ModelConfig field"):
        ModelConfig.from_dict({"backbone": "resnet18", "depth": 3})


# --- initialisation ------------------------------------------------------------------------------


def _write_fake_imagenet(tmp_path, monkeypatch, backbone="resnet18"):
    """A random state dict saved under the torchvision file-name pattern with its true hash."""
    import hashlib

    torch.manual_seed(123)
    sd = torchvision.models.get_model(backbone, weights=None).state_dict()
    tmp = tmp_path / "sd.pth"
    torch.save(sd, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
    w = weights.weights_enum(backbone)
    monkeypatch.setattr(w.value, "url", f"https://example.invalid/models/{backbone}-{digest}.pth")
    dest = weights.cached_file(backbone)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(dest)
    return sd


def test_imagenet_init_loads_the_cached_file(tmp_path, monkeypatch):
    sd = _write_fake_imagenet(tmp_path, monkeypatch)
    assert weights.weights_status("resnet18")["available"]
    m = build(ModelConfig("resnet18", "truncate", "layer2", "imagenet"), 64)
    assert torch.equal(m.backbone.state_dict()["layer2.1.conv2.weight"], sd["layer2.1.conv2.weight"])
    assert torch.equal(m.adapter.mean.flatten(), torch.tensor((0.485, 0.456, 0.406)))


def test_imagenet_wrong_hash_is_refused():
    dest = weights.cached_file("resnet18")  # the real name, resnet18-f37072fd.pth
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save(torchvision.models.resnet18().state_dict(), dest)
    with pytest.raises(ValueError, match="SHA-256 prefix"):
        build(ModelConfig("resnet18", "truncate", "layer2", "imagenet"), 64)


def test_imagenet_absent_offline_fails_fast_with_the_way_forward():
    import time

    t = time.perf_counter()
    with pytest.raises(FileNotFoundError) as e:
        build(ModelConfig("resnet50", "truncate", "layer3", "imagenet"), 64)
    assert time.perf_counter() - t < 30  # no network attempt, no hang
    msg = str(e.value)
    assert "resnet50-" in msg and "checkpoints" in msg and "--download resnet50" in msg and "random" in msg


def test_file_init_and_mismatch_listing(tmp_path):
    src = build(ModelConfig("resnet18", "truncate", "layer3", "random"), 64)
    path = tmp_path / "src.pt"
    torch.save(src.state_dict(), path)  # a MedTL model: its backbone.* keys are used
    m = build(ModelConfig("resnet18", "truncate", "layer2", f"file:{path}"), 64)
    assert torch.equal(
        m.backbone.state_dict()["layer2.0.conv1.weight"], src.backbone.state_dict()["layer2.0.conv1.weight"]
    )
    with pytest.raises(ValueError, match=r"missing in source .*layer4"):
        build(ModelConfig("resnet18", "truncate", "layer4", f"file:{path}"), 64)
    torch.save(torchvision.models.resnet50().state_dict(), path)
    with pytest.raises(ValueError, match="shape mismatch"):
        build(ModelConfig("resnet18", "truncate", "layer2", f"file:{path}"), 64)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build(ModelConfig("resnet18", "truncate", "layer2", f"file:{tmp_path / 'nope.pt'}"), 64)


# --- strategies' semantics -----------------------------------------------------------------------


def _step(model, size=64):
    model.train()
    opt = torch.optim.SGD([p for g in param_groups(model, 0.1) for p in g["params"]], lr=0.1)
    opt.zero_grad()
    model(torch.rand(4, 1, size, size)).pow(2).mean().backward()
    opt.step()


def test_freeze_keeps_frozen_weights_and_batchnorm_statistics(tmp_path, monkeypatch):
    _write_fake_imagenet(tmp_path, monkeypatch)
    m = build(ModelConfig("resnet18", "freeze", "layer2", "imagenet"), 64)
    before = {k: v.clone() for k, v in m.backbone.state_dict().items()}
    _step(m)
    after = m.backbone.state_dict()
    for k in before:
        if k.startswith(("conv1", "bn1", "layer1", "layer2")):
            assert torch.equal(before[k], after[k]), k  # weights and running stats alike
    assert not torch.equal(before["layer3.0.conv1.weight"], after["layer3.0.conv1.weight"])
    assert not torch.equal(before["layer3.0.bn1.running_mean"], after["layer3.0.bn1.running_mean"])


def test_transfusion_keeps_below_and_reinitialises_above(tmp_path, monkeypatch):
    sd = _write_fake_imagenet(tmp_path, monkeypatch)
    m = build(ModelConfig("resnet18", "transfusion", "layer2", "imagenet"), 64)
    own = m.backbone.state_dict()
    assert torch.equal(own["layer2.1.conv2.weight"], sd["layer2.1.conv2.weight"])
    assert torch.equal(own["conv1.weight"], sd["conv1.weight"])
    assert not torch.equal(own["layer3.0.conv1.weight"], sd["layer3.0.conv1.weight"])
    assert not torch.equal(own["layer4.1.conv2.weight"], sd["layer4.1.conv2.weight"])


def test_slim_transfusion_halves_the_top():
    full = build(ModelConfig("resnet50", "transfusion", "layer3", "random"), 64)
    slim = build(ModelConfig("resnet50", "transfusion", "layer3", "random", slim=True), 64)
    n = lambda m: sum(p.numel() for p in m.parameters())
    assert n(slim) < n(full)
    assert slim(torch.rand(1, 1, 64, 64)).shape == (1, 1)


def test_grayscale_fold_and_flatten_head():
    folded = build(ModelConfig("resnet18", "truncate", "layer2", "random", grayscale="fold"), 64)
    assert folded.backbone.conv1.in_channels == 1
    assert folded(torch.rand(2, 1, 64, 64)).shape == (2, 1)
    flat = build(ModelConfig("resnet18", "truncate", "layer2", "random", head="flatten"), 64)
    assert flat.head[-1].in_features == 128 * 8 * 8  # the map is flattened, not pooled


def test_models_cli_json(capsys):
    assert main(["models", "resnet50", "--image-size", "224", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["backbone"] == "resnet50"
    assert {"name", "channels", "reduction", "params", "macs"} <= set(out["cuts"][0])
    names = [c["name"] for c in out["cuts"]]
    assert "layer3" in names and "layer3.3" in names and names[-1] == "full"
    assert main(["models", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert {r["backbone"] for r in table} == set(registry.BACKBONES)
