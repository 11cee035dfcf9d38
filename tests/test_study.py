import json

import numpy as np
import pytest

from medtl import conclusions, study
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.models.registry import get_cut
from medtl.runs import RunStore


def tiny(name="tiny", cuts="search", **kw) -> study.StudyConfig:
    base = RunConfig(
        DataConfig(n_images=200, image_size=32),
        ModelConfig(backbone="resnet18"),
        TrainConfig(epochs=1, batch_size=32, bootstrap=100, device="cpu", augment=False),
    )
    return study.StudyConfig(name, base, ("resnet18",), ("truncate",), cuts, ("random",), (None,), (0,), **kw)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A finished search study: stage 1 (4 block cuts + full), then stage 2 inside the winner."""
    store = RunStore(tmp_path_factory.mktemp("runs"))
    s = tiny()
    first = study.plan(s, store)
    assert sorted(c.model.cut for c in first) == ["full", "layer1", "layer2", "layer3", "stem"]
    stage1_names = []

    def executor(cfg):
        stage1_names.append(cfg.model.cut)
        return study._train_inline(store, cfg)

    result = study.run_study(s, store, executor)
    return s, store, result, stage1_names


def test_stage2_runs_inside_the_stage1_winner_on_validation(searched):
    s, store, result, order = searched
    assert result["failed"] == 0 and result["missing"] == 0
    (g,) = study.search_state(s, store)
    # the winner is the best mean validation AUPRC among stage-1 cuts
    assert g["stage1_best"] == max(g["stage1"], key=lambda c: g["val"][c])
    assert g["stage2"] == study.stage2_cuts("resnet18", g["stage1_best"], g["stage1"])
    assert g["stage2"] and all(get_cut("resnet18", c).level == "layer" for c in g["stage2"])
    assert order[:5] == g["stage1"] or sorted(order[:5]) == sorted(g["stage1"])
    assert order[5:] == g["stage2"]  # stage 2 was queued after stage 1, automatically
    assert g["selected"] == max(g["val"], key=g["val"].get)
    assert set(g["val"]) == set(g["stage1"]) | set(g["stage2"])
    # a second run trains nothing: every run is found by its experiment key
    assert study.plan(s, store) == [] and study.pending(s, store) == []
    assert study.run_study(s, store, lambda cfg: pytest.fail("nothing should train"))["trained"] == 0


def test_summary_reports_the_choice_with_paired_statistics(searched):
    s, store, _, _ = searched
    out = conclusions.summarize(s, store, n_boot=100)
    (g,) = out["groups"]
    assert g["stage2"] and g["selected"] in g["stage1"] + g["stage2"]
    if g["selected"] != "full":
        d = g["vs_full"]["delta_auprc"]
        assert d["ci"][0] <= d["value"] <= d["ci"][1]
        assert 0 <= g["vs_full"]["delong_p"] <= 1
        text = " ".join(out["conclusions"])
        assert "AUPRC" in text and "AUROC" in text and "DeLong" in text
    json.dumps(out)  # JSON-ready for `study show --json`


def test_the_test_split_is_never_used_for_a_choice(searched, tmp_path):
    """Shuffle every run's test labels and scores and scramble its test metrics: the choices stay."""
    import shutil

    s, store, _, _ = searched
    before = study.search_state(s, store)
    copy = RunStore(tmp_path / "runs")
    shutil.copytree(store.root, copy.root)
    rng = np.random.default_rng(0)
    for rid in copy.ids():
        p = copy.predictions(rid)
        copy.write_predictions(
            rid, index=p["index"], y_true=rng.permutation(p["y_true"]), y_score=rng.random(p["y_score"].size)
        )
        m = copy.metrics(rid)
        m["test"] = {k: (float(rng.random()) if isinstance(v, float) else v) for k, v in m["test"].items()}
        copy.write_metrics(rid, m)
    after = study.search_state(s, copy)
    assert [(g["stage1_best"], g["stage2"], g["selected"], g["val"]) for g in after] == [
        (g["stage1_best"], g["stage2"], g["selected"], g["val"]) for g in before
    ]
    assert study.plan(s, copy) == []


def test_study_json_round_trip_and_storage(tmp_path):
    store = RunStore(tmp_path)
    s = tiny(cuts=("layer1", "layer2.0"))
    p = study.save(s, store)
    assert p == tmp_path / "studies" / "tiny" / "study.json"
    assert study.load(store, "tiny") == s
    assert sorted(c.model.cut for c in s.stage1()) == ["full", "layer1", "layer2.0"]


def test_stage2_range():
    blocks = study.distinct_cuts("resnet50", layers=False)
    assert blocks == ["stem", "layer1", "layer2", "layer3", "full"]
    # TTL-2's cut layer3.3 is reached from the block layer3: its layers and the first of layer4
    assert study.stage2_cuts("resnet50", "layer3", blocks) == [f"layer3.{i}" for i in range(5)] + ["layer4.0"]
    assert study.stage2_cuts("resnet18", "stem", study.distinct_cuts("resnet18", False)) == ["layer1.0"]


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"cuts": ("layer9",)}, "Unknown cut 'layer9'"),
        ({"cuts": "deep"}, "cuts must be one of"),
        ({"criterion": "test_auprc"}, "criterion must be one of"),
        ({"name": "a b"}, "name must be"),
    ],
)
def test_bad_study_configs_name_the_field(kw, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kw)


def test_presets():
    demo = study.preset("demo")
    assert len(demo.stage1()) == 20 and demo.base.data.image_size == 64
    assert {c.model.strategy for c in study.preset("shallow-vs-deep").stage1()} == {"finetune"}
    with pytest.raises(ValueError, match="Unknown preset 'nope'"):
        study.preset("nope")
