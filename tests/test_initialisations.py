"""Initialisation kinds as records: parsing, labels, offline availability and state dicts."""

import re
import subprocess
import sys

import pytest
import torch

from medtl import initialisations as I
from medtl.config import ModelConfig
from medtl.runs import RunStore


def test_specs_parse_into_their_records():
    assert I.parse("random").kind is I.INITS["random"] and not I.parse("random").pretrained
    assert I.parse("imagenet").kind.published
    f = I.parse("file:/data/sd.pt")
    assert (f.kind.name, f.ref, f.spec) == ("file", "/data/sd.pt", "file:/data/sd.pt")
    assert I.parse("run:abc").kind.store
    for bad in ("imagenett", "imagenet:x", "run", "", 3):
        with pytest.raises(ValueError, match="init must be"):
            I.parse(bad)
    assert I.allowed().startswith("'random', 'imagenet', 'file:<path>'")
    with pytest.raises(ValueError, match="init must be " + re.escape(I.allowed())):
        ModelConfig(init="random:")


def test_labels_and_typed_sources():
    assert I.label("run:20250101-120000-565565f") == "run:…565565f"
    assert I.label("file:C:\\w\\sd.pt") == "file:sd.pt" and I.label("file:/a/b/sd.pt") == "file:sd.pt"
    assert I.label("imagenet") == "imagenet" and I.label("nonsense") == "nonsense"
    assert I.as_spec(" /a/sd.pt ") == "file:/a/sd.pt" and I.as_spec("run:x") == "run:x" and I.as_spec("") == ""


def test_availability_offline(tmp_path):
    assert I.availability("random", "resnet18", "IMAGENET1K_V1").ok
    miss = I.availability("file:" + str(tmp_path / "no.pt"), "resnet18", "IMAGENET1K_V1")
    assert not miss.ok and "does not exist" in miss.reason
    assert "Enter the path" in I.availability("file:", "resnet18", "IMAGENET1K_V1").reason
    store = RunStore(tmp_path / "runs")
    assert "No run nope" in I.availability("run:nope", "resnet18", "IMAGENET1K_V1", store).reason
    assert "runs folder" in I.availability("run:nope", "resnet18", "IMAGENET1K_V1").reason
    w = I.availability("imagenet", "resnet18", "IMAGENET1K_V1")  # conftest points TORCH_HOME at an empty folder
    assert not w.ok and "not available offline" in w.reason and w.file.endswith(".pth")
    assert "none exist" in I.availability("imagenet", "cbr_tiny", "IMAGENET1K_V1").reason


def test_file_source_gives_the_backbone_part(tmp_path):
    sd = {"backbone.conv1.weight": torch.ones(2), "head.3.weight": torch.zeros(1)}
    torch.save({"state_dict": sd}, tmp_path / "model.pt")
    got = I.state_dict(f"file:{tmp_path / 'model.pt'}", "resnet18", "IMAGENET1K_V1")
    assert set(got) == {"conv1.weight"}
    assert I.state_dict("random", "resnet18", "IMAGENET1K_V1") is None
    with pytest.raises(ValueError, match="caller that owns the RunStore"):
        I.state_dict("run:x", "resnet18", "IMAGENET1K_V1")


def test_the_record_module_imports_no_torch():
    code = "import sys, medtl.initialisations, medtl.config; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
