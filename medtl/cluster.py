"""Sweeps and studies on a SLURM cluster through submitit: one job array, one task per run.

``submit(configs, runs_dir, "slurm", {...})`` submits the runs not done yet as one job array;
``"local"`` runs the same tasks as local processes (submitit's LocalExecutor: what CI tests).
Each task is idempotent: it skips a run already done (same :meth:`RunConfig.key`), resumes an
interrupted one from its ``last.pt``, and on preemption or time-out it marks its run interrupted
and is requeued by submitit (:class:`RunTask` is ``Checkpointable``), resuming where it stopped.
Tasks write the runs folder directly, so it (and submitit's logs, ``<runs>/.submitit``) must be on
a filesystem every node shares; the dashboard shows the runs as they land.
"""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import submitit

from medtl.config import RunConfig
from medtl.runs import RunStore, Start, now
from medtl.states import State

EXECUTORS = ("local", "slurm")  # submitit's: a SLURM job array, or the same tasks as local processes
SHARED_NOTE = (
    "must be on a filesystem that every node reads and writes (a shared one: NFS, Lustre, GPFS, ...); "
    "tasks write their run folders there and the dashboard reads them as they land"
)


def parse_slurm(spec: str | None) -> dict:
    """``"partition=gpu,gpus_per_node=1,timeout_min=120"`` -> submitit AutoExecutor parameters.

    submitit's shared names (``timeout_min``, ``gpus_per_node``, ``cpus_per_task``, ``mem_gb``,
    ``nodes``, ``tasks_per_node``, ``name``) pass as they are; any other is a SlurmExecutor
    parameter (``partition``, ``array_parallelism``, ``account``, ``qos``, ...) and gets ``slurm_``.
    """
    generic = set(submitit.AutoExecutor._typed_parameters())
    slurm = submitit.SlurmExecutor._valid_parameters()
    out: dict = {}
    for item in (spec or "").split(","):
        if not item.strip():
            continue
        key, sep, value = (s.strip() for s in item.partition("="))
        if not sep or not key or not value:
            raise ValueError(f"--slurm takes comma-separated key=value pairs. Got {item.strip()!r} in {spec!r}")
        name = key.removeprefix("slurm_")
        if key not in generic and name not in slurm:
            raise ValueError(
                f"Unknown --slurm parameter {key!r}. Allowed: {', '.join(sorted(generic | slurm))} (see submitit)"
            )
        with contextlib.suppress(ValueError):
            value = int(value)
        out[key if key in generic else f"slurm_{name}"] = value
    return out


def _job_id() -> str | None:
    try:
        return submitit.JobEnvironment().job_id
    except RuntimeError:  # called outside a submitit job (a test, a script)
        return None


def _loadable(path: Path) -> bool:
    """Whether a checkpoint reads back whole (a task killed while saving it leaves it truncated)."""
    import torch

    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError):
        return False
    return True


class RunTask(submitit.helpers.Checkpointable):
    """One run as a submitit task: ``RunTask(runs_dir)(config_dict)``; idempotent and requeueable.

    Args:
        runs_dir: the runs folder (absolute, on a shared filesystem).
    """

    def __init__(self, runs_dir: str):
        self.runs_dir = str(runs_dir)
        self.run_id: str | None = None  # set while training, so that checkpoint() knows the run

    def __call__(self, config: dict) -> dict:
        from medtl import train  # torch loads in the task, not where the array is submitted

        store, cfg = RunStore(self.runs_dir), RunConfig.from_dict(config)
        job_id = _job_id()
        if self.run_id and store.exists(self.run_id):  # this task requeued (preempted, timed out): its own run
            store.claim_for_resume(self.run_id)
            start = Start(self.run_id, "resume")
        else:  # the run's claim: done, trained by another live writer, a dead writer's to resume, or new
            start = store.start(cfg, state=State.QUEUED)
        if start.action in ("done", "busy"):
            return {"run_id": start.run_id, "state": start.action, "skipped": True, "resumed": False}
        run_id, resumed = start.run_id, start.action == "resume"
        self.run_id = run_id
        if resumed and not _loadable(store.path(run_id) / "last.pt"):
            # stopped before its first checkpoint, or while writing it: the run starts over
            (store.path(run_id) / "last.pt").unlink(missing_ok=True)
            store.truncate_history(run_id, 0)
        store.write_status(run_id, job_id=job_id, host=socket.gethostname(), device=None, worker=None)
        status = train.run(cfg, store, run_id, resume=resumed)
        return {"run_id": run_id, "state": status.get("state"), "skipped": False, "resumed": resumed}

    def checkpoint(self, config: dict) -> submitit.helpers.DelayedSubmission:
        """Preempted or timed out: record the run as interrupted and requeue this task (it resumes)."""
        if self.run_id:
            with contextlib.suppress(OSError, ValueError):
                RunStore(self.runs_dir).write_status(
                    self.run_id,
                    state=State.INTERRUPTED,
                    finished=now(),
                    error="Preempted or timed out on the cluster; requeued to resume from its last epoch",
                )
        return super().checkpoint(config)


def submit(
    configs: list[RunConfig],
    runs_dir: str | Path | None = None,
    executor: str = "local",
    parameters: dict | None = None,
    folder: str | Path | None = None,
) -> tuple[list, dict[str, str]]:
    """Submit the runs of ``configs`` not done yet as one job array.

    Args:
        configs: the runs (a sweep's grid or a study's runs).
        runs_dir: the runs folder (default ``$MEDTL_RUNS`` or ``./runs``); must be shared by all nodes.
        executor: ``slurm`` (a job array on the cluster) or ``local`` (processes on this machine).
        parameters: submitit AutoExecutor parameters (see :func:`parse_slurm`).
        folder: submitit's logs and pickles (default ``<runs>/.submitit/%j``).

    Returns:
        The submitit jobs (one per run submitted; empty when all were done) and the runs skipped
        as done (experiment key -> run id).
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}. Got {executor!r}")
    store = RunStore(runs_dir)
    done = store.experiments()
    todo = [c for c in configs if c.key() not in done]
    skipped = {c.key(): done[c.key()] for c in configs if c.key() in done}
    if not todo:
        return [], skipped
    store.root.mkdir(parents=True, exist_ok=True)
    try:
        ex = submitit.AutoExecutor(folder=folder or store.root / ".submitit" / "%j", cluster=executor)
    except RuntimeError as e:  # submitit: no srun/sbatch on this machine
        raise ValueError(
            f"executor 'slurm' needs a SLURM login node (srun and sbatch on PATH): {e}. "
            "Use executor 'local' to run the same tasks on this machine"
        ) from e
    ex.update_parameters(name="medtl", **(parameters or {}))
    jobs = ex.map_array(RunTask(str(store.root)), [c.to_dict() for c in todo])
    return jobs, skipped
