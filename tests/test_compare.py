"""Repeats are grouped by experiment key, never by display name (issue 12, point 1)."""

from __future__ import annotations

import numpy as np
import pytest
from compare_fixtures import mixed_runs

from medtl import compare
from medtl.config import RunConfig, TrainConfig
from medtl.runs import RunStore


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def test_experiment_key_ignores_seeds_and_execution_only():
    a = RunConfig()
    b = a.replace(train=a.train.replace(seed=3, device="cpu", threads=1), data=a.data.replace(seed=3))
    assert a.experiment_key() == b.experiment_key() and a.key() != b.key()
    assert a.experiment_key() != a.replace(train=TrainConfig(lr=0.01)).experiment_key()


def test_truncation_points_are_means_over_true_repeats(store):
    runs = mixed_runs(store)
    done = store.table()
    s = compare.truncation_summary(done, "test.auroc", predictions=store.predictions, n_boot=200)
    assert len(s) == 4  # one point per experiment
    assert sorted(s["count"]) == [1, 1, 2, 3]
    assert s["group"].nunique() == 3  # default lr / lr=1 / the other dataset: three lines
    by_id = done.set_index("id")
    for ids in runs.values():
        row = s[s["experiment"] == by_id.loc[ids[0], "experiment"]].iloc[0]
        assert row["count"] == len(ids)
        assert row["mean"] == pytest.approx(by_id.loc[ids, "test.auroc"].mean())
        assert 0 <= row["lo"] <= row["hi"] <= 1
    # labels name what differs between lines
    assert any("lr=1" in g for g in s["group"]) and any("dataset=medmnist" in g for g in s["group"])


def test_pooled_interval_is_a_bootstrap_of_the_mean_over_seeds(store):
    runs = mixed_runs(store)
    done = store.table()
    s = compare.truncation_summary(done, "test.auprc", predictions=store.predictions, n_boot=300)
    ids = runs["synth layer2"]
    key = done.set_index("id").loc[ids[0], "experiment"]
    row = s[s["experiment"] == key].iloc[0]
    preds = [store.predictions(i) for i in ids]
    from medtl import stats

    ref = stats.bootstrap_mean(preds[0]["y_true"], np.stack([p["y_score"] for p in preds]), n_boot=300)
    assert (row["lo"], row["hi"]) == pytest.approx(ref["auprc"])


def test_display_names_and_seed_groups_tell_experiments_apart(store):
    mixed_runs(store)
    done = store.table()
    names = compare.display_names(done)
    # the default-lr and the lr=1 layer2 runs share a RunConfig.name but not a display name
    assert done["name"].duplicated().any()
    unseeded = names.str.replace(r" · seed \d+", "", regex=True)
    assert unseeded.groupby(done["experiment"]).nunique().max() == 1
    assert unseeded.nunique() == done["experiment"].nunique() == 4
    groups = compare.seed_groups(done)
    assert groups.nunique() == done["experiment"].nunique() == 4
    for _, g in done.assign(g=groups).groupby("g"):
        assert g["experiment"].nunique() == 1


def test_default_backbone_is_the_one_with_most_runs(store):
    import pandas as pd

    done = pd.DataFrame({"model.backbone": ["resnet18"] * 3 + ["cbr_tiny"]})
    assert compare.default_backbone(done) == "resnet18"


def test_differences_are_rounded_text():
    import pandas as pd

    rows = pd.DataFrame({"id": ["a", "b"], "train.lr": [0.1 + 0.2, 1.0], "model.cut": ["layer1", "layer1"]})
    d = compare.differences(rows)
    assert list(d.index) == ["train.lr"] and d.loc["train.lr", "a"] == "0.3"


@pytest.mark.slow
def test_compare_page_truncation_figure_shows_true_repeats(store, monkeypatch):
    """AppTest: the page's truncation figure has one point per experiment, labelled with its n."""
    import json
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    runs = mixed_runs(store)
    monkeypatch.setenv("MEDTL_RUNS", str(store.root))
    page = str(Path(__file__).resolve().parents[1] / "pages" / "3_Compare.py")
    at = AppTest.from_file(page, default_timeout=120).run()
    assert not at.exception
    charts = {c.proto.id: c for c in at.get("plotly_chart")}
    trunc = next(json.loads(c.proto.spec) for k, c in charts.items() if k.endswith("-trunc"))
    texts = [t for tr in trunc["data"] if tr.get("mode") == "text" for t in tr["text"]]
    assert sorted(texts) == sorted(f"n={len(ids)}" for ids in runs.values())
    assert trunc["layout"]["yaxis"]["range"][0] >= 0 and trunc["layout"]["yaxis"]["range"][1] <= 1.01


def test_labels_and_lines_use_config_fields_only(store):
    """Metrics share prefixes with config fields (``train.seconds``, ``model.params``): they never
    label a run or split a line."""
    mixed_runs(store)
    done = store.table()
    labels = " ".join(
        [*compare.display_names(done), *compare.short_labels(done), *compare.seed_groups(done)]
        + list(compare.truncation_summary(done, "test.auroc")["group"])
    )
    for metric in ("seconds", "images_per_s", "params", "macs", "latency"):
        assert metric not in labels
    assert compare.truncation_summary(done, "test.auroc")["group"].nunique() == 3


