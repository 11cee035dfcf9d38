import json
import subprocess
import sys

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


def test_page_and_cli_agree(capsys):
    """The page calls toy.compare with the same defaults; the CLI's JSON means are those numbers."""
    from medtl import toy

    main(["toy", "--json"])
    out = json.loads(capsys.readouterr().out)
    res = toy.compare(**{k: v for k, v in toy.DEFAULTS.items()})
    assert out["B"]["auprc"] == float(res["B"].metrics["auprc"].mean())


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
