"""The live queue on the Train page: progress, curves, cancel and resume. State comes from the
RunStore (disk) and the queue's snapshot, so a reload, a second tab or a restart loses nothing."""

from __future__ import annotations

import streamlit as st

from medtl import plots
from medtl.jobs import JobQueue
from medtl.states import ACTIVE, STOPPED, State
from ui.nav import link
from ui.text import plain

# Material icons and coloured text: they render without an emoji font (Streamlit ships the icon font)
BADGE = {
    State.QUEUED: ":gray[:material/schedule: queued]",
    State.RUNNING: ":blue[:material/autorenew: running]",
    State.DONE: ":green[:material/check_circle: done]",
    State.FAILED: ":red[:material/error: failed]",
    State.CANCELLED: ":gray[:material/stop_circle: cancelled]",
    State.INTERRUPTED: ":orange[:material/warning: interrupted]",
}


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    m, s = divmod(int(seconds), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


def _progress(on_disk: dict, live: dict) -> None:
    """The phase of a running run with its own progress: training (epoch, batch, loss, speed, ETA), or
    loading data, evaluating, bootstrap, profiling (with their counts where they have them)."""
    p = live if live.get("phase") else on_disk  # this process's live events, else what the trainer wrote
    phase = p.get("phase") or "starting…"
    if phase == "training" and "batch" in p:
        frac = ((p["epoch"] - 1) + p["batch"] / max(p["batches"], 1)) / max(p["epochs"], 1)
        st.progress(
            min(frac, 1.0),
            text=f"training · epoch {p['epoch']}/{p['epochs']} · batch {p['batch']}/{p['batches']} · "
            f"loss {p.get('loss', float('nan')):.4f} · {p.get('images_per_s', 0):.0f} img/s · ETA {_fmt_eta(p.get('eta_s'))}",
        )
    else:  # loading data, or after the last epoch: the final evaluation, intervals and profiling
        text = f"training finished · {phase}" if p.get("final") else phase
        if p.get("total"):
            st.progress(min(p.get("done", 0) / p["total"], 1.0), text=f"{text} · {p.get('done', 0)}/{p['total']}")
        else:
            st.progress(1.0 if p.get("final") else 0.0, text=text)


def _run_card(queue: JobQueue, run_id: str, live: dict) -> None:
    store = queue.store
    status = store.status(run_id)
    state = status.get("state", State.FAILED)
    with st.container(border=True):
        c1, c2 = st.columns([5, 1])
        device = live.get("device") or status.get("worker") or status.get("device")
        where = f" · on `{device}`" if device else ""
        c1.markdown(f"**{plain(status.get('name', run_id))}**  \n`{run_id}` · {BADGE.get(state, state)}{where}")
        if state in ACTIVE:
            c2.button("Cancel", key=f"cancel_{run_id}", on_click=queue.cancel, args=(run_id,), width="stretch")
        elif state in STOPPED and (store.path(run_id) / "config.json").exists():
            c2.button(
                "Resume" if state == State.INTERRUPTED else "Retry",
                key=f"resume_{run_id}",
                on_click=queue.resume,
                args=(run_id,),
                width="stretch",
            )
        if state == State.RUNNING:
            _progress(status.get("progress", {}), live)
        if state == State.FAILED:
            st.error(plain(status.get("error") or "failed"))
        elif state in (State.INTERRUPTED, State.CANCELLED) and status.get("error"):
            st.caption(plain(status["error"]))
        history = store.history(run_id)
        if history and state in (State.RUNNING, State.DONE):
            with st.expander("Loss and validation curves", expanded=state == State.RUNNING):
                st.plotly_chart(plots.training_curves(history), key=f"curves_{run_id}")
        if state == State.DONE:
            m = store.metrics(run_id) or {}
            t = m.get("test", {})
            if t:
                st.caption(
                    f"test AUROC **{t['auroc']:.3f}** [{t['auroc_ci'][0]:.3f}, {t['auroc_ci'][1]:.3f}] · "
                    f"AUPRC **{t['auprc']:.3f}** [{t['auprc_ci'][0]:.3f}, {t['auprc_ci'][1]:.3f}] · "
                    f"{m['model']['params'] / 1e6:.2f} M params · {m['train']['seconds']:.0f} s training"
                )
            if status.get("warning"):  # e.g. diverged: the run stays, the user decides
                st.warning(plain(status["warning"]), icon=":material/warning:")


def render(queue: JobQueue, limit: int = 12) -> None:
    """The queue panel; it polls once a second only while something is queued or running."""
    busy = queue.busy

    @st.fragment(run_every=1.0 if busy else None)
    def panel() -> None:
        if busy and not queue.busy:
            st.rerun()  # the work is done: a full rerun redraws the page without polling
        live = queue.snapshot()
        ids = queue.store.ids()[::-1]
        if not ids:
            st.info("No runs yet. Configure one above and press **Queue**.")
            return
        active = [r for r in ids if r in live]
        rest = [r for r in ids if r not in live]
        show_all = st.toggle(f"Show all {len(ids)} runs", False, key="show_all") if len(ids) > limit else False
        for run_id in active + rest[: None if show_all else max(0, limit - len(active))]:
            _run_card(queue, run_id, live.get(run_id, {}))
        link("pages/3_Compare.py", "Compare finished runs")

    panel()
