"""Config: a torch-free leaf, one validation mechanism, registry checks on the model side, old config files."""

import dataclasses
import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from medtl import datasets, fields
from medtl.cli import main
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.runs import RunStore

FIXTURE = Path(__file__).parent / "fixtures" / "main_run"


def test_config_imports_no_torch():
    code = "import medtl.config, sys; medtl.config.RunConfig(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: TrainConfig(weight_decay="0.1"), "weight_decay must be a number in [0, 1). Got '0.1'"),
        (lambda: DataConfig(seed="x"), "seed must be a whole number. Got 'x'"),
        (lambda: DataConfig(frontal_only="no"), "frontal_only must be true or false. Got 'no'"),
        (lambda: ModelConfig(slim="yes"), "slim must be true or false. Got 'yes'"),
        (lambda: TrainConfig(epochs=0), "epochs must be at least 1. Got 0"),
        (lambda: TrainConfig(epochs=2.5), "epochs must be a whole number at least 1. Got 2.5"),
        (lambda: TrainConfig(threads=True), "threads must be a whole number at least 1 or None. Got True"),
        (lambda: TrainConfig(optimizer="lion"), "optimizer must be one of adam, adamw, sgd. Got 'lion'"),
        (lambda: ModelConfig(head="max"), "head must be one of gap, flatten. Got 'max'"),
        (lambda: ModelConfig(strategy="magic"), "strategy must be one of truncate, finetune"),
        (lambda: ModelConfig(dropout=1.5), "dropout must be in [0, 1). Got 1.5"),
        (lambda: ModelConfig(init="web"), "init must be 'random', 'imagenet', 'file:<path>' or 'run:<id>'. Got 'web'"),
        (lambda: DataConfig(uncertainty="maybe"), "uncertainty must be one of ones, zeros, ignore. Got 'maybe'"),
        (lambda: DataConfig(prevalence=1.0), "prevalence must be in (0, 1). Got 1.0"),
        (lambda: DataConfig(image_size=600), "image_size must be in [28, 512]. Got 600"),
        (lambda: DataConfig(image_size=300), "image_size must be at most 256 px for SynthCXR. Got 300"),
        (lambda: DataConfig(dataset="pacs:/x"), "dataset must be 'synthetic' or one of 'medmnist:'"),
        (lambda: DataConfig(dataset="folder:"), "dataset 'folder:' needs a path after 'folder:'"),
        (lambda: DataConfig(finding="tumour"), "finding must be one of nodule, opacity"),
        (lambda: RunConfig(train={"epochs": 1}), "train must be a TrainConfig. Got {'epochs': 1}"),
    ],
)
def test_every_wrong_value_is_one_line_naming_field_value_and_allowed(make, message):
    with pytest.raises(ValueError) as e:
        make()
    assert message in str(e.value) and "\n" not in str(e.value)


def test_kind_options_are_checked_only_for_their_kind(tmp_path):
    DataConfig(dataset=f"folder:{tmp_path}", prevalence=1.0)  # a SynthCXR setting: not used by a folder
    assert DataConfig(dataset=f"folder:{tmp_path}").finding is None  # chosen from the data when loaded
    assert DataConfig().finding == "nodule"  # a fixed set of targets stores its default


def test_from_dict_checks_types_too():
    d = RunConfig().to_dict()
    d["train"]["weight_decay"] = "0.1"
    with pytest.raises(ValueError, match=r"weight_decay must be a number in \[0, 1\). Got '0.1'"):
        RunConfig.from_dict(d)


def test_registry_names_are_checked_lazily_with_the_same_messages(tmp_path):
    cfg = RunConfig(model=ModelConfig(backbone="vgg16"))  # constructing imports no registry
    from medtl.models.registry import check_model, check_run

    with pytest.raises(ValueError, match="Valid backbones: resnet18"):
        check_run(cfg)
    with pytest.raises(ValueError, match="Unknown cut 'layer9'"):
        check_model(ModelConfig(cut="layer9"))
    with pytest.raises(ValueError, match="no ImageNet weights"):
        check_model(ModelConfig("cbr_tiny", "truncate", "cbr2", "imagenet"))
    small = RunConfig(DataConfig(image_size=64), ModelConfig("cbr_tiny", "finetune", "full"))
    with pytest.raises(ValueError, match="at least 91 px"):
        check_run(small)
    store = RunStore(tmp_path / "runs")
    with pytest.raises(ValueError, match="Valid backbones"):
        store.create(cfg)
    assert store.ids() == []  # nothing recorded with a bad name


