"""Where studies live: ``<runs dir>/studies/<name>/study.json`` and the advisor's tables beside it."""

from __future__ import annotations

import json
from pathlib import Path

from medtl.fields import bad as _bad
from medtl.runs import RunStore, atomic_write
from medtl.study.config import _NAME_RE, StudyConfig


def study_path(store: RunStore, name: str) -> Path:
    if not _NAME_RE.fullmatch(name or ""):
        raise _bad("name", name, "letters, digits, '-', '_' and '.' (a folder name)")
    return store.root / "studies" / name / "study.json"


def save(study: StudyConfig, store: RunStore) -> Path:
    p = study_path(store, study.name)
    atomic_write(p, study.to_json())
    if not study.start:  # the advisor's tables describe a start this study no longer has
        advice_path(store, study.name).unlink(missing_ok=True)
    return p


def saved(store: RunStore) -> list[str]:
    """Names of the studies saved in ``store``, sorted."""
    return sorted(d.name for d in (store.root / "studies").glob("*") if (d / "study.json").is_file())


def recent(store: RunStore) -> str | None:
    """The study saved (queued, run) most recently, or None."""
    files = [d / "study.json" for d in (store.root / "studies").glob("*") if (d / "study.json").is_file()]
    return max(files, key=lambda f: f.stat().st_mtime).parent.name if files else None


def load(store: RunStore, name: str) -> StudyConfig:
    p = study_path(store, name)
    if not p.is_file():
        known = saved(store)
        raise FileNotFoundError(f"No study {name!r} in {store.root / 'studies'}. Studies: {', '.join(known) or 'none'}")
    try:
        return StudyConfig.from_dict(json.loads(p.read_text()))
    except (ValueError, TypeError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise ValueError(f"Study {name!r} cannot be read ({p}): {e}") from None


def advice_path(store: RunStore, name: str) -> Path:
    return study_path(store, name).with_name("advice.json")


def save_advice(study: StudyConfig, store: RunStore, advice: dict) -> Path:
    """Keep the advisor's tables beside ``study.json`` (the report shows them)."""
    p = advice_path(store, study.name)
    atomic_write(p, json.dumps(advice, indent=1, default=str))
    return p


def load_advice(store: RunStore, name: str) -> dict | None:
    """The advisor's tables that started the study's search, or None (none, or unreadable)."""
    p = advice_path(store, name)
    try:
        return json.loads(p.read_text()) if p.is_file() else None
    except (OSError, ValueError):
        return None