def test_shared_label_is_what_short_labels_leave_out(store):
    """The Explain page labels columns by what differs and says the rest once: together the two
    hold every part of the run name."""
    runs = mixed_runs(store)
    t = store.table().set_index("id")
    layer2 = t.loc[runs["synth layer2"]]  # three seeds of one experiment
    data, model = layer2["data_label"].iloc[0], layer2["model_label"].iloc[0]
    assert list(compare.short_labels(layer2)) == [f"{model} · seed {s}" for s in layer2["train.seed"]]
    shared = compare.shared_label(layer2)
    assert shared.startswith(data + " · ") and "seed" not in shared and model not in shared
    assert set(compare.short_labels(layer2).iloc[0].split(" · ")) | set(shared.split(" · ")) == set(
        layer2["name"].iloc[0].split(" · ")
    )
    cuts = t.loc[[runs["synth layer1"][0], runs["synth layer2"][0]]]  # two cuts, the same seed
    assert list(compare.short_labels(cuts)) == list(cuts["model_label"]) and "seed 0" in compare.shared_label(cuts)
    one = t.loc[[runs["medmnist layer2"][0]]]  # one run: its model labels it, the rest is shared
    assert compare.short_labels(one).iloc[0] == one["model_label"].iloc[0]
    assert compare.shared_label(one).startswith(one["data_label"].iloc[0])
    two_datasets = t.loc[[runs["synth layer1"][0], runs["medmnist layer2"][0]]]
    assert compare.shared_label(two_datasets) == "random · 100% · seed 0"
    assert compare.shared_label(t.iloc[:0]) == ""


def test_one_experiment_however_its_size_and_options_were_spelled(store):
    """Issue 19: 10% = 0.1 = "0.1"; other kinds' options and the bootstrap count are not the experiment;
    labels show image size and SynthCXR size where runs in view differ in them, never another kind's options."""
    import numpy as np
    from compare_fixtures import MEDMNIST, SYNTH, write_run

    from medtl.config import ModelConfig

    y = (np.arange(80) % 4 == 0).astype(int)
    med = RunConfig(MEDMNIST.replace(train_size="10%"), ModelConfig(cut="layer2"), TrainConfig(epochs=2))
    # the same experiment: the size as a decimal string, SynthCXR options set (they do not apply), another bootstrap
    same = RunConfig(
        MEDMNIST.replace(train_size="0.1", seed=1, n_images=800, difficulty=0.1, prevalence=0.5),
        ModelConfig(cut="layer2"),
        TrainConfig(epochs=2, bootstrap=200, seed=1),
    )
    assert med.experiment_key() == same.experiment_key() and same.data.n_images == 3000  # SynthCXR's default
    write_run(store, med, y, 1.0, 0)
    write_run(store, same, y, 1.0, 1)
    other = med.replace(data=med.data.replace(image_size=64))
    write_run(store, other, y, 1.0, 2)
    s1 = SYNTH.replace(n_images=400)
    write_run(store, RunConfig(s1, ModelConfig(cut="layer2"), TrainConfig(epochs=2)), y, 1.0, 3)
    t = store.table()
    assert t["experiment"].nunique() == 3  # medmnist 32 px (two seeds), medmnist 64 px, SynthCXR
    labels = dict(zip(t["id"], compare.short_labels(t), strict=True))
    text = " | ".join(labels.values())
    assert "image_size=32" in text and "image_size=64" in text
    assert [k for k, v in labels.items() if "n_images=400" in v] == [t[t["data.dataset"] == "synthetic"]["id"].iloc[0]]
    assert "bootstrap" not in text and "difficulty" not in text and "prevalence" not in text
    s = compare.truncation_summary(t, "test.auroc")
    assert sorted(s["count"]) == [1, 1, 2]  # the two spellings of 10% are one point with n = 2


@pytest.mark.slow
def test_compare_page_prevalence_operating_point_and_old_runs(store, monkeypatch):
    """AppTest: runs recorded before validation predictions say how to get an operating point; the one
    prevalence control moves the table's AUPRC to scikit-learn's weighted AP and the PR chance line; a
    lower-is-better metric sorts ascending."""
    import json
    from pathlib import Path

    from sklearn.metrics import average_precision_score
    from streamlit.testing.v1 import AppTest

    runs = mixed_runs(store)
    monkeypatch.setenv("MEDTL_RUNS", str(store.root))
    page = str(Path(__file__).resolve().parents[1] / "pages" / "3_Compare.py")
    at = AppTest.from_file(page, default_timeout=120).run()
    assert not at.exception
    op = next(d.value for d in at.dataframe if "threshold (validation)" in d.value.columns)
    assert op["threshold (validation)"].str.contains("operating point not available: re-run or").all()
    rid = runs["medmnist layer2"][0]
    assert any(f"runs reevaluate {rid}" in v for v in op["threshold (validation)"])
    at.number_input(key="cmp_prevalence").set_value(5.0).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert "AUPRC at 5.0%" in table.columns and "AUROC" in table.columns
    p = store.predictions(rid)
    y, s = p["y_true"], p["y_score"]
    w = np.where(y == 1, 1.0, y.sum() / (1 - y).sum() * 0.95 / 0.05)
    row = table[table["id"] == rid].iloc[0]
    assert row["AUPRC at 5.0%"].startswith(f"{average_precision_score(y, s, sample_weight=w):.3f} [")
    pr = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.proto.id.endswith("-pr"))
    assert [t["name"] for t in pr["data"] if t["name"].startswith("chance")] == ["chance (prevalence 0.05)"]
    assert any("deployment prevalence of 5.0%" in c.value for c in at.caption)
    at.selectbox(key="metric").set_value("test.brier").run()
    assert not at.exception
    brier = at.dataframe[0].value["Brier"].to_numpy(float)
    assert np.all(np.diff(brier[~np.isnan(brier)]) >= 0)  # lower is better: best first
