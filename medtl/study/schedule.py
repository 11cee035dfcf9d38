"""Training what studies need: inline (the CLI), or submitted to a job queue stage after stage."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from medtl.config import RunConfig
from medtl.runs import RunStore
from medtl.states import ACTIVE, STATES, State
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
    tried = store.experiments(states=STATES)
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
                tried[cfg.key()] = ""
                try:
                    submit(cfg)
                except ValueError as e:  # another writer of the folder took it (Busy), or it is done by now
                    log.info("study %s: %s not queued: %s", name, cfg.name, e)
                    continue
                out.append(cfg.key())
    return out


Executor = Callable[[RunConfig], Any]


def run_study(
    study: StudyConfig, store: RunStore, executor: Executor | None = None, on_run: Callable | None = None
) -> dict:
    """Train what the study is missing, stage after stage, until nothing new can be trained.

    Args:
        executor: trains one RunConfig into ``store`` and returns its status (``skipped`` when done or another
            writer has it; default: :func:`train_inline`).
        on_run: called as ``on_run(i, total, cfg)`` before each run.

    Returns:
        ``{"trained": n, "failed": n, "elsewhere": n, "missing": n, "errors": [{"run", "name", "state", "error"}]}``
        (elsewhere: runs another live writer is training; missing: runs still needed, e.g. after failures;
        errors: the runs tried here that did not finish).
    """
    save(study, store)
    executor = executor or (lambda cfg: train_inline(store, cfg))
    tried: set[str] = set()
    trained = 0
    while True:
        todo = [c for c in plan(study, store) if c.key() not in tried]
        if not todo:
            break
        for k, cfg in enumerate(todo, 1):
            if on_run:
                on_run(k, len(todo), cfg)
            tried.add(cfg.key())
            status = executor(cfg)
            trained += not (isinstance(status, dict) and status.get("skipped"))
    done, latest = store.experiments(), store.experiments(states=(*STATES, State.DAMAGED))
    errors, elsewhere = [], 0
    for key in sorted(k for k in tried if k not in done and k in latest):
        st = store.status(latest[key])
        if st.get("state") in ACTIVE:  # another live writer trains it
            elsewhere += 1
            continue
        errors.append({"run": latest[key], "name": st.get("name"), "state": st.get("state"), "error": st.get("error")})
    return {
        "trained": trained,
        "failed": len(errors),
        "elsewhere": elsewhere,
        "missing": len(plan(study, store)),
        "errors": errors,
    }


def train_inline(store: RunStore, cfg: RunConfig) -> dict:
    """Train one run in this process through its claim: skipped when done or another live writer has it,
    a dead writer's folder resumed."""
    from medtl import train

    start = store.start(cfg, state=State.QUEUED)
    if start.action in ("done", "busy"):
        return {"state": start.action, "skipped": True}
    return train.run(cfg, store, start.run_id, resume=start.action == "resume")
