"""Sweeps through submitit: the local executor runs the same tasks a SLURM job array would."""

import pytest

from medtl.cluster import RunTask, parse_slurm, submit
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.runs import RunStore


def tiny(seed: int) -> RunConfig:
    return RunConfig(
        DataConfig(n_images=120, image_size=32),
        ModelConfig("resnet18", "truncate", "layer1", "random"),
        TrainConfig(epochs=1, batch_size=16, bootstrap=50, seed=seed, threads=1),
    )


def _span(log: str) -> tuple[str, str]:
    """(start, end) stamps of a submitit task from its log: 'submitit INFO (2026-11-26 12:08:36,418) - ...'."""
    stamps = [line.split("(", 1)[1].split(")", 1)[0] for line in log.splitlines() if line.startswith("submitit ")]
    return stamps[0], stamps[-1]


def test_parse_slurm():
    got = parse_slurm("partition=gpu,gpus_per_node=1,timeout_min=120,array_parallelism=32")
    assert got == {"slurm_partition": "gpu", "gpus_per_node": 1, "timeout_min": 120, "slurm_array_parallelism": 32}
    assert parse_slurm(None) == {}
    with pytest.raises(ValueError, match="Unknown --slurm parameter 'partitio'"):
        parse_slurm("partitio=gpu")
    with pytest.raises(ValueError, match="key=value"):
        parse_slurm("partition")


def test_the_sweep_executors_are_inline_and_the_clusters():
    from medtl.cli import build_parser
    from medtl.cli.runs import EXECUTORS as SWEEP_EXECUTORS
    from medtl.cluster import EXECUTORS

    assert SWEEP_EXECUTORS[1:] == EXECUTORS and SWEEP_EXECUTORS[0] == "inline"
    assert build_parser().parse_args(["sweep", "--executor", "slurm"]).executor == "slurm"
    with pytest.raises(ValueError, match="executor must be one of local, slurm. Got 'inline'"):
        submit([RunConfig()], executor="inline")


@pytest.mark.slow
def test_local_sweep_runs_in_parallel_then_resubmit_does_nothing(tmp_path):
    store = RunStore(tmp_path / "runs")
    configs = [tiny(0), tiny(1)]
    jobs, skipped = submit(configs, store.root, "local")
    assert len(jobs) == 2 and skipped == {}
    results = [j.result() for j in jobs]
    assert [r["state"] for r in results] == ["done", "done"] and not any(r["skipped"] for r in results)
    a, b = (store.status(r["run_id"]) for r in results)
    assert a["pid"] != b["pid"] and a["job_id"] != b["job_id"]
    # the two task processes were alive at the same time (submitit's log stamps, in milliseconds)
    spans = [_span(j.paths.stdout.read_text()) for j in jobs]
    assert max(s for s, _ in spans) < min(e for _, e in spans)
    assert {store.config(r["run_id"]).key() for r in results} == {c.key() for c in configs}

    again, skipped = submit(configs, store.root, "local")
    assert again == [] and skipped == {c.key(): r["run_id"] for c, r in zip(configs, results, strict=True)}
    # a task that runs anyway (a requeue after the run finished) skips it too
    assert RunTask(str(store.root))(configs[0].to_dict()) == {
        "run_id": results[0]["run_id"],
        "state": "done",
        "skipped": True,
        "resumed": False,
    }
    assert len(store.ids()) == 2


@pytest.mark.slow
def test_preempted_task_marks_interrupted_and_requeue_resumes(tmp_path):
    store = RunStore(tmp_path)
    cfg = tiny(2)
    rid = store.create(cfg)
    store.write_status(rid, state="running")
    task = RunTask(str(store.root))
    task.run_id = rid  # as while training, when submitit's signal handler calls checkpoint()
    delayed = task.checkpoint(cfg.to_dict())
    assert store.status(rid)["state"] == "interrupted"
    assert delayed.function.run_id == rid and delayed.args == (cfg.to_dict(),)
    r = delayed.function(*delayed.args)  # what the requeued task runs
    assert r == {"run_id": rid, "state": "done", "skipped": False, "resumed": True}
    assert store.ids() == [rid] and store.status(rid)["state"] == "done"
    # a fresh task (no run id) finds an interrupted run of the same experiment and resumes it
    other = store.create(tiny(3))
    store.write_status(other, state="interrupted")
    assert RunTask(str(store.root))(tiny(3).to_dict())["run_id"] == other


@pytest.mark.slow
def test_local_task_preempted_by_signal_is_requeued_and_resumes(tmp_path):
    """SIGUSR2 (SLURM's warning before preemption or time-out) to a training task: submitit calls
    RunTask.checkpoint, requeues the task, and the requeued task resumes the same run from last.pt."""
    import os
    import signal
    import time

    store = RunStore(tmp_path / "runs")
    cfg = tiny(4)
    cfg = cfg.replace(train=cfg.train.replace(epochs=12, patience=0))
    (job,), _ = submit([cfg], store.root, "local")
    end = time.time() + 120
    while not (store.ids() and (store.path(store.ids()[0]) / "last.pt").is_file()) and time.time() < end:
        time.sleep(0.05)
    rid = store.ids()[0]
    assert store.status(rid)["state"] == "running"
    os.kill(store.status(rid)["pid"], signal.SIGUSR2)
    r = job.result()
    assert r == {"run_id": rid, "state": "done", "skipped": False, "resumed": True}, store.status(rid)
    assert store.ids() == [rid]
    # continued from last.pt, or (signalled while last.pt was being written) started over: never a
    # duplicated epoch
    assert [h["epoch"] for h in store.history(rid)] == list(range(1, 13))
    logs = "".join(p.read_text() for p in (store.root / ".submitit").rglob("*_log.out"))
    assert "Requeued job" in logs
