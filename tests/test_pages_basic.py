"""AppTest smoke tests for app.py and pages/1_ROC_vs_PRC.py."""

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from medtl import toy
from ui.nav import PAGES

ROOT = Path(__file__).resolve().parents[1]
ROC_PAGE = str(ROOT / "pages" / "1_ROC_vs_PRC.py")
CONFUSION, AT_PREVALENCE, AT_SENSITIVITY, SUMMARY = range(4)  # the ROC page's tables, in page order


@pytest.mark.slow
def test_home_renders():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not at.exception
    assert at.title[0].value == "MedTL Studio"
    assert any("System status" in e.label for e in at.expander)
    headers = [h.value for h in at.subheader]
    assert {"SynthCXR: the embedded dataset", "Runs", "ImageNet weights"} <= set(headers)
    from medtl.strategies import STRATEGIES

    assert f"2 · {len(STRATEGIES)} ways to transfer" in headers  # the strategy records, not a number typed in
    levels = at.get("plotly_chart")[1].proto.spec  # the diagram beside it: a row per record
    assert all(f"{s.name} ({s.label})" in levels for s in STRATEGIES.values())
    weights = at.dataframe[0].value
    assert list(weights["backbone"])[:2] == ["resnet18", "resnet50"]
    assert set(weights["weights"]) == {"✗ not downloaded", "none exist for this backbone"}  # offline, nothing cached
    assert len(at.get("image")) == 1  # the SynthCXR gallery


@pytest.mark.slow
def test_home_links_every_page_of_the_navigation():
    """The Pages column is ui/nav.PAGES: one link per page, titled as in the sidebar, its description below."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not at.exception
    links = [(e.proto.label, e.proto.page, e.proto.icon) for e in at.get("page_link")]
    assert links == [(p.title, Path(f).stem.split("_", 1)[1], p.icon) for f, p in PAGES.items()]
    captions = [c.value for c in at.caption]
    assert all(p.description in captions for p in PAGES.values())


def _roc(**settings) -> AppTest:
    """The ROC page, run once, then with ``settings`` typed into its number inputs (in order)."""
    at = AppTest.from_file(ROC_PAGE, default_timeout=60).run()
    for key, value in settings.items():
        at.number_input(key=key).set_value(value).run()
    assert not at.exception
    return at


def _summary(params: dict) -> pd.DataFrame:
    """The "Over N draws" table as the library computes it for ``params``."""
    res = toy.compare(**params)
    return pd.DataFrame(
        {
            f"{n} (top {r.k})": [f"{s['mean']:.4f} ± {s['std']:.4f}" for s in r.summary().values()]
            for n, r in res.items()
        },
        index=["AUROC", "AUPRC (average precision)", "AUPRC (trapezoid)"],
    )


def _threshold(at: AppTest) -> int:
    return at.slider(key="threshold").value


def _legends(at: AppTest) -> list[str]:
    return [t.get("name", "") for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]


def test_roc_page_defaults():
    at = _roc()
    assert not at.error and not at.info
    assert _threshold(at) == toy.DEFAULT_THRESHOLD == 12
    assert at.dataframe[SUMMARY].value.equals(_summary(toy.DEFAULTS))
    assert at.dataframe[SUMMARY].value.iloc[0, 0].startswith("0.99")  # A's AUROC mean
    conf = at.dataframe[0].value
    assert list(conf["TP"] + conf["FP"]) == [12, 12]  # the top 12 flagged, for both classifiers
    assert conf.loc["A", "TP"] == 10  # A puts every positive in its top 12
    assert {"A (top 12) · mean AUROC 0.999 · mean AP 0.856", "chance"} <= set(_legends(at))


@pytest.fixture(scope="module")
def default_summary() -> pd.DataFrame:
    """The ROC page's "Over N draws" table at the defaults."""
    return _roc().dataframe[SUMMARY].value


def _means(cell: str) -> float:
    """The mean of a "mean ± std" cell."""
    return float(cell.split(" ± ")[0])


