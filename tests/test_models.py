import json

import pytest
import torch
import torchvision

from medtl.cli import main
from medtl.config import DataConfig, ModelConfig, RunConfig
from medtl.models import build, param_groups, registry, weights
from medtl.models.families import cbr
from medtl.models.profile import cut_table, macs, profile
from medtl.models.transfer import BUILD_RULES, head_state
from medtl.strategies import STRATEGIES

BACKBONES = list(registry.BACKBONES)
# one backbone per family (the smallest): strategies and Grad-CAM layers are family knowledge
FAMILIES = {}
for _name, _spec in registry.BACKBONES.items():
    FAMILIES.setdefault(_spec.family.name, _name)
PER_FAMILY = list(FAMILIES.values())


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread. On a shared 2-core machine two threads spin against other
    processes (a DenseNet-121 forward at 32 px: 4 s with two, 0.09 s with one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _size(backbone: str) -> int:
    return max(64, registry.min_input_size(backbone))


def _stage_maps(backbone: str, full: torch.nn.Module, x: torch.Tensor) -> dict[int, torch.Tensor]:
    """The feature map after every stage, from ONE forward pass (as timm's FeatureHooks).

    The map after stage ``i`` is the input of stage ``i + 1`` (a DenseNet layer takes the list of
    earlier features: concatenated, it is the map at the previous cut), and the output of the
    network truncated at the last stage.
    """
    family = registry.get_spec(backbone).family
    stages = family.stages(full)
    maps: dict[int, torch.Tensor] = {}

    def keep(i):
        def hook(module, args):
            a = args[0]
            maps[i] = (torch.cat(a, 1) if isinstance(a, list | tuple) else a).detach().clone()

        return hook

    hooks = [m.register_forward_pre_hook(keep(i - 1)) for i, (_, m) in enumerate(stages) if i > 0]
    try:
        with torch.no_grad():
            maps[len(stages) - 1] = family.truncate(full, len(stages) - 1)(x)
    finally:
        for h in hooks:
            h.remove()
    assert all(not m._forward_pre_hooks for _, m in stages)
    return maps


def _representative_cuts(backbone):
    pts = [p for p in registry.cut_points(backbone) if p.name != "full"]
    layer = [p for p in pts if p.level == "layer"]
    chosen = {pts[0].name, pts[len(pts) // 2].name, pts[-1].name}
    if layer:
        chosen.add(layer[len(layer) // 3].name)
    return sorted(chosen, key=[p.name for p in pts].index)


@pytest.mark.slow
@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_published_cut_matches_one_forward_pass(backbone):
    """Channels and reduction of every cut point against one hooked forward pass; a few
    representative cuts also truncated, compared map for map at their Grad-CAM layer, and trained."""
    torch.manual_seed(0)
    spec = registry.get_spec(backbone)
    full = spec.builder().eval()
    is_cbr = backbone in cbr.CBR_CONFIGS  # unpadded convs: the map size is not size // reduction
    size = registry.min_input_size(backbone) if is_cbr else 32
    x = torch.rand(2, 3, size, size)
    maps = _stage_maps(backbone, full, x)
    points = registry.cut_points(backbone)
    assert points[-1].name == "full" and len({p.name for p in points}) == len(points)
    as_map = spec.family.feature_map  # a ViT's tokens as their patch grid; a map already elsewhere
    for point in points:
        y = as_map(maps[point.stage])
        assert y.shape[1] == point.channels, point
        expected = cbr.output_size(backbone, size, point.stage + 1) if is_cbr else size // point.reduction
        assert y.shape[-2:] == (expected, expected), point

    for cut in _representative_cuts(backbone):
        point = registry.get_cut(backbone, cut)
        net = spec.family.truncate(full, point.stage)
        seen = []
        layer = spec.family.feature_module(net, point)
        handle = layer.register_forward_hook(lambda m, i, o, seen=seen: seen.append(o.detach().clone()))
        try:
            y = net(x)
        finally:
            handle.remove()
        torch.testing.assert_close(seen[0], maps[point.stage])  # the feature module outputs the cut's map
        assert as_map(y).shape[1] == point.channels
        # names are the source's: a truncated state dict is a subset of the full one
        assert set(net.state_dict()) <= set(full.state_dict())
    for cut in _representative_cuts(backbone):  # after the comparisons: training moves BatchNorm statistics
        net = spec.family.truncate(full, registry.get_cut(backbone, cut).stage).train()
        net(x).mean().backward()  # every cut trains
        assert all(p.grad is not None for p in net.parameters()), cut
        full.zero_grad(set_to_none=True)


def test_build_rules_cover_every_strategy():
    assert set(BUILD_RULES) == set(STRATEGIES)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("backbone", PER_FAMILY)
def test_every_strategy_builds_as_its_record_says(backbone, strategy):
    """Kept, frozen and trainable parts follow the strategy's record; the head and the Grad-CAM
    layer are sized by the kept cut."""
    record = STRATEGIES[strategy]
    size = _size(backbone)
    family = registry.get_spec(backbone).family
    paths = [p for p, _ in family.stages(registry.get_spec(backbone).builder())]
    block_cuts = [p.name for p in registry.cut_points(backbone) if p.level == "block"]
    cuts = {"none": ["full"], "optional": [block_cuts[1], "full"], "below_full": [block_cuts[1]]}[record.cut_rule]
    for cut in cuts:
        kept = registry.get_cut(backbone, record.kept_cut(cut))
        if size < registry.min_input_size(backbone, kept.name):
            continue
        model = build(ModelConfig(backbone, strategy, cut, "random"), image_size=size)
        point = registry.get_cut(backbone, cut)
        has_top = any(k.startswith(paths[-1] + ".") for k in model.backbone.state_dict())
        assert has_top == (record.keeps_top or point.stage == len(paths) - 1)
        expect_frozen = {"none": 0, "below": point.stage + 1, "all": kept.stage + 1}[record.frozen]
        for i, path in enumerate(paths[: kept.stage + 1]):
            params = list(model.backbone.get_submodule(path).parameters())
            assert all(p.requires_grad == (i >= expect_frozen) for p in params), path
        seen = []
        handle = model.last_conv_layer.register_forward_hook(lambda m, i, o, seen=seen: seen.append(o.shape))
        model.train()
        out = model(torch.rand(2, 1, size, size))
        handle.remove()
        assert out.shape == (2, 1)
        assert seen[0][1] == kept.channels == model.head[-1].in_features
        out.sum().backward()
        groups = param_groups(model, 1e-3)
        trainable = sum(p.numel() for g in groups for p in g["params"])
        assert trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_grad_cam_layer_at_earlier_cuts():
    """The family names the module for the kept cut and any earlier one; deeper cuts and cuts
    inside a whole dense block are refused with the reason."""
    m = build(ModelConfig("resnet18", "truncate", "layer3", "random"), 64)
    assert m.feature_module("layer2") is m.backbone.layer2
    assert m.feature_module("layer1.0") is m.backbone.layer1[0]
    assert m.feature_module("stem") is m.backbone.maxpool
    with pytest.raises(ValueError, match="truncated below it"):
        m.feature_module("layer4")
    d = build(ModelConfig("densenet121", "finetune", "full", "random"), 64)
    assert d.feature_module("features.transition2") is d.backbone.features.transition2
    assert d.last_conv_layer is d.backbone.features
    with pytest.raises(ValueError, match="keeps whole"):
        d.feature_module("features.denseblock2.denselayer3")
    part = build(ModelConfig("densenet121", "truncate", "features.denseblock2.denselayer3", "random"), 64)
    assert part.last_conv_layer is part.backbone.features.denseblock2
    e = build(ModelConfig("efficientnet_b0", "freeze", "features.4", "random"), 64)
    assert e.feature_module("features.4") is e.backbone.features[4]
    assert e.last_conv_layer is e.backbone.features[8]


@pytest.mark.slow
def test_resnet50_published_ttl_sizes():
    bb = lambda cut: sum(
        p.numel() for p in build(ModelConfig("resnet50", "truncate", cut, "random")).backbone.parameters()
    )
    assert bb("layer3") == 8_543_296  # TTL-1: stem + layer1-3
    assert bb("layer3.3") == 6_308_928  # TTL-2: stem + 11 bottlenecks
    full = build(ModelConfig("resnet50", "finetune", "full", "random"), 224, in_channels=3)
    assert macs(full, 224, 3) == pytest.approx(4.1e9, rel=0.01)


@pytest.mark.parametrize(
    "backbone, cuts",
    [
        ("resnet18", ("stem", "layer2", "layer3.0", "full")),
        ("convnext_tiny", ("features.3", "full")),
        ("vit_b_16", ("encoder.layers.encoder_layer_2", "full")),
    ],
)
@pytest.mark.slow
def test_cut_table_agrees_with_built_models(backbone, cuts):
    rows = {r["name"]: r for r in cut_table(backbone, 64)}
    for cut in cuts:
        strategy = "finetune" if cut == "full" else "truncate"
        m = build(ModelConfig(backbone, strategy, cut, "random"), 64, in_channels=3)
        assert rows[cut]["params"] == sum(p.numel() for p in m.parameters())
        assert rows[cut]["macs"] == macs(m, 64, 3)


@pytest.mark.slow
def test_truncated_models_are_smaller_and_cheaper():
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
        registry.check_model(ModelConfig(**kwargs))  # registry names are checked on the model side


def test_config_json_round_trip():
    cfg = ModelConfig("densenet121", "freeze", "features.transition2", "random", dropout=0.2)
    assert ModelConfig.from_dict(json.loads(cfg.to_json())) == cfg
    with pytest.raises(ValueError, match="Unknown ModelConfig field"):
        ModelConfig.from_dict({"backbone": "resnet18", "depth": 3})


# --- initialisation ------------------------------------------------------------------------------


def _write_fake_imagenet(tmp_path, monkeypatch, backbone="resnet18", noise=False):
    """A random state dict saved under the torchvision file-name pattern with its true hash (``noise``:
    every float tensor moved off its initial value, so that norms and tokens tell a loaded one apart)."""
    import hashlib

    torch.manual_seed(123)
    sd = torchvision.models.get_model(backbone, weights=None).state_dict()
    if noise:
        sd = {k: v + torch.rand_like(v) if v.is_floating_point() else v for k, v in sd.items()}
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


def test_efficientnet_imagenet_through_the_same_weights_api(tmp_path, monkeypatch):
    """The added family: its enum, cache file, hash check and loading need nothing family-specific."""
    assert not weights.weights_status("efficientnet_b0")["available"]
    sd = _write_fake_imagenet(tmp_path, monkeypatch, "efficientnet_b0")
    assert weights.weights_status("efficientnet_b0")["available"]
    m = build(ModelConfig("efficientnet_b0", "transfusion", "features.3", "imagenet"), 64)
    own = m.backbone.state_dict()
    assert torch.equal(own["features.3.1.block.0.0.weight"], sd["features.3.1.block.0.0.weight"])  # below: loaded
    assert not torch.equal(own["features.5.0.block.0.0.weight"], sd["features.5.0.block.0.0.weight"])  # above: random
    assert m.head[2].p == 0.2  # the reference classifier's dropout is the family default


def test_efficientnet_published_cuts_and_sizes():
    blocks = [p for p in registry.cut_points("efficientnet_b0") if p.level != "layer"]
    assert [(p.name, p.channels, p.reduction) for p in blocks] == [
        ("stem", 32, 2),
        ("features.1", 16, 2),
        ("features.2", 24, 4),
        ("features.3", 40, 8),
        ("features.4", 80, 16),
        ("features.5", 112, 16),
        ("features.6", 192, 32),
        ("features.7", 320, 32),
        ("full", 1280, 32),
    ]
    assert registry.get_cut("efficientnet_b0", "features.4.2").level == "layer"
    assert registry.min_input_size("efficientnet_b0", "features.3") == 8
    with pytest.raises(ValueError, match="at least 32 px"):
        build(ModelConfig("efficientnet_b0", "finetune", "full", "random"), image_size=16)
    full = build(ModelConfig("efficientnet_b0", "finetune", "full", "random"), 224, in_channels=3)
    assert macs(full, 224, 3) == pytest.approx(0.39e9, rel=0.02)  # EfficientNet-B0: 0.39 B multiply-adds


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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_models_cli_json(capsys):
    assert main(["models", "resnet50", "--image-size", "64", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["backbone"] == "resnet50"
    assert {"name", "channels", "reduction", "params", "macs"} <= set(out["cuts"][0])
    names = [c["name"] for c in out["cuts"]]
    assert "layer3" in names and "layer3.3" in names and names[-1] == "full"
    assert main(["models", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert {r["backbone"] for r in table} == set(registry.BACKBONES)
    assert {r["family"] for r in table} == {"resnet", "densenet", "efficientnet", "convnext", "vit", "cbr"}
    assert main(["models", "efficientnet_b0", "--level", "block", "--image-size", "64", "--json"]) == 0
    names = [c["name"] for c in json.loads(capsys.readouterr().out)["cuts"]]
    assert names == ["stem", *(f"features.{i}" for i in range(1, 8)), "full"]


# --- families own their head ---------------------------------------------------------------------

TORCHVISION_FAMILIES = [b for b in PER_FAMILY if registry.get_spec(b).family.classifier is not None]


@pytest.mark.slow
@pytest.mark.parametrize("backbone", TORCHVISION_FAMILIES)
def test_full_network_is_torchvisions_forward(backbone):
    """``full`` keeps what follows the features in the reference network (pooling, DenseNet's ReLU,
    ConvNeXt's LayerNorm, ViT's class token and final LayerNorm): with torchvision's weights in every
    part, the output is torchvision's, for every family (ViT at its 224 px, the others at 64 px)."""
    spec = registry.get_spec(backbone)
    torch.manual_seed(0)
    ref = spec.builder().eval()
    size = 224 if spec.family.name == "vit" else 64
    model = build(ModelConfig(backbone, "finetune", "full", "random", num_outputs=1000), size, in_channels=3).eval()
    sd = ref.state_dict()
    weights.load_into(model.backbone, sd, "torchvision")
    pre = spec.family.pre_logits(ref, registry.get_cut(backbone, "full"))
    sources = {i: path for i, (path, _) in enumerate(pre) if path is not None} | {
        len(model.head) - 1: spec.family.classifier
    }
    model.head.load_state_dict(head_state(model.head, sources, sd))  # strict: every head tensor has a source
    x = torch.rand(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(model.head(model.backbone(x)), ref(x), rtol=0, atol=1e-5)


@pytest.mark.slow
def test_convnext_cuts_and_its_layernorm_after_pooling(tmp_path, monkeypatch):
    blocks = [(p.name, p.channels, p.reduction) for p in registry.distinct_cuts("convnext_tiny")]
    assert blocks == [
        ("stem", 96, 4),
        ("features.1", 96, 4),
        ("features.3", 192, 8),
        ("features.5", 384, 16),
        ("full", 768, 32),
    ]
    assert registry.get_cut("convnext_tiny", "features.4").level == "layer"  # a downsampling layer
    sd = _write_fake_imagenet(tmp_path, monkeypatch, "convnext_tiny")
    full = build(ModelConfig("convnext_tiny", "linear", "full", "imagenet"), 32)
    norm = full.head[1]
    assert torch.equal(norm.weight, sd["classifier.0.weight"]) and not norm.weight.requires_grad  # frozen with the net
    cut = build(ModelConfig("convnext_tiny", "truncate", "features.3", "imagenet"), 32)
    assert cut.head[1].weight.shape == (192,) and torch.equal(cut.head[1].weight, torch.ones(192))  # fresh, trained
    assert torch.equal(cut.backbone.state_dict()["features.3.2.block.0.weight"], sd["features.3.2.block.0.weight"])
    assert cut(torch.rand(2, 1, 32, 32)).shape == (2, 1)


@pytest.mark.slow
def test_vit_cuts_sizes_tokens_and_weights(tmp_path, monkeypatch):
    """Cuts after each encoder block; any multiple of the 16 px patch (position embeddings
    interpolated), other sizes refused; ImageNet weights through the same API, the class token and
    position embedding belonging to the first stage (kept by transfusion, frozen by freeze)."""
    names = [p.name for p in registry.distinct_cuts("vit_b_16")]
    assert names == [f"encoder.layers.encoder_layer_{i}" for i in range(11)] + ["full"]
    with pytest.raises(ValueError, match="multiple of its 16 px patches"):
        registry.check_run(RunConfig(DataConfig(image_size=40), ModelConfig("vit_b_16", "truncate", "full")))
    with pytest.raises(ValueError, match="at least 16 px"):
        build(ModelConfig("vit_b_16", "truncate", "encoder.layers.encoder_layer_1", "random"), 8)
    sd = _write_fake_imagenet(tmp_path, monkeypatch, "vit_b_16", noise=True)
    m = build(ModelConfig("vit_b_16", "transfusion", "encoder.layers.encoder_layer_1", "imagenet"), 32)
    own = m.backbone.state_dict()
    for key in ("class_token", "encoder.pos_embedding", "encoder.layers.encoder_layer_1.mlp.0.weight"):
        assert torch.equal(own[key], sd[key]), key  # below the cut: loaded
    assert not torch.equal(
        own["encoder.layers.encoder_layer_5.mlp.0.weight"], sd["encoder.layers.encoder_layer_5.mlp.0.weight"]
    )
    assert not torch.equal(m.head[1].weight, sd["encoder.ln.weight"])  # above the cut: re-initialised
    frozen = build(ModelConfig("vit_b_16", "freeze", "encoder.layers.encoder_layer_1", "imagenet"), 32)
    assert (
        not frozen.backbone.class_token.requires_grad and frozen.backbone.encoder.layers[2].mlp[0].weight.requires_grad
    )
    assert torch.equal(frozen.head[1].weight, sd["encoder.ln.weight"])  # the final LayerNorm's weights
    x = torch.rand(2, 1, 32, 32)
    assert m(x).shape == (2, 1)
    seen = []
    handle = m.last_conv_layer.register_forward_hook(lambda _m, _i, o: seen.append(o.shape))
    m(x)
    handle.remove()
    assert seen == [(2, 768, 2, 2)]  # Grad-CAM's map: the patch tokens on their 2 x 2 grid
