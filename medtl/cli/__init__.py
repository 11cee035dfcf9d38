"""Command line: ``python -m medtl {toy,...}`` (also installed as ``medtl``).

Each subcommand is a ``(configure, run)`` pair in ``COMMANDS``. User errors (bad values, missing
files) print one clear line on stderr and exit with status 2, never a traceback; set
``MEDTL_DEBUG=1`` to see the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from medtl import __version__
from medtl.cli import advise, analysis, compare, explain, explore, runs, study

# the project's own errors (ValueError: bad values, DamagedRun, Busy) and OS/path errors (StoreWriteError: a full
# disk) are the user's to fix: one line, exit 2. Anything else is a bug: a short traceback, exit 1.
USER_ERRORS = (ValueError, FileNotFoundError, PermissionError, NotADirectoryError, IsADirectoryError, OSError)


COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "toy": ("ROC vs PR on the ranked-classifier imbalance example", explore.toy_configure, explore.toy_run),
    "models": ("backbones, their cut points, parameters and MACs", explore.models_configure, explore.models_run),
    "data": ("dataset splits, counts and a preview contact sheet", explore.data_configure, explore.data_run),
    "train": ("train one run and record it in the runs folder", runs.train_configure, runs.train_run),
    "sweep": (
        "expand a grid of runs (comma-separated axes) and train them, skipping done ones",
        runs.sweep_configure,
        runs.sweep_run,
    ),
    "runs": ("list, show, delete or resume recorded runs", runs.runs_configure, runs.runs_run),
    "explain": (
        "Grad-CAM maps of a run and how well they point at the lesions",
        explain.explain_configure,
        explain.explain_run,
    ),
    "advise": ("score every cut of a pretrained backbone before training", advise.advise_configure, advise.advise_run),
    "similarity": (
        "linear CKA per cut between a run's network before and after training",
        analysis.similarity_configure,
        analysis.similarity_run,
    ),
    "study": (
        "run a study (a preset or saved grid; search = two stages) or show its conclusions",
        study.study_configure,
        study.study_run,
    ),
    "compare": (
        "paired statistics of two runs on the same test images (bootstrap, DeLong)",
        compare.compare_configure,
        compare.compare_run,
    ),
    "report": ("write a study's self-contained HTML report", study.report_configure, study.report_run),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medtl", description="MedTL Studio: transfer learning for medical images.")
    parser.add_argument("--version", action="version", version=f"medtl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_, configure, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        configure(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    try:
        return args._run(args)
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (kept open until exit)
        return 0
    except USER_ERRORS as e:
        if os.environ.get("MEDTL_DEBUG"):
            raise
        print(f"medtl {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"medtl {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - a bug: where it happened, briefly, and how to see all of it
        if os.environ.get("MEDTL_DEBUG"):
            raise
        import traceback

        last = traceback.extract_tb(e.__traceback__)[-3:]
        where = "".join(traceback.format_list(last))
        print(
            f"medtl {args.command}: internal error (a bug in MedTL): {type(e).__name__}: {e}\n{where}"
            "set MEDTL_DEBUG=1 for the whole traceback",
            file=sys.stderr,
        )
        return 1