def _rank_metrics(labels: np.ndarray) -> dict[str, float]:
    """Mean AUROC and AP over draws of labels by rank (scores falling with rank, no ties), from the ranks of the
    positives alone: the i-th positive (1-based) at rank r has r + 1 - i negatives above it and precision i / (r + 1)."""
    n_pos, n = int(labels[0].sum()), labels.shape[1]
    ranks = np.flatnonzero(labels).reshape(len(labels), n_pos) % n
    i = np.arange(1, n_pos + 1)
    auroc = 1 - (ranks + 1 - i).sum(axis=1) / (n_pos * (n - n_pos))
    return {"auroc": float(auroc.mean()), "auprc": float((i / (ranks + 1)).mean(axis=1).mean())}


@pytest.mark.parametrize(
    "key, value, moves",
    [
        ("n_pos", 11, {"A", "B"}),
        ("n_neg", 500, {"A", "B"}),
        ("k_a", 25, {"A"}),  # A and B draw from their own random streams: one k moves one classifier
        ("k_b", 60, {"B"}),
        ("draws", 30, {"A", "B"}),
        ("seed", 7, {"A", "B"}),
    ],
)
@pytest.mark.slow
def test_roc_page_every_number_input(key, value, moves, default_summary):
    """Each number input changes what it should and only that: the classifiers it concerns get the AUROC and AP
    of toy's draws for the new settings (in the summary, the legends and the gaps; counted from the positives'
    ranks here, test_toy checks them against scikit-learn), the others keep theirs; the counts in the confusion
    table add up to the new positives and negatives; the threshold stays."""
    at = _roc(**{key: value})
    assert not at.error
    params = {**toy.DEFAULTS, key: value}
    summary, old = at.dataframe[SUMMARY].value, default_summary
    legends = [x for x in _legends(at) if "AUROC" in x]
    want = {}
    for i, (name, r) in enumerate(toy.compare(**params).items()):
        column = summary.iloc[:, i]
        assert column.name == f"{name} (top {r.k})"
        assert column.equals(old.iloc[:, i].rename(column.name)) == (name not in moves), name
        want[name] = _rank_metrics(r.labels)
        assert _means(column["AUROC"]) == pytest.approx(want[name]["auroc"], abs=6e-5)
        assert _means(column["AUPRC (average precision)"]) == pytest.approx(want[name]["auprc"], abs=6e-5)
        mean_auroc, mean_ap = (float(legends[i].split(f"mean {m} ")[1].split(" ")[0]) for m in ("AUROC", "AP"))
        assert legends[i].startswith(f"{name} (top {r.k}) · ")
        assert (mean_auroc, mean_ap) == pytest.approx((want[name]["auroc"], want[name]["auprc"]), abs=6e-4)
    gap = want["A"]["auprc"] - want["B"]["auprc"]
    assert any(f"average precision differs by {gap:.3f}" in m.value for m in at.markdown)
    conf = at.dataframe[CONFUSION].value
    assert list(conf["TP"] + conf["FN"]) == pytest.approx([params["n_pos"]] * 2)
    assert list(conf["FP"] + conf["TN"]) == pytest.approx([params["n_neg"]] * 2)
    assert _threshold(at) == 12 and at.slider(key="threshold").max == params["n_pos"] + params["n_neg"]
    assert any(f"Over {params['draws']} draws" == h.value for h in at.subheader)


@pytest.mark.slow
def test_roc_page_slider_and_toggle():
    at = _roc()
    at.slider(key="threshold").set_value(30).run()
    conf = at.dataframe[0].value
    assert list(conf["TP"]) == [10, 10]  # at the top 30 both classifiers have found every positive
    assert conf.loc["B", "FP"] == 20
    assert any(h.value == "At the threshold: top 30 predicted positive" for h in at.subheader)
    bands = sum("95% band" in n for n in _legends(at))
    at.toggle(key="bands").set_value(False).run()
    assert not at.exception
    assert bands == 2 and not any("95% band" in n for n in _legends(at))


@pytest.mark.slow
@pytest.mark.parametrize("key, value", [("n_neg", 500), ("k_b", 60), ("draws", 30), ("n_pos", 11), ("seed", 3)])
def test_roc_page_keeps_the_threshold(key, value):
    at = _roc()
    at.slider(key="threshold").set_value(40).run()
    at.number_input(key=key).set_value(value).run()
    assert not at.exception and not at.error and not at.info
    assert _threshold(at) == 40 == at.session_state["roc_threshold"]
    assert any(h.value == "At the threshold: top 40 predicted positive" for h in at.subheader)
    conf = at.dataframe[0].value
    assert list(conf["TP"] + conf["FP"]) == pytest.approx([40, 40])


