import json
import subprocess
import sys

import pytest

from medtl.cli import main


def test_toy_json_means(capsys):
    assert main(["toy", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"A", "B"}
    assert set(out["A"]) == {"auroc", "auprc", "auprc_trapezoid"}
    assert out["A"]["auroc"] > out["B"]["auroc"] > 0.98
    assert out["A"]["auprc"] - out["B"]["auprc"] > 0.3


def test_toy_table(capsys):
    assert main(["toy", "--draws", "20"]) == 0
    out = capsys.readouterr().out
    assert "A (k=12)" in out and "B (k=30)" in out and "AUPRC (AP)" in out


def test_bad_input_is_a_clear_error_not_a_traceback():
    p = subprocess.run([sys.executable, "-m", "medtl", "toy", "--k-a", "3"], capture_output=True, text=True)
    assert p.returncode == 2
    assert "k must lie between" in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.slow
def test_page_and_cli_agree(capsys):
    """The ROC page and ``medtl toy`` given the same settings (typed into the page's inputs, passed as flags)
    show the same means: every metric of both classifiers, and the page's legends and top k."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from medtl.toy import DEFAULTS

    settings = {"n_pos": 8, "n_neg": 600, "k_a": 15, "k_b": 45, "draws": 40, "seed": 5}
    # every setting, none at its default: a page or a CLI that dropped one would disagree
    assert settings.keys() == DEFAULTS.keys() and all(v != DEFAULTS[k] for k, v in settings.items())
    flags = [a for k, v in settings.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    assert main(["toy", "--json", *flags]) == 0
    cli = json.loads(capsys.readouterr().out)
    at = AppTest.from_file(str(Path(__file__).parents[1] / "pages" / "1_ROC_vs_PRC.py"), default_timeout=60).run()
    for key, value in settings.items():
        at.number_input(key=key).set_value(value)
    at.run()  # all typed, then one rerun
    assert not at.exception and not at.error
    summary = at.dataframe[-1].value  # "Over N draws": mean ± std of each metric
    names = {"auroc": "AUROC", "auprc": "AUPRC (average precision)", "auprc_trapezoid": "AUPRC (trapezoid)"}
    assert list(summary.columns) == ["A (top 15)", "B (top 45)"]
    for column, name in zip(summary.columns, ("A", "B"), strict=True):
        page = {m: summary.loc[row, column].split(" ± ")[0] for m, row in names.items()}
        assert page == {m: f"{cli[name][m]:.4f}" for m in names}, name
    legends = [t.get("name", "") for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]
    assert f"A (top 15) · mean AUROC {cli['A']['auroc']:.3f} · mean AP {cli['A']['auprc']:.3f}" in legends
    assert f"B (top 45) · mean AUROC {cli['B']['auroc']:.3f} · mean AP {cli['B']['auprc']:.3f}" in legends


def test_building_the_parser_does_not_import_torch():
    """Help and light commands stay instant: torch is imported only by the commands that train or explain."""
    code = "import sys; from medtl.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_config_file_with_a_wrong_type_is_one_line_exit_2(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"train": {"weight_decay": "0.1"}}))
    p = subprocess.run(
        [sys.executable, "-m", "medtl", "train", "--config", str(f), "--runs-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == "medtl train: error: weight_decay must be a number in [0, 1). Got '0.1'"


def test_data_folder_without_finding_takes_the_abnormal_class(tmp_path, capsys):
    from data_fixtures import make_class_folders

    root = make_class_folders(tmp_path / "xr", ("normal", "abnormal"), n=10)
    assert main(["data", f"folder:{root}", "--image-size", "28"]) == 0
    out = capsys.readouterr().out
    assert "target 'abnormal'" in out and "positive class 'abnormal' ('normal' is the negative class" in out
    ambiguous = make_class_folders(tmp_path / "pets", ("cat", "dog"), n=4)
    assert main(["train", "--dataset", f"folder:{ambiguous}", "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("medtl train: error: Choose the positive class") and "one of cat, dog" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing recorded


@pytest.mark.slow
def test_train_a_binary_medmnist_file_without_finding_trains_class_1(tmp_path, capsys):
    from data_fixtures import make_medmnist

    from medtl.runs import RunStore

    f = make_medmnist(tmp_path / "pneumoniamnist.npz")
    flags = ["--image-size", "28", "--epochs", "1", "--batch-size", "32", "--threads", "1"]
    assert main(["train", "--dataset", f"medmnist:{f}", *flags, "--runs-dir", str(tmp_path / "runs")]) == 0
    assert "positive class '1' (class 1 of the binary labels" in capsys.readouterr().err
    store = RunStore(tmp_path / "runs")
    (run_id,) = store.ids()
    assert store.config(run_id).data.finding is None and store.status(run_id)["state"] == "done"
    assert store.metrics(run_id)["test"]["n_pos"] == 6  # class 1 of the 12 test images (ids alternate)
