"""Training what studies need: inline (the CLI), or submitted to a job queue stage after stage."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from medtl.config import RunConfig
from medtl.runs import STATES, RunStore
from medtl.study.config import StudyConfig
from medtl.study.search import plan, planned
from medtl.study.storage import load, save, saved

log = logging.getLogger(__name__)


def advance(store: RunStore, submit: Callable[[RunConfig], Any]) -> list[str]:
    """Submit what every started study needs next (stage 2 once stage 1 is done); for a job queue's hook.

    A study counts as started once one of its runs is in ``store`` in any state. Only runs never
    tried are submitted: a failed or cancelled run is not queued again behind the user's back.

    Returns:
        The keys of the configs submitted.
    """
    tried = store.experiments(states=("done", "queued", "running", "failed", "cancelled", "interrupted"))
    done = store.experiments()
    out = []
    for name in saved(store):
        try:
            s = load(store, name)
        except (OSError, ValueError) as e:  # one broken study.json must not stop the others
            log.warning("study %s cannot be read: %s", name, e)
            continue
        if not any(c.key() in tried for c in s.stage1()):
            continue
        for cfg in planned(s, store, done):
            if cfg.key() not in tried:
                submit(cfg)
                tried[cfg.key()] = ""
                out.append(cfg.key())
    return out


Executor = Callable[[RunConfig], Any]


def run_study(
    study: StudyConfig, store: RunStore, executor: Executor | None = None, on_run: Callable | None = None
) -> dict:
    """Train what the study is missing, stage after stage, until nothing new can be trained.

    Args:
        executor: trains one RunConfig into ``store`` (default: inline with :func:`medtl.train.run`).
        on_run: called as ``on_run(i, total, cfg)`` before each run.

    Returns:
        ``{"trained": n, "failed": n, "missing": n, "errors": [{"run", "name", "state", "error"}]}``
        (missing: runs still needed, e.g. after failures; errors: the runs tried here that did not finish).
    """
    save(study, store)
    executor = executor or (lambda cfg: train_inline(store, cfg))
    tried: set[str] = set()
    trained = failed = 0
    while True:
        todo = [c for c in plan(study, store) if c.key() not in tried]
        if not todo:
            break
        for k, cfg in enumerate(todo, 1):
            if on_run:
                on_run(k, len(todo), cfg)
            tried.add(cfg.key())
            executor(cfg)
            trained += 1
        done = store.experiments()
        failed = sum(k not in done for k in tried)
    latest = store.experiments(states=STATES)
    errors = []
    for key in sorted(k for k in tried if k not in store.experiments() and k in latest):
        st = store.status(latest[key])
        errors.append({"run": latest[key], "name": st.get("name"), "state": st.get("state"), "error": st.get("error")})
    return {"trained": trained, "failed": failed, "missing": len(plan(study, store)), "errors": errors}


def train_inline(store: RunStore, cfg: RunConfig) -> dict:
    from medtl import train

    run_id = store.create(cfg, state="queued")
    return train.run(cfg, store, run_id)