@pytest.mark.slow
def test_roc_page_clamps_the_threshold_and_says_so():
    at = _roc()
    at.slider(key="threshold").set_value(40).run()
    at.number_input(key="n_neg").set_value(20).run()  # 30 images now
    assert not at.exception and not at.error
    assert _threshold(at) == 30 and at.slider(key="threshold").max == 30
    assert [i.value for i in at.info] == [
        "The threshold was the top 40, more than the 30 images there are now: it is set to 30."
    ]
    at.number_input(key="n_neg").set_value(0).run()  # a bad setting hides the slider ...
    assert not at.slider and at.error
    at.number_input(key="n_neg").set_value(990).run()  # ... and the threshold survives it
    assert _threshold(at) == 30 and not at.info and not at.exception


@pytest.mark.slow
def test_roc_page_reset_restores_every_default():
    at = _roc(n_pos=11, n_neg=500, k_a=25, k_b=60, draws=30, seed=7)
    at.slider(key="threshold").set_value(40).run()
    at.radio(key="curve_kind").set_value("one draw").run()
    at.toggle(key="bands").set_value(False).run()
    at.button(key="reset").click().run()
    assert not at.exception and not at.error and not at.info
    assert {k: at.number_input(key=k).value for k in toy.DEFAULTS} == toy.DEFAULTS
    assert _threshold(at) == toy.DEFAULT_THRESHOLD
    assert at.radio(key="curve_kind").value == "mean over draws" and at.toggle(key="bands").value is True
    fresh = _roc()
    for got, want in zip(at.dataframe, fresh.dataframe, strict=True):
        assert got.value.equals(want.value)


@pytest.mark.parametrize(
    "settings, errors",
    [
        ({"n_neg": 0}, ["Negatives: must be at least 1. Got 0"]),
        ({"k_a": 3}, ["Top k of classifier A: must lie between the number of positives (10) and of all examples"]),
        ({"k_b": 5000}, ["Top k of classifier B: must lie between the number of positives (10) and of all examples"]),
        ({"n_pos": 20}, ["Top k of classifier A: must lie between the number of positives (20)"]),
        ({"k_a": 3, "k_b": 2000}, ["Top k of classifier A: ", "Top k of classifier B: "]),
        ({"n_neg": 199_990}, ["Random draws: must be at most 100 for 200,000 examples"]),
        ({"n_neg": 0, "k_a": 5000}, ["Negatives: must be at least 1. Got 0"]),  # not A: its range needs the counts
    ],
)
@pytest.mark.slow
def test_roc_page_bad_setting_blames_its_field(settings, errors):
    at = _roc(**settings)
    got = [e.value for e in at.error]
    assert len(got) == len(errors) and all(g.startswith(w) for g, w in zip(got, errors, strict=True))
    assert all("*" not in g and "`" not in g for g in got)  # plain text
    assert not at.slider and not at.dataframe  # nothing drawn from settings that do not work


def test_plain_text_is_itself_in_markdown():
    """ui.text.plain: Markdown, directives and autolinks escaped or broken, the characters unchanged."""
    from ui.text import WORD_JOINER, plain

    for raw in ("![px](http://127.0.0.1:9/px.png)", "see www.x.org", "me@x.org", "**b** :red[x] $x$ <img>"):
        s = plain(raw)
        assert s.replace("\\", "").replace(WORD_JOINER, "") == raw
        assert "://" not in s and "www." not in s and "@x" not in s


