import json

import numpy as np
import pytest

from medtl import study
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.models.registry import get_cut
from medtl.runs import RunStore
from medtl.study import conclusions


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
        return study.train_inline(store, cfg)

    result = study.run_study(s, store, executor)
    return s, store, result, stage1_names


@pytest.mark.slow
def test_stage2_runs_inside_the_stage1_winner_on_validation(searched):
    s, store, result, order = searched
    assert result["failed"] == 0 and result["missing"] == 0
    (g,) = study.search_state(s, store)
    # the winner of stage 1 is the best mean validation AUPRC among its cuts, or the smallest network
    # among the cuts within the validation noise of it
    tie = g["stage1_tie"]
    vals1 = {c: v for c, v in g["stage1_tie"] and g["val"].items() if c in g["stage1"]}
    assert tie["best"] == max(vals1, key=vals1.get) or vals1[tie["best"]] == max(vals1.values())
    assert g["stage1_best"] == tie["chosen"] and tie["chosen"] in [tie["best"], *tie["tied"]]
    depth = {c: i for i, c in enumerate(g["stage1"])}  # truncation: a shallower cut is a smaller network
    assert depth[tie["chosen"]] == min(depth[c] for c in [tie["best"], *tie["tied"]])
    assert tie["method"] == "bootstrap"  # validation predictions are kept: the noise is judged
    assert g["stage2"] == study.stage2_cuts("resnet18", g["stage1_best"], g["stage1"])
    assert g["stage2"] and all(get_cut("resnet18", c).level == "layer" for c in g["stage2"])
    assert order[:5] == g["stage1"] or sorted(order[:5]) == sorted(g["stage1"])
    assert order[5:] == g["stage2"]  # stage 2 was queued after stage 1, automatically
    assert g["tie"]["best"] == max(g["val"], key=g["val"].get) and g["selected"] == g["tie"]["chosen"]
    assert set(g["val"]) == set(g["stage1"]) | set(g["stage2"])
    # a second run trains nothing: every run is found by its experiment key
    assert study.plan(s, store) == [] and study.pending(s, store) == []
    assert study.run_study(s, store, lambda cfg: pytest.fail("nothing should train"))["trained"] == 0


@pytest.mark.slow
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


