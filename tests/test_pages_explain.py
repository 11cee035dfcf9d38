"""AppTest tests for the Explain page (pages/4_Grad-CAM.py) and "Suggest cuts" on the Train page."""

from pathlib import Path

import pytest
import torch
import torchvision
from streamlit.testing.v1 import AppTest

from medtl.cli import main
from medtl.runs import RunStore

ROOT = Path(__file__).resolve().parents[1]
TRAIN, EXPLAIN = (str(ROOT / "pages" / p) for p in ("2_Train.py", "4_Grad-CAM.py"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny finished runs of one dataset, cut at layer1 and layer2."""
    root = tmp_path_factory.mktemp("runs")
    args = ["sweep", "--cut", "layer1,layer2", "--init", "random", "--n-images", "160", "--image-size", "32"]
    assert main([*args, "--epochs", "1", "--batch-size", "16", "--runs-dir", str(root)]) == 0
    return root


def _app(path: str) -> AppTest:
    return AppTest.from_file(path, default_timeout=180)


def _image_urls(at: AppTest) -> list[str]:
    """The overlays' media URLs (content hashes): the same image bytes give the same URL."""
    return [u.url for img in at.get("image") for u in img.proto.imgs]


@pytest.mark.slow
def test_explain_page_layers_contrast_and_scores(runs, monkeypatch):
    monkeypatch.setenv("MEDTL_RUNS", str(runs))
    at = _app(EXPLAIN).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Explain"
    layer = at.selectbox(key="layer")
    # the cut of each run, or an earlier block both runs keep (layer1 is the shallower run's cut)
    assert layer.options == ["at each run's cut", "stem", "layer1"] and layer.value == "at each run's cut"
    assert at.toggle(key="contrast").value is True
    table = at.dataframe[0].value
    assert list(table.columns[:3]) == ["layer", "map", "lesions"]
    assert sorted(table["layer"]) == ["layer1", "layer2"] and sorted(table["map"]) == ["4×4", "8×8"]
    assert ((table["chance"] > 0) & (table["chance"] <= table["ceiling"])).all()
    assert ((table["pointing game"] >= 0) & (table["pointing game"] <= table["ceiling"])).all()
    # a 4x4 map (layer2 at 32 px) cannot reach most of these small lesions: the page says so
    assert any("4×4 a map cannot point" in w.value and "earlier layer" in w.value for w in at.warning), [
        w.value for w in at.warning
    ]
    headers = [m.value for m in at.markdown if "map" in m.value]
    assert any("layer2 · 4×4 map · contrastive" in h for h in headers), headers
    # columns labelled by what differs (compare.short_labels: the model), the rest said once
    shown = [h.split("**")[1].replace("\u2060", "") for h in headers]  # plain text: word joiners stop autolinks
    assert sorted(shown) == ["resnet18 truncate@layer1", "resnet18 truncate@layer2"]
    captions = [c.value.replace("\u2060", "") for c in at.caption]
    assert "All selected runs: synthetic/nodule · random · 100% · seed 0" in captions, captions

    layer.set_value("stem").run()
    table = at.dataframe[0].value
    assert not at.exception and list(table["layer"]) == ["stem", "stem"] and list(table["map"]) == ["8×8"] * 2
    contrastive = _image_urls(at)
    at.toggle(key="contrast").set_value(False).run()
    assert not at.exception and not any("contrastive" in m.value for m in at.markdown)
    plain = _image_urls(at)
    assert len(plain) == len(contrastive) and plain != contrastive  # the reference map changes the overlays


@pytest.mark.slow
def test_explain_page_runs_change_keeps_a_valid_layer(runs, monkeypatch):
    monkeypatch.setenv("MEDTL_RUNS", str(runs))
    at = _app(EXPLAIN).run()
    store = RunStore(runs)
    deep = next(r for r in store.ids() if store.config(r).model.cut == "layer2")
    at.multiselect(key="runs").set_value([deep]).run()
    assert at.selectbox(key="layer").options == ["at each run's cut", "stem", "layer1", "layer2"]
    at.selectbox(key="layer").set_value("layer2").run()
    at.multiselect(key="runs").set_value(store.ids()).run()  # layer2 is not kept by the layer1 run
    assert not at.exception and at.selectbox(key="layer").value == "at each run's cut"


@pytest.mark.slow
def test_explain_page_cka_on_demand(runs, monkeypatch):
    monkeypatch.setenv("MEDTL_RUNS", str(runs))
    at = _app(EXPLAIN).run()
    assert not at.get("plotly_chart")  # computed only when asked
    at.button(key="cka_btn").click().run()
    assert not at.exception, at.exception
    fig = at.get("plotly_chart")[0].proto.spec
    import json

    traces = json.loads(fig)["data"]
    assert len(traces) == 4  # per run: vs its initialisation, vs a random network
    assert [t["x"] for t in traces[:2]] == [["stem", "layer1", "layer2"]] * 2 or [t["x"] for t in traces[:2]] == [
        ["stem", "layer1"]
    ] * 2
    at.selectbox(key="kind").set_value("all").run()  # stays shown (cached) on later reruns
    assert len(at.get("plotly_chart")) == 1


@pytest.fixture(scope="module")
def state_dict(tmp_path_factory):
    path = tmp_path_factory.mktemp("init") / "resnet18.pt"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


def _tiny_data(at: AppTest) -> AppTest:
    at.number_input(key="n_images").set_value(120).run()
    return at.number_input(key="image_size").set_value(32).run()


@pytest.mark.slow
def test_suggest_cuts_random_init_says_why_not():
    at = _app(TRAIN).run()
    assert not at.exception
    assert any("a random one has nothing pretrained to score" in c.value for c in at.caption)
    assert not any(b.key == "train_suggest" for b in at.button)


@pytest.mark.slow
def test_suggest_cuts_imagenet_offline():
    at = _app(TRAIN).run()
    at.selectbox(key="init").set_value("imagenet").run()
    assert any("not available offline" in e.value for e in at.error)
    assert any("needs the ImageNet weights of resnet18" in c.value for c in at.caption)


@pytest.mark.slow
def test_suggest_cuts_file_init_single_and_sweep(state_dict, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDTL_RUNS", str(tmp_path / "runs"))
    at = _tiny_data(_app(TRAIN).run())
    at.selectbox(key="init").set_value("file").run()
    at.text_input(key="init_file").set_value(str(state_dict)).run()
    at.button(key="train_suggest").click().run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table.columns) == ["cut", "LogME", "AUROC", "AUPRC"]
    assert ((table["AUROC"] >= 0) & (table["AUROC"] <= 1)).all()
    assert set(table["cut"]) == {"stem", "layer1", "layer2", "layer3", "full"}  # layer4 is the full ResNet18
    best = table["cut"].iloc[0]
    at.button(key="train_take").click().run()
    assert not at.exception and at.selectbox(key="cut").value == best

    at.toggle(key="sweep").set_value(True).run()
    at.multiselect(key="inits").set_value(["file"]).run()
    at.text_input(key="init_file").set_value(str(state_dict)).run()
    at.button(key="train_suggest").click().run()  # cached: the same data, backbone and file
    at.number_input(key="train_top").set_value(2).run()
    at.button(key="train_take").click().run()
    assert not at.exception
    assert at.multiselect(key="cuts").value == list(table["cut"].iloc[:2])
    assert at.button(key="queue_btn").label == "Queue 2 runs"
