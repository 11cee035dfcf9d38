"""Run states: the one set of names that ``status.json``, the run store, the queue, studies and pages use.

A :class:`State` is a ``str`` (``State.DONE == "done"``, ``json.dumps`` writes ``"done"``), so status files
keep their strings and a state read from one compares equal to its member. This module imports nothing:
the pages and ``ui/`` use it without loading the library.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """What became of a run (``status.json``'s ``state``)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # its writer died or the app stopped: resumable in its folder
    DAMAGED = "damaged"  # a run whose files cannot be read: what readers report, never written


# the states a status file holds
STATES: tuple[State, ...] = tuple(s for s in State if s is not State.DAMAGED)
# a writer is on it (or will be)
ACTIVE: tuple[State, ...] = (State.QUEUED, State.RUNNING)
# no writer will touch it again (done first)
FINISHED: tuple[State, ...] = (State.DONE, State.FAILED, State.CANCELLED, State.INTERRUPTED)
# finished without a result: retried or resumed by hand
STOPPED: tuple[State, ...] = (State.FAILED, State.CANCELLED, State.INTERRUPTED)

__all__ = ["ACTIVE", "FINISHED", "STATES", "STOPPED", "State"]