def test_wrong_types_in_a_config_file_are_one_line_and_exit_2(tmp_path, capsys):
    d = json.loads((FIXTURE / "config.json").read_text())
    d["train"]["weight_decay"] = "0.1"
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(d))
    assert main(["train", "--config", str(f), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "medtl train: error: weight_decay must be a number in [0, 1). Got '0.1'"
    f.write_text(json.dumps({"data": [], "model": {}, "train": {}}))
    assert main(["train", "--config", str(f), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "data must be a JSON object" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_a_run_folder_of_the_previous_version_loads_as_the_same_experiment(tmp_path):
    """tests/fixtures/main_run holds config.json, status.json and metrics.json of a run recorded by
    the version before dataset records (``python -m medtl train --n-images 80 --image-size 32
    --epochs 1 --finding opacity --train-size 50% --seed 3``)."""
    raw = json.loads((FIXTURE / "config.json").read_text())
    status = json.loads((FIXTURE / "status.json").read_text())
    cfg = RunConfig.load(FIXTURE / "config.json")
    d = cfg.to_dict()
    # every key kept; the one field added since (issue 21: where test.op's threshold is read) has its default
    assert d["train"].pop("operating_point") == "sensitivity:0.9"
    assert d == raw
    # the bootstrap count left the key (it does not change the trained model): the old key no longer matches
    assert status["key"] == "39c7babb1efac573" and cfg.key() != status["key"]
    assert cfg.name == status["name"]
    store = RunStore(tmp_path / "runs")
    run_id = store.create(cfg)
    assert store.config(run_id) == cfg
    import argparse

    from medtl.cli.runs import run_config_from_args, train_configure

    p = argparse.ArgumentParser()
    train_configure(p)
    again = run_config_from_args(p.parse_args(["--config", str(FIXTURE / "config.json")]))
    assert again == cfg and again.key() == cfg.key()


def test_old_run_folders_are_found_under_the_new_key_and_rekeyed_once(tmp_path, capsys):
    """Keys are recomputed from config.json wherever runs are matched, so a sweep skips the fixture
    run recorded under the old key; ``runs --rekey`` brings its status.json up to date, once."""
    import shutil

    from medtl.cli import main

    root = tmp_path / "runs"
    old = root / "20261126-113438-000abcd"
    shutil.copytree(FIXTURE, old)
    store = RunStore(root)
    cfg = store.config(old.name)
    assert store.experiments() == {cfg.key(): old.name}  # found although status.json says 39c7babb...
    # the same experiment asked with a bootstrap count and a spelling of its size the old run did not use
    same = cfg.replace(train=cfg.train.replace(bootstrap=200), data=cfg.data.replace(train_size="50%"))
    assert same.key() == cfg.key()
    args = ["--runs-dir", str(root)]
    assert main(["runs", "--rekey", *args]) == 0
    assert f"{old.name}  39c7babb1efac573 -> {cfg.key()}" in capsys.readouterr().out
    st = store.status(old.name)
    assert st["key"] == cfg.key() and st["keys_before"] == ["39c7babb1efac573"] and st["state"] == "done"
    assert main(["runs", "--rekey", *args]) == 0  # idempotent
    assert "0 of 1 run(s) rekeyed" in capsys.readouterr().out
    assert store.status(old.name)["keys_before"] == ["39c7babb1efac573"]
    sweep = ["sweep", "--config", str(old / "config.json"), "--train-size", "0.5,50%", "--dry-run", *args]
    assert main(sweep) == 0
    out = capsys.readouterr().out
    assert "1 run(s)" in out and "0 to train" in out, out  # 0.5 and 50% are one experiment, already done


# DataConfig's fields that every dataset kind has; any other field is one kind's option, declared in its record
GENERAL_FIELDS = {
    "dataset",
    "finding",
    "image_size",
    "train_size",
    "seed",
    "split_seed",
    "skip_bad",
    "val_fraction",
    "test_fraction",
}


def _option_field_problems(kinds, cls=DataConfig) -> list[str]:
    """What keeps the records' options and ``cls``'s fields from being one declaration: an option without a
    field of its type and default, an option with two owners, a kind-specific field no record owns."""
    hints, defaults = typing.get_type_hints(cls), {f.name: f.default for f in dataclasses.fields(cls)}
    found, owner = [], {}
    for kind in kinds:
        for o in kind.options:
            where = f"{kind.name} option {o.name!r}"
            if o.name in owner:
                found.append(f"{where} is also an option of {owner[o.name]}")
            owner[o.name] = kind.name
            if o.name not in hints:
                found.append(f"{where} has no {cls.__name__} field")
                continue
            if hints[o.name] != o.annotation:
                found.append(f"{where} is {o.annotation}, its field {hints[o.name]}")
            if defaults[o.name] != o.default:
                found.append(f"{where} defaults to {o.default!r}, its field to {defaults[o.name]!r}")
            try:
                fields.check(o.name, o.default, o.annotation, o.rule)
            except ValueError as e:
                found.append(f"{where}: its default is not a valid value ({e})")
    found += [
        f"{cls.__name__}.{f} belongs to no dataset kind" for f in sorted(set(hints) - GENERAL_FIELDS - set(owner))
    ]
    return found


def test_every_kind_option_is_one_dataconfig_field_of_the_records_type_and_default():
    """A kind option is declared once, in its record (the form's widget, the CLI's help and the config's
    check read it); DataConfig's flat field of that name, which keeps every config.json's keys, matches it."""
    assert _option_field_problems(datasets.KINDS.values()) == []
    synth = datasets.KINDS["synthetic"]
    n_images = synth.options[0]
    wrong = [
        dataclasses.replace(synth, options=(dataclasses.replace(n_images, type=float), *synth.options[1:])),
        dataclasses.replace(datasets.KINDS["csv"], options=(datasets.Option("label_column", "label", "Label", "CSV"),)),
    ]
    others = [k for k in datasets.KINDS.values() if k.name not in ("synthetic", "csv")]
    assert _option_field_problems([*wrong, *others]) == [
        "synthetic option 'n_images' is <class 'float'>, its field <class 'int'>",
        "csv option 'label_column' has no DataConfig field",
    ]
    assert _option_field_problems([k for k in datasets.KINDS.values() if k.name != "chexpert"]) == [
        "DataConfig.frontal_only belongs to no dataset kind",
        "DataConfig.uncertainty belongs to no dataset kind",
    ]


def test_dataset_records_own_the_options_and_defaults():
    for name, (kind, option) in datasets.options().items():
        assert option.help.startswith(kind.title), name
    assert set(datasets.KINDS) == {"synthetic", "medmnist", "chexpert", "folder", "csv"}
    kind, source = datasets.parse_spec("medmnist:pneumoniamnist@64")
    assert kind.name == "medmnist" and source == "pneumoniamnist@64"
    assert kind.load_function().__name__ == "medmnist"
    with pytest.raises(ValueError, match="takes no path"):
        datasets.parse_spec("synthetic:/x")


def test_cli_switching_the_dataset_kind_drops_the_synthetic_target(tmp_path):
    import argparse

    from medtl.cli.runs import run_config_from_args, train_configure

    p = argparse.ArgumentParser()
    train_configure(p)
    cfg = run_config_from_args(p.parse_args(["--dataset", f"folder:{tmp_path}"]))
    assert cfg.data.finding is None
    with pytest.raises(ValueError, match="--all-views is an option of CheXpert, not of image folder"):
        run_config_from_args(p.parse_args(["--dataset", f"folder:{tmp_path}", "--all-views"]))
    cfg = run_config_from_args(p.parse_args(["--finding", "effusion"]))
    assert cfg.data.finding == "effusion"
