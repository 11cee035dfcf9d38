"""A search that starts from the cut advisor's top blocks, and feature reuse (CKA) per study."""

import json

import numpy as np
import pytest
import torch
import torchvision
from test_study import tiny

from medtl import similarity, study
from medtl.cli import main
from medtl.runs import RunStore
from medtl.study import conclusions, report


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("init") / "resnet18.pt"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return f"file:{path}"


@pytest.fixture(scope="module")
def advised(source, tmp_path_factory):
    """A finished search whose pretrained group started from the advisor's top 2 blocks."""
    store = RunStore(tmp_path_factory.mktemp("runs"))
    s, advice = study.advise_start(tiny("advised").replace(inits=("random", source)), store, top=2, n=60)
    study.save(s, store)
    study.save_advice(s, store, advice)
    result = study.run_study(s, store)
    return s, store, advice, result


def test_start_is_normalised_and_checked(source):
    s = tiny().replace(inits=("random", source), start={"resnet18": ["layer4", "layer2", "layer2.1"]})
    # layer4 is the whole ResNet18 (= full) and layer2.1 is layer2: one name per distinct network
    assert s.start == {"resnet18": ("layer2", "full")}
    assert s.candidates("resnet18", "truncate", source) == ["layer2", "full"]
    assert s.candidates("resnet18", "truncate", "random") == ["stem", "layer1", "layer2", "layer3", "full"]
    assert study.StudyConfig.from_dict(json.loads(s.to_json())) == s
    assert tiny().replace(start="layer2").start == {"resnet18": ("layer2",)}  # the older single-cut form
    with pytest.raises(ValueError, match="keyed by the study's backbones"):
        tiny().replace(start={"resnet50": ["layer2"]})
    with pytest.raises(ValueError, match="cuts of resnet18"):
        tiny().replace(start={"resnet18": ["layer9"]})
    with pytest.raises(ValueError, match="unless cuts is 'search'"):
        tiny(cuts="blocks").replace(start={"resnet18": ["layer2"]})
    with pytest.raises(ValueError, match="start must be a mapping"):
        tiny().replace(start=3)


def test_stage2_stays_inside_the_winning_block_when_stage1_started_late():
    # stage 1 tried only layer3 and full: stage 2 is layer3's own layers and the next block's first, not
    # everything below layer3
    assert study.stage2_cuts("resnet18", "layer3", ["layer3", "full"]) == ["layer3.0", "layer4.0"]
    assert study.stage2_cuts("resnet18", "stem", ["stem", "full"]) == ["layer1.0"]


def test_advisor_refuses_what_it_cannot_advise(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(ValueError, match="pretrained features"):
        study.advise_start(tiny(), store)
    with pytest.raises(ValueError, match="cuts must be 'search'"):
        study.advise_start(tiny(cuts="blocks"), store)


@pytest.mark.slow
def test_search_from_the_advisors_top_blocks(advised, source):
    s, store, advice, result = advised
    assert result["failed"] == 0 and result["missing"] == 0
    ranked = [c["cut"] for c in advice["backbones"]["resnet18"]["cuts"]]
    top = study.StudyConfig.from_dict({**json.loads(s.to_json()), "start": {"resnet18": ranked[:2]}}).start
    assert s.start == top and advice["backbones"]["resnet18"]["init"] == source
    groups = {g["init"]: g for g in study.search_state(s, store)}
    # the pretrained group trained only the advisor's picks and the full network in stage 1 ...
    assert groups[source]["stage1"] == [*s.start["resnet18"], "full"] or set(groups[source]["stage1"]) == {
        *s.start["resnet18"],
        "full",
    }
    # ... the random group every block; both refined inside their winner
    assert groups["random"]["stage1"] == ["stem", "layer1", "layer2", "layer3", "full"]
    for g in groups.values():
        assert g["selected"] in g["stage1"] + g["stage2"]
        assert g["stage2"] == study.stage2_cuts("resnet18", g["stage1_best"], g["stage1"])
    assert study.load_advice(store, s.name) == json.loads(json.dumps(advice, default=str))
    words = " ".join(conclusions.summarize(s, store, n_boot=50)["conclusions"])
    assert f"stage 1 started from the advisor's {', '.join(s.start['resnet18'])}" in words


@pytest.mark.slow
def test_report_has_the_advice_and_feature_reuse_per_study(advised, tmp_path):
    s, store, _, _ = advised
    summary = conclusions.summarize(s, store, n_boot=50)
    sims = similarity.study_similarity(summary, store)
    decided = [g for g in summary["groups"] if g.get("runs")]
    assert len(sims) == sum(1 + (g["selected"] != "full") for g in decided)
    for r in sims.values():
        assert "error" not in r, r
        per_run = [json.loads((store.path(i) / "similarity_flatten_64.json").read_text()) for i in r["runs"]]
        assert np.allclose(r["cka_initial"], np.mean([p["cka_initial"] for p in per_run], axis=0), equal_nan=True)
        assert r["stages"][0] == "stem" and len(r["cka_initial"]) == len(r["stages"]) == len(r["cka_random"])
    html = report.build_report(s, store)
    assert "Where the search started: the cut advisor" in html and "probe AUPRC" in html
    assert "Feature reuse per stage" in html and report.SIMILARITY_CAPTION in html
    table = report.similarity_table(sims)
    assert list(table["configuration"]) == list(sims)
    # saving the study without a start drops the advisor's tables: they describe another search
    study.save(s.replace(start={}), store)
    assert study.load_advice(store, s.name) is None
    assert "Where the search started" not in report.build_report(study.load(store, s.name), store)


@pytest.mark.slow
def test_cli_study_advise(source, tmp_path, capsys):
    runs = tmp_path / "runs"
    argv = ["study", "run", "--preset", "quick", "--name", "adv", "--cuts", "search", "--image-size", "32"]
    argv += ["--init", f"random,{source}", "--runs-dir", str(runs)]
    assert main([*argv, "--advise", "2", "--dry-run"]) == 0
    out = capsys.readouterr()
    assert "stage 1 starts from" in out.err and "advisor, resnet18 from file:" in out.err
    started = out.err.split("stage 1 starts from ")[1].split(" and the full network")[0].split(", ")
    cuts = {ln.split("resnet18 ")[1].split(" ·")[0] for ln in out.out.splitlines() if source in ln}
    # the advised cuts and full fine-tuning only (the random group lists every block)
    assert cuts == {f"truncate@{c}" for c in started if c != "full"} | {"finetune"}
    assert len([ln for ln in out.out.splitlines() if "· random ·" in ln]) == 5
    assert main([*argv[:-2], "--cuts", "blocks", "--runs-dir", str(runs), "--advise", "2"]) == 2
    assert "cuts must be 'search'" in capsys.readouterr().err
