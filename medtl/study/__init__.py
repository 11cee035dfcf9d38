"""Studies: a named grid of runs over one dataset, the two-stage truncation search, and its results.

The parts, one module each:

- :mod:`~medtl.study.config`: :class:`StudyConfig` (the question: axes over a base run);
- :mod:`~medtl.study.presets`: ready-made studies as records;
- :mod:`~medtl.study.storage`: ``<runs dir>/studies/<name>/study.json`` (and the advisor's tables);
- :mod:`~medtl.study.search`: the runs a study needs now and the cut it selects (validation only);
- :mod:`~medtl.study.schedule`: training them, inline or through a job queue, stage after stage;
- :mod:`~medtl.study.advisor`: starting a search from the cut advisor's top blocks;
- :mod:`~medtl.study.conclusions` and :mod:`~medtl.study.report`: paired comparisons on the test
  split, caveats, sentences, and the self-contained HTML report (imported on their own: they need
  plotting and statistics packages).
"""

from medtl.study.advisor import advise_start, advisor_data, pretrained_inits
from medtl.study.config import CUT_MODES, StudyConfig, cut_names
from medtl.study.presets import PRESETS, Preset, preset
from medtl.study.schedule import advance, run_study, train_inline
from medtl.study.search import pending, plan, planned, search_state, stage2_cuts, val_score
from medtl.study.storage import advice_path, load, load_advice, recent, save, save_advice, saved, study_path

__all__ = [
    "CUT_MODES",
    "PRESETS",
    "Preset",
    "StudyConfig",
    "advance",
    "advice_path",
    "advise_start",
    "advisor_data",
    "cut_names",
    "load",
    "load_advice",
    "pending",
    "plan",
    "planned",
    "preset",
    "pretrained_inits",
    "recent",
    "run_study",
    "save",
    "save_advice",
    "saved",
    "search_state",
    "stage2_cuts",
    "study_path",
    "train_inline",
    "val_score",
]