def _array(v) -> np.ndarray:
    """A Plotly JSON array: a list, or numpy's bytes as ``{"dtype", "bdata"}``."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return np.asarray(v, dtype=float)


def _chart(at: AppTest, name: str) -> dict:
    return next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{name}"))


@pytest.mark.slow
@pytest.mark.parametrize("pct", [None, 1, 5, 20, 50])
def test_roc_page_prevalence_moves_ap_as_the_closed_form_says(pct):
    """The one prevalence control: AUROC stays, AP, precision, the PR chance line and flagged per true
    positive move to their exact values at that prevalence (toy.expected and friends)."""
    at = _roc()
    at.select_slider(key="toy_prevalence").set_value(pct).run()
    assert not at.exception and not at.error
    pi = None if pct is None else pct / 100  # 1% is this set's own (10 of 1,000): the same numbers
    params = toy.DEFAULTS
    table = at.dataframe[AT_PREVALENCE].value
    res = {n: r.at_prevalence(pi) for n, r in toy.compare(**params).items()}
    for name, k in (("A", params["k_a"]), ("B", params["k_b"])):
        col = table[f"{name} (top {k})"]
        exact = toy.expected(params["n_pos"], params["n_neg"], k, pi)
        assert col["AP, exact"] == f"{exact['auprc']:.4f}"
        assert col["AUROC, exact"] == f"{toy.expected(params['n_pos'], params['n_neg'], k)['auroc']:.4f}"
        ap = res[name].metrics["auprc"]
        assert col[f"AP, mean over {params['draws']} draws"] == f"{ap.mean():.4f}"
        assert abs(ap.mean() - exact["auprc"]) < 4 * ap.std() / np.sqrt(ap.size)  # the draws estimate it
        per_tp = 1 + toy.negative_weight(params["n_pos"], params["n_neg"], pi) * (k - 10) / 11
        assert at.dataframe[AT_SENSITIVITY].value.loc["flagged per true positive, exact", f"{name} (top {k})"] == (
            f"{per_tp:.2f}"
        )
    conf = at.dataframe[CONFUSION].value
    assert conf.loc["A", "precision"] == pytest.approx(res["A"].at_cut(12)["precision"])
    assert conf.loc["A", "TP"] + conf.loc["A", "FP"] == 12  # counts stay the images flagged
    chance = [t["name"] for t in _chart(at, "pr")["data"] if t.get("name", "").startswith("chance")]
    assert chance == [f"chance (prevalence {(pi or 0.01):.3g})"]
    aurocs = [float(x.split("AUROC ")[1].split(" ")[0]) for x in _legends(at) if "AUROC" in x]
    assert aurocs == [0.999, 0.99]  # AUROC never moves
    words = f"deployment prevalence of {pct:.1f}%" if pi else "this set's own prevalence (1.00%)"
    assert sum(words in c.value for c in at.caption) >= 4  # every PR figure and table says which prevalence


@pytest.mark.slow
def test_roc_page_prevalence_falls_ap_falls():
    at = _roc()
    ap = []
    for pct in (50, 20, 5, 1):
        at.select_slider(key="toy_prevalence").set_value(pct).run()
        ap.append(float(at.dataframe[AT_PREVALENCE].value.loc["AP, exact", "B (top 30)"]))
    assert ap == sorted(ap, reverse=True) and ap[0] - ap[-1] > 0.5
    fig = _chart(at, "prevalence_fig")
    lines = {t["name"]: _array(t["y"]) for t in fig["data"]}
    assert np.ptp(lines["B (top 30): AUROC (exact)"]) < 1e-12 and np.all(np.diff(lines["B (top 30): AP (exact)"]) > 0)


@pytest.mark.slow
def test_roc_page_operating_point_and_presentation_mode():
    at = _roc()
    at.slider(key="toy_sensitivity").set_value(50).run()
    op = at.dataframe[AT_SENSITIVITY].value
    assert list(op.loc["positives found"]) == ["5 of 10", "5 of 10"]
    assert op.loc["flagged per true positive, exact", "A (top 12)"] == f"{13 / 11:.2f}"
    assert any("A flags 1.18 patients per true positive and B 2.82" in m.value for m in at.markdown)
    at.toggle(key="present").set_value(True).run()
    assert not at.exception
    assert any("<style>" in m.value for m in at.markdown) and not any(
        "Two classifiers rank" in m.value for m in at.markdown
    )
    assert (
        _chart(at, "roc")["layout"]["font"]["size"] == 17 and _chart(at, "pr")["layout"]["height"] == 330 + 5 * 24 + 8
    )  # 5 legend lines
    at.button(key="reset").click().run()
    assert at.toggle(key="present").value is False and at.select_slider(key="toy_prevalence").value is None
    assert at.slider(key="toy_sensitivity").value == 90
