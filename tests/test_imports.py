"""How the package's modules import each other, read from the source (every import, at the top or inside a
function): no import circle, so a function-local import is there for start-up time (torch is 2-4 s that
``python -m medtl runs`` or ``--help`` never needs) and never to dodge a circle; and the layers stay apart —
the model side knows nothing of run stores, jobs, studies or training, the checkpoint and config code
nothing of the model side."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> dict[str, Path]:
    out = {}
    for top in ("medtl", "ui"):
        for p in (ROOT / top).rglob("*.py"):
            parts = p.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """Every package module the file imports (``from a import b`` counts ``a`` and, where a module, ``a.b``),
    wherever the import statement is, except under ``if TYPE_CHECKING:``; a module also runs its packages'
    ``__init__`` files."""
    found: set[str] = set()

    def visit(node) -> None:
        for ch in ast.iter_child_nodes(node):
            if isinstance(ch, ast.If) and "TYPE_CHECKING" in ast.dump(ch.test):
                continue
            if isinstance(ch, ast.Import):
                found.update(a.name for a in ch.names)
            elif isinstance(ch, ast.ImportFrom) and ch.module and ch.level == 0:
                found.add(ch.module)
                found.update(f"{ch.module}.{a.name}" for a in ch.names)
            visit(ch)

    visit(ast.parse(path.read_text()))
    out = set()
    for name in found:
        parts = name.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {m for m in out if m in MODULES}


GRAPH = {m: {n for n in _imports(p) if n != m and not m.startswith(n + ".")} for m, p in MODULES.items()}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            strong(v)
    return out


def _reaches(src_prefix: str, banned: tuple[str, ...]) -> list[tuple[str, str]]:
    return [
        (m, n)
        for m, ns in GRAPH.items()
        if m == src_prefix or m.startswith(src_prefix + ".")
        for n in ns
        if any(n == b or n.startswith(b + ".") for b in banned)
    ]


def test_no_import_circle_even_through_function_local_imports():
    assert _cycles() == []


def test_the_model_side_imports_no_store_jobs_study_or_training():
    assert (
        _reaches("medtl.models", ("medtl.runs", "medtl.checkpoint", "medtl.jobs", "medtl.study", "medtl.train")) == []
    )


def test_checkpoint_and_config_import_nothing_from_the_model_side():
    assert _reaches("medtl.checkpoint", ("medtl.models",)) == []
    assert _reaches("medtl.config", ("medtl.models",)) == []


def test_the_library_imports_nothing_from_the_dashboard():
    assert _reaches("medtl", ("ui",)) == []


def test_the_graph_is_read_from_the_source():
    # the reader sees imports inside functions too: the registry's checks are imported lazily by the store
    assert "medtl.models.registry" in GRAPH["medtl.runs"]
    assert "medtl.config" in GRAPH["medtl.models.registry"]
