"""The families added as one module + one registry line each (ConvNeXt, ViT) go through everything the
others do: a run trains, Grad-CAM explains it, CKA compares it per block, the advisor scores every cut
of a whole network, and a study plans it. Tiny: 32 px, one
epoch, 60 images, truncated networks."""

import numpy as np
import pytest
import torch

from medtl import advise, cam, explain, similarity, study, train
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.models import registry
from medtl.runs import RunStore

CASES = {"convnext_tiny": "features.3", "vit_b_16": "encoder.layers.encoder_layer_1"}


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.parametrize("backbone", CASES)
def test_trains_explains_compares_and_advises(tmp_path, backbone):
    store = RunStore(tmp_path / "runs")
    data = DataConfig(n_images=60, image_size=32)
    cfg = RunConfig(
        data,
        ModelConfig(backbone, "truncate", CASES[backbone], "random"),
        TrainConfig(epochs=1, batch_size=16, bootstrap=20, device="cpu"),
    )
    rid = store.create(cfg)
    status = train.run(cfg, store, rid)
    assert status["state"] == "done", status.get("error")
    assert 0 <= store.metrics(rid)["test"]["auroc"] <= 1

    e = explain.explain_run(store, rid, n=2, sanity=False)
    assert e["map_size"] == [32 // registry.get_cut(backbone, CASES[backbone]).reduction] * 2
    layers = cam.gradcam_layers(cfg.model)
    assert layers[-1] == CASES[backbone] and len(layers) >= 2  # an earlier block too

    cka = similarity.run_similarity(store, rid, n=6, features="gap")
    assert cka["stages"] == layers and all(np.isfinite(cka["cka_initial"]))

    source = tmp_path / "full.pt"  # the advisor scores every cut of a whole pretrained network
    torch.save(registry.get_spec(backbone).builder().state_dict(), source)
    result = advise.advise(data, backbone, f"file:{source}", n=24, folds=2, batch_size=16)
    scored = [c["cut"] for c in result["cuts"]]
    assert set(scored) == {p.name for p in registry.distinct_cuts(backbone)}


@pytest.mark.slow
@pytest.mark.parametrize("backbone", CASES)
def test_enters_a_study(tmp_path, backbone):
    base = RunConfig(
        DataConfig(n_images=60, image_size=32),
        ModelConfig(backbone=backbone),
        TrainConfig(epochs=1, batch_size=16, bootstrap=20, device="cpu"),
    )
    s = study.StudyConfig("new", base, (backbone,), ("truncate",), "blocks", ("random", "imagenet"), (None,), (0,))
    planned = study.plan(s, RunStore(tmp_path / "runs"))
    cuts = {p.name for p in registry.distinct_cuts(backbone)}
    assert {c.model.cut for c in planned} == cuts  # every block-level cut, and full fine-tuning as the reference
    assert {c.model.init for c in planned} == {"random", "imagenet"}
