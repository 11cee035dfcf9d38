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