@pytest.mark.slow
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
        val = {k: v for k, v in p.items() if k.startswith("val_")}  # validation kept: choices are made there
        copy.write_predictions(
            rid, index=p["index"], y_true=rng.permutation(p["y_true"]), y_score=rng.random(p["y_score"].size), **val
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
    blocks = study.cut_names("resnet50", "block")
    assert blocks == ["stem", "layer1", "layer2", "layer3", "full"]
    # TTL-2's cut layer3.3 is reached from the block layer3: its layers and the first of layer4
    assert study.stage2_cuts("resnet50", "layer3", blocks) == [f"layer3.{i}" for i in range(5)] + ["layer4.0"]
    assert study.stage2_cuts("resnet18", "stem", study.cut_names("resnet18", "block")) == ["layer1.0"]


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


# --- CLI (on the finished tiny study) --------------------------------------------------------------


def _cli(capsys, *argv):
    from medtl.cli import main

    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.slow
def test_cli_study_show_json_and_rerun_trains_nothing(searched, capsys):
    s, store, _, _ = searched
    rc, out, _ = _cli(capsys, "study", "show", "tiny", "--json", "--runs-dir", str(store.root))
    assert rc == 0
    (g,) = json.loads(out)["groups"]
    assert g["selected"] and {"auroc", "auprc"} <= set(g["selected_test"])
    if g["selected"] != "full":
        assert {"value", "ci"} <= set(g["vs_full"]["delta_auprc"]) and "delong_p" in g["vs_full"]
    n = len(store.ids())
    rc, out, _ = _cli(capsys, "study", "run", "tiny", "--runs-dir", str(store.root))
    assert rc == 0 and "trained 0 run(s)" in out and "Conclusions:" in out
    assert len(store.ids()) == n


@pytest.mark.slow
def test_cli_compare_matches_sklearn(searched, capsys):
    from sklearn.metrics import average_precision_score, roc_auc_score

    _, store, _, _ = searched
    a, b = store.ids()[:2]
    rc, out, _ = _cli(capsys, "compare", a, b, "--json", "--n-boot", "200", "--runs-dir", str(store.root))
    assert rc == 0
    r = json.loads(out)
    pa, pb = store.predictions(a), store.predictions(b)
    assert np.array_equal(pa["index"], pb["index"])
    y = pa["y_true"]
    assert r["delta_auroc"]["value"] == pytest.approx(roc_auc_score(y, pa["y_score"]) - roc_auc_score(y, pb["y_score"]))
    assert r["delta_auprc"]["value"] == pytest.approx(
        average_precision_score(y, pa["y_score"]) - average_precision_score(y, pb["y_score"])
    )
    lo, hi = r["delta_auprc"]["ci"]
    assert lo <= r["delta_auprc"]["value"] <= hi and 0 <= r["delong_p"] <= 1
    assert r["n"] == len(y) and r["n_pos"] == int(y.sum())


@pytest.mark.slow
def test_cli_compare_refuses_different_test_sets(searched, capsys, tmp_path):
    import shutil

    _, store, _, _ = searched
    a = store.ids()[0]
    other = RunStore(tmp_path / "runs")
    shutil.copytree(store.root / a, other.root / a)
    shutil.copytree(store.root / a, other.root / "other-split")
    cfg = json.loads((other.root / "other-split" / "config.json").read_text())
    cfg["data"]["split_seed"] = 1
    (other.root / "other-split" / "config.json").write_text(json.dumps(cfg))
    rc, _, err = _cli(capsys, "compare", a, "other-split", "--runs-dir", str(other.root))
    assert rc == 2 and "different test sets" in err and len(err.strip().splitlines()) == 1
    # same settings, but the predictions cover other images
    shutil.copytree(store.root / a, other.root / "other-images")
    p = other.predictions("other-images")
    other.write_predictions("other-images", index=p["index"] + 10_000, y_true=p["y_true"], y_score=p["y_score"])
    rc, _, err = _cli(capsys, "compare", a, "other-images", "--runs-dir", str(other.root))
    assert rc == 2 and "different test images" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv, match",
    [
        (["study", "run", "--preset", "nope"], "Unknown preset 'nope'"),
        (["study", "run", "--preset", "demo", "--cuts", "layer2,layer9", "--dry-run"], "Unknown cut 'layer9'"),
        (["study", "show", "missing"], "No study 'missing'"),
        (["study", "run", "--preset", "demo", "--seed", "x", "--dry-run"], "--seed must be whole numbers"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(argv, match, capsys, tmp_path):
    rc, _, err = _cli(capsys, *argv, "--runs-dir", str(tmp_path))
    assert rc == 2 and match in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_dry_run_lists_the_demo(capsys, tmp_path):
    rc, out, _ = _cli(
        capsys, "study", "run", "--preset", "demo", "--train-size", "10%", "--dry-run", "--runs-dir", str(tmp_path)
    )
    assert rc == 0 and "10 run(s) to train now" in out and "resnet18 truncate@layer2" in out
    assert not (tmp_path / "studies").exists()  # a dry run saves nothing


@pytest.mark.slow
def test_report_is_self_contained(searched, tmp_path, capsys):
    _, store, _, _ = searched
    out = tmp_path / "report.html"
    rc, _, _ = _cli(capsys, "report", "tiny", "--out", str(out), "--runs-dir", str(store.root))
    assert rc == 0
    text = out.read_text()
    assert text.count("plotly.js v") == 1  # the library is inline, once
    assert "<script src" not in text and "<link" not in text  # nothing is fetched
    assert "Conclusions" in text and "Software and device" in text and "torchvision" in text
    assert text.count("<details>") == len(store.ids())  # every run's config
    # issue 21: a calibration and operating-point section, its figures at the deployment prevalence asked for
    at = tmp_path / "at_prevalence.html"
    rc, _, _ = _cli(capsys, "report", "tiny", "--out", str(at), "--prevalence", "0.057", "--runs-dir", str(store.root))
    assert rc == 0
    text = at.read_text()
    assert "Calibration and operating point" in text and "Brier" in text and "ECE" in text
    assert "Reliability of the selected cut" in text and "Decision curves at 5.7% prevalence" in text
    assert "Test AUPRC (AP) at 5.7% prevalence by cut" in text


def test_pending_skips_queued_runs_and_plan_keeps_them(tmp_path):
    store = RunStore(tmp_path)
    s = tiny(cuts=("layer1",))
    first = s.stage1()[0]
    store.create(first, state="queued")
    assert first.key() in {c.key() for c in study.plan(s, store)}
    assert first.key() not in {c.key() for c in study.pending(s, store)}
    assert len(study.pending(s, store)) == len(study.plan(s, store)) - 1


def _d(v, lo, hi):
    return {"value": v, "ci": [lo, hi]}


def test_conclusions_in_words_say_both_metrics_and_significance():
    s = tiny(cuts="blocks").replace(inits=("random",), train_sizes=(0.1, None))
    cmp = {
        "a": {"auroc": _d(0.90, 0.85, 0.95), "auprc": _d(0.86, 0.8, 0.9)},
        "b": {"auroc": _d(0.88, 0.83, 0.93), "auprc": _d(0.81, 0.75, 0.86)},
        "delta_auroc": _d(0.02, -0.01, 0.05),
        "delta_auprc": _d(0.05, 0.02, 0.08),
        "delong_p": 0.003,
        "n": 450,
        "rows": 1,
        "significant": {"auroc": False, "auprc": True},
    }
    small = {
        "backbone": "resnet18",
        "strategy": "truncate",
        "init": "random",
        "size": "10%",
        "stage1_best": "layer2",
        "stage2": [],
        "selected": "layer2",
        "vs_full": cmp,
        "full_test": cmp["b"],
        "model": {},
        "seeds": [0],
        "caveats": [],
    }
    large = {
        **small,
        "size": "100%",
        "vs_full": {**cmp, "delta_auprc": _d(0.01, -0.02, 0.03), "significant": {"auroc": False, "auprc": False}},
    }
    text = conclusions.conclusions(s, {"groups": [small, large], "tl_vs_ri": []})
    first = text[0]
    assert first.startswith("With 10% of the training data (random init, resnet18), truncating resnet18 at layer2")
    assert "AUPRC 0.860 vs 0.810 for full fine-tuning: +0.050 [+0.020, +0.080];" in first
    assert (
        "AUROC 0.900 vs 0.880: +0.020 [-0.010, +0.050], not significant, p = 0.003 (DeLong, AUROC, test images)"
        in first
    )
    assert any(t.startswith("Data-poor effect") and "larger" in t for t in text)
