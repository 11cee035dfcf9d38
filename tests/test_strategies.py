"""The strategy records drive the comparisons, the diagram and the sweep expansion."""

import pandas as pd

from medtl import compare, plots
from medtl.cli import build_parser
from medtl.cli.runs import expand_sweep
from medtl.strategies import STRATEGIES


def test_cut_depth_and_summary_use_the_effective_cut():
    from medtl.models import registry

    names = [p.name for p in registry.cut_points("resnet18")]
    assert compare.cut_depth("resnet18", "layer2", "finetune") == names.index("full")
    assert compare.cut_depth("resnet18", "layer2", "truncate") == names.index("layer2")
    runs = pd.DataFrame(
        {
            "model.backbone": ["resnet18"] * 3,
            "model.init": ["random"] * 3,
            "data.train_size": [None] * 3,
            "model.strategy": ["finetune", "truncate", "truncate"],
            "model.cut": ["layer2", "layer2", "layer2"],
            "test.auroc": [0.9, 0.7, 0.8],
            "model.params": [11e6, 7e5, 7e5],
            "experiment": ["ft", "ttl", "ttl"],  # the two truncate runs are repeats (seeds 0 and 1)
            "train.seed": [0, 0, 1],
        }
    )
    out = compare.truncation_summary(runs, "test.auroc")
    assert dict(zip(out["cut"], out["count"], strict=True)) == {"layer2": 2, "full": 1}


def test_diagram_has_one_row_per_record():
    rows = plots.strategy_rows(blocks=5, cut_after=4)
    assert list(rows) == [
        f"{s.name} ({s.label})" for s in sorted(STRATEGIES.values(), key=lambda s: s.cut_rule != "none")
    ]
    for s in STRATEGIES.values():
        assert rows[f"{s.name} ({s.label})"] == [s.diagram[0]] * 4 + [s.diagram[1]]
    assert len(plots.strategies_diagram().layout.shapes) == len(STRATEGIES) * 6  # five blocks and a head each


def test_sweep_maps_finetune_to_the_full_network():
    a = build_parser().parse_args(["sweep", "--strategy", "finetune,truncate", "--cut", "layer2,layer3"])
    configs = expand_sweep(a)
    assert sorted(c.model.label for c in configs) == [
        "resnet18 finetune",
        "resnet18 truncate@layer2",
        "resnet18 truncate@layer3",
    ]


def test_one_reference_and_one_name_per_network():
    from medtl.strategies import FULL, canonical, reference

    assert [s.name for s in STRATEGIES.values() if s.reference] == [reference().name] == ["finetune"]
    assert canonical("truncate", FULL) == canonical("finetune", "layer2") == ("finetune", FULL)  # the whole network
    assert canonical("truncate", "layer2") == ("truncate", "layer2")
    assert canonical("linear", FULL) == ("linear", FULL)  # frozen: another network
    assert STRATEGIES["freeze"].at("resnet18", "layer3") == "freezing resnet18 up to layer3"
    assert all("{backbone}" in s.words for s in STRATEGIES.values())
