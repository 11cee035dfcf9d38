"""Real-dataset adapters: MedMNIST ``.npz``, CheXpert, a class-per-folder tree, a CSV manifest.

File-based adapters return a :class:`~medtl.data.cache.Manifest` (paths, labels, patient ids,
official split per image); MedMNIST returns arrays directly. Errors name the path, what was
expected and what was found.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from medtl.config import DataConfig
from medtl.data.cache import Arrays, Manifest, cache_dir
from medtl.data.decode import IMAGE_SUFFIXES
from medtl.datasets import KINDS, SYNTH_FINDINGS, Target, get_kind, parse_spec, pick_positive

CHEXPERT_OBSERVATIONS = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
CHESTMNIST_LABELS = (
    "atelectasis",
    "cardiomegaly",
    "effusion",
    "infiltration",
    "mass",
    "nodule",
    "pneumonia",
    "pneumothorax",
    "consolidation",
    "edema",
    "emphysema",
    "fibrosis",
    "pleural",
    "hernia",
)


def _existing(path: str, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{what} {p} does not exist")
    return p


# --- MedMNIST ------------------------------------------------------------------------------------


SOURCE_LABELS = {k.name: k.source for k in KINDS.values() if k.source}


def check_source(cfg: DataConfig) -> str:
    """Cheap pre-flight before a run is recorded: a dataset path that does not exist raises
    FileNotFoundError, and a target that cannot be chosen ValueError, with the messages loading
    would give. Returns the note on the chosen positive class ("" when there is none to make).
    Image contents are checked by loading."""
    kind, source = parse_spec(cfg.dataset)
    if kind.preflight:
        return kind.function(kind.preflight)(cfg)
    if kind.source:
        _existing(source, kind.source)
    return ""


def medmnist_preflight(cfg: DataConfig) -> str:
    if not _is_path(cfg.source):
        return ""  # a MedMNIST name: resolved (or its absence explained) when loading
    path = _existing(cfg.source, SOURCE_LABELS["medmnist"])
    return _medmnist_note(path) if cfg.finding is None else ""


def folder_preflight(cfg: DataConfig) -> str:
    return _folder_positive(cfg)[1]


def csv_preflight(cfg: DataConfig) -> str:
    f = _existing(cfg.source, SOURCE_LABELS["csv"])
    return _csv_positive(cfg, f, _read_csv(f, required=("path", "label")))[1]


def _is_path(source: str) -> bool:
    return source.endswith(".npz") or "/" in source


def _medmnist_file(source: str) -> Path:
    """A local .npz path, or ``name[@size]`` resolved in the cache (downloaded through the
    ``medmnist`` package when it is installed and a network exists)."""
    if _is_path(source):
        return _existing(source, SOURCE_LABELS["medmnist"])
    name, _, size = source.partition("@")
    fname = f"{name}.npz" if not size or size == "28" else f"{name}_{size}.npz"
    local = cache_dir() / "medmnist" / fname
    if local.is_file():
        return local
    try:
        import medmnist  # noqa: F401
    except ImportError:
        raise FileNotFoundError(
            f"MedMNIST {source!r} is not on this machine: put {fname} into {local.parent}/ (from zenodo.org/records/10519652), "
            f"or pass its path as medmnist:/path/{fname}. (`pip install medmnist` lets MedTL download it where there is internet.)"
        ) from None
    return _download_medmnist(name, int(size or 28), local)


def _download_medmnist(name: str, size: int, local: Path) -> Path:
    import medmnist

    if name not in medmnist.INFO:
        raise ValueError(f"Unknown MedMNIST dataset {name!r}. Known: {', '.join(medmnist.INFO)}")
    cls = getattr(medmnist, medmnist.INFO[name]["python_class"])
    local.parent.mkdir(parents=True, exist_ok=True)
    try:
        cls(split="test", download=True, root=str(local.parent), size=size)
    except Exception as e:  # noqa: BLE001 - network failures come in many types
        raise FileNotFoundError(
            f"Could not download MedMNIST {name} ({e}). Offline, put {local.name} into {local.parent}/"
        ) from None
    return local


def _class_names(path: Path, ids: list[str]) -> list[str]:
    """Class names from the medmnist package's INFO where it is installed (``pneumonia``), else the ids."""
    try:
        from medmnist import INFO
    except ImportError:
        return ids
    labels = INFO.get(re.sub(r"_\d+$", "", path.stem.lower()), {}).get("label", {})
    return [labels.get(i, i) for i in ids]


def _binary(cfg: DataConfig, lab: np.ndarray, names: list[str]) -> tuple[np.ndarray, tuple[str], str]:
    """One column for a two-class file: class 1 unless ``finding`` names class 0 (by id or name)."""
    pos = 1
    if cfg.finding not in (None, "all"):
        pos = int(cfg.finding) if cfg.finding in ("0", "1") else names.index(_match(cfg.finding, names, "class"))
    return lab[:, pos : pos + 1], (names[pos],), "" if cfg.finding is not None else _binary_note(names)


def _binary_note(names: list[str]) -> str:
    return f"positive class {names[1]!r} (class 1 of the binary labels; class 0 is {names[0]!r})"


def _medmnist_note(path: Path) -> str:
    """The note on the default target of a binary class-id file, from its labels alone (cheap)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            lab = np.concatenate([z[k].reshape(len(z[k]), -1) for k in z.files if k.endswith("_labels")])
    except Exception:  # noqa: BLE001 - loading the file reports what is wrong with it
        return ""
    classes = np.unique(lab)
    binary = lab.shape[1] == 1 and len(classes) == 2
    return _binary_note(_class_names(path, [str(int(c)) for c in classes])) if binary else ""


def medmnist(cfg: DataConfig, progress=None) -> Arrays:
    """MedMNIST arrays: official splits; class ids -> one-vs-rest, multi-hot -> a label or all."""
    path = _medmnist_file(cfg.source)
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"Cannot read {path} as a .npz file: {e}") from None
    needed = [f"{s}_{k}" for s in ("train", "val", "test") for k in ("images", "labels")]
    missing = [k for k in needed if k not in z.files]
    if missing:
        raise ValueError(f"{path} is not a MedMNIST file: keys {missing} are missing (found {sorted(z.files)})")
    images, labels, split = [], [], []
    for s in ("train", "val", "test"):
        im, lab = z[f"{s}_images"], z[f"{s}_labels"]
        if im.ndim == 3:
            im = im[:, None]
        elif im.ndim == 4 and im.shape[-1] in (1, 3):
            im = im.transpose(0, 3, 1, 2)
        else:
            raise ValueError(f"{path}: {s}_images must be N x H x W or N x H x W x 3. Got shape {im.shape}")
        images.append(im.astype(np.uint8))
        labels.append(lab.reshape(len(lab), -1))
        split += [s] * len(im)
    lab = np.concatenate(labels)
    note = ""
    if lab.shape[1] == 1:  # class ids
        classes = np.unique(lab)
        names = tuple(_class_names(path, [str(int(c)) for c in classes]))
        lab = (lab == classes[None, :]).astype(np.float32)
        if len(classes) == 2:  # binary: the positive class is 1 unless chosen
            lab, names, note = _binary(cfg, lab, list(names))
    else:
        names = (
            CHESTMNIST_LABELS if lab.shape[1] == len(CHESTMNIST_LABELS) else tuple(str(i) for i in range(lab.shape[1]))
        )
        lab = lab.astype(np.float32)
    imgs = np.concatenate(images)
    info = {"source": f"MedMNIST {path.name}", "skipped": 0, "target_note": note}
    return Arrays(imgs, lab, names, None, np.array(split), info)


# --- CheXpert ------------------------------------------------------------------------------------


def chexpert(cfg: DataConfig, progress=None) -> Manifest:
    """CheXpert: ``train.csv`` / ``valid.csv``; the official validation set is the test split."""
    root = _existing(cfg.source, SOURCE_LABELS["chexpert"])
    finding = cfg.finding or get_kind("chexpert").default_finding
    obs = _match(finding, CHEXPERT_OBSERVATIONS, "CheXpert observation")
    paths, labels, groups, split = [], [], [], []
    for fname, part in (("train.csv", "train"), ("valid.csv", "test")):
        f = root / fname
        if not f.is_file():
            raise FileNotFoundError(f"{f} does not exist: a CheXpert folder holds train.csv and valid.csv")
        rows = _read_csv(f, required=("Path", obs) + (("Frontal/Lateral",) if cfg.frontal_only else ()))
        for r in rows:
            if cfg.frontal_only and r["Frontal/Lateral"].strip().lower() != "frontal":
                continue
            raw = r[obs].strip()
            value = float(raw) if raw else 0.0  # blank = not mentioned = negative
            if value == -1:
                if cfg.uncertainty == "ignore":
                    continue
                value = 1.0 if cfg.uncertainty == "ones" else 0.0
            rel = Path(r["Path"])
            p = root / Path(*rel.parts[1:]) if rel.parts and rel.parts[0].startswith("CheXpert-v1.0") else root / rel
            if not p.exists() and (root.parent / rel).exists():
                p = root.parent / rel
            m = re.search(r"patient\d+", r["Path"])
            paths.append(p)
            labels.append([value])
            groups.append(m.group(0) if m else str(p.parent))
            split.append(part)
    if not paths:
        raise ValueError(f"No usable rows in {root}/train.csv and valid.csv for {obs!r} with these options")
    return Manifest(paths, np.array(labels, np.float32), (obs,), np.array(groups), np.array(split), f"CheXpert {root}")


# --- folder and CSV ------------------------------------------------------------------------------


def _folder_classes(cfg: DataConfig) -> tuple[Path, list[str], list[tuple[Path, str]], list[str]]:
    root = _existing(cfg.source, SOURCE_LABELS["folder"])
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder: folder: expects one sub-folder per class")
    split_dirs = [d for d in ("train", "val", "test") if (root / d).is_dir()]
    tops = [(root / d, d) for d in split_dirs] if "train" in split_dirs else [(root, "")]
    classes = sorted({c.name for top, _ in tops for c in top.iterdir() if c.is_dir()})
    if len(classes) < 2:
        raise ValueError(f"{root} must hold at least two class folders (found {classes or 'none'})")
    return root, classes, tops, split_dirs


def _folder_positive(cfg: DataConfig) -> tuple[str, str]:
    """The positive class folder and a note when it was chosen from the class names."""
    root, classes, _, _ = _folder_classes(cfg)
    if cfg.finding is None:
        return pick_positive(classes, str(root))
    return _match(cfg.finding, classes, "class folder"), ""


def folder(cfg: DataConfig, progress=None) -> Manifest:
    """``root/<class>/*`` or ``root/<split>/<class>/*`` with split in train, val, test."""
    root, classes, tops, split_dirs = _folder_classes(cfg)
    positive, note = _folder_positive(cfg)
    paths, labels, split = [], [], []
    for top, part in tops:
        for c in classes:
            for f in sorted((top / c).rglob("*")) if (top / c).is_dir() else []:
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    paths.append(f)
                    labels.append([float(c == positive)])
                    split.append(part)
    if not paths:
        raise ValueError(f"No images ({', '.join(IMAGE_SUFFIXES)}) found under {root}")
    return Manifest(
        paths,
        np.array(labels, np.float32),
        (positive,),
        None,
        np.array(split) if split_dirs else None,
        f"folder {root}",
        note,
    )


def _csv_positive(cfg: DataConfig, f: Path, rows: list[dict[str, str]]) -> tuple[str, str]:
    """The positive label value and a note when it was chosen from the values."""
    values = sorted({r["label"].strip() for r in rows})
    if set(values) <= {"0", "1", "0.0", "1.0"}:
        return "1", ""
    if cfg.finding is None:
        return pick_positive(values, f"{f} (label values)")
    return _match(cfg.finding, values, "label value"), ""


def csv_manifest(cfg: DataConfig, progress=None) -> Manifest:
    """A CSV with ``path,label`` and optional ``patient_id``, ``split``; paths relative to the CSV."""
    f = _existing(cfg.source, SOURCE_LABELS["csv"])
    rows = _read_csv(f, required=("path", "label"))
    positive, note = _csv_positive(cfg, f, rows)
    if positive == "1" and not note:
        is_pos = lambda v: float(v) == 1  # noqa: E731
    else:
        is_pos = lambda v: v == positive  # noqa: E731
    has_split = "split" in rows[0]
    splits = [r["split"].strip().lower() if has_split else "" for r in rows]
    bad = sorted({s for s in splits if s not in ("train", "val", "test", "")})
    if bad:
        raise ValueError(f"{f}: split values must be train, val or test. Got {bad}")
    paths = [
        (f.parent / r["path"].strip()) if not Path(r["path"].strip()).is_absolute() else Path(r["path"].strip())
        for r in rows
    ]
    labels = np.array([[float(is_pos(r["label"].strip()))] for r in rows], np.float32)
    groups = np.array([r["patient_id"] for r in rows]) if "patient_id" in rows[0] else None
    return Manifest(paths, labels, (positive,), groups, np.array(splits) if has_split else None, f"CSV {f}", note)


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        missing = [c for c in required if c not in cols]
        if missing:
            raise ValueError(f"{path} lacks the column(s) {missing}. Found columns: {cols}")
        rows = list(reader)
    if not rows:
        raise ValueError(f"{path} has no rows")
    return rows


def _match(name: str, options, what: str) -> str:
    norm = lambda s: re.sub(r"[^a-z0-9]", "", str(s).lower())  # noqa: E731
    for o in options:
        if norm(o) == norm(name):
            return o
    raise ValueError(f"Unknown {what} {name!r}. Choose one of: {', '.join(map(str, options))}")


# --- the targets a dataset offers (for forms: read from labels and file names, not images) -----------


def synthetic_targets(cfg: DataConfig) -> tuple[list[Target], str]:
    """SynthCXR's findings with their expected counts (the generator draws the target at ``prevalence``)."""
    n = cfg.n_images
    out = [Target(f, f, round(cfg.prevalence * n), n) for f in SYNTH_FINDINGS]
    return [*out, Target("all", "all four (one multi-label model)", None, n)], get_kind("synthetic").default_finding


def medmnist_targets(cfg: DataConfig) -> tuple[list[Target], str | None]:
    """A MedMNIST file's classes (class ids) or labels (multi-hot), counted from its label arrays."""
    path = _medmnist_file(cfg.source)
    try:
        with np.load(path, allow_pickle=False) as z:
            lab = np.concatenate([z[k].reshape(len(z[k]), -1) for k in z.files if k.endswith("_labels")])
    except Exception as e:  # noqa: BLE001 - any failure is a bad file for the user
        raise ValueError(f"Cannot read {path} as a .npz file: {e}") from None
    n = len(lab)
    if lab.shape[1] == 1:  # class ids: binary -> class 1 by default; 3+ -> one class vs the rest, or all
        classes = [int(c) for c in np.unique(lab)]
        names = _class_names(path, [str(c) for c in classes])
        out = [
            Target(str(c), f"class {c}" + (f" ({nm})" if nm != str(c) else ""), int((lab == c).sum()), n)
            for c, nm in zip(classes, names, strict=True)
        ]
        if len(classes) == 2:
            return out, out[1].name
        return [*out, Target("all", f"all {len(classes)} classes (one softmax model)", None, n)], None
    names = CHESTMNIST_LABELS if lab.shape[1] == len(CHESTMNIST_LABELS) else tuple(str(i) for i in range(lab.shape[1]))
    out = [Target(nm, nm, int(lab[:, i].sum()), n) for i, nm in enumerate(names)]
    return [*out, Target("all", f"all {len(names)} labels (one multi-label model)", None, n)], None


def chexpert_targets(cfg: DataConfig) -> tuple[list[Target], str]:
    """CheXpert's observations with their positive counts under the uncertainty policy (frontal views only
    unless chosen otherwise), from train.csv and valid.csv."""
    root = _existing(cfg.source, SOURCE_LABELS["chexpert"])
    counts = dict.fromkeys(CHEXPERT_OBSERVATIONS, 0)
    n = 0
    for fname in ("train.csv", "valid.csv"):
        f = root / fname
        if not f.is_file():
            raise FileNotFoundError(f"{f} does not exist: a CheXpert folder holds train.csv and valid.csv")
        for r in _read_csv(f, required=("Path",)):
            if cfg.frontal_only and r.get("Frontal/Lateral", "Frontal").strip().lower() != "frontal":
                continue
            n += 1
            for obs in counts:
                raw = (r.get(obs) or "").strip()
                v = float(raw) if raw else 0.0
                counts[obs] += v == 1 or (v == -1 and cfg.uncertainty == "ones")
    return [Target(o, o, int(c), n) for o, c in counts.items()], get_kind("chexpert").default_finding


def folder_targets(cfg: DataConfig) -> tuple[list[Target], str | None]:
    """The class folders with their image counts; the default is the one that is not a negative name."""
    _, classes, tops, _ = _folder_classes(cfg)
    per = {c: sum(_count_images(top / c) for top, _ in tops) for c in classes}
    n = sum(per.values())
    try:
        default = pick_positive(classes, "")[0]
    except ValueError:
        default = None
    return [Target(c, c, per[c], n) for c in classes], default


def _count_images(d: Path) -> int:
    return sum(f.suffix.lower() in IMAGE_SUFFIXES for f in d.rglob("*")) if d.is_dir() else 0


def csv_targets(cfg: DataConfig) -> tuple[list[Target], str | None]:
    """The label values of a CSV manifest with their counts (0/1 labels: ``1``)."""
    f = _existing(cfg.source, SOURCE_LABELS["csv"])
    rows = _read_csv(f, required=("path", "label"))
    values = [r["label"].strip() for r in rows]
    per = {v: values.count(v) for v in sorted(set(values))}
    if set(per) <= {"0", "1", "0.0", "1.0"}:
        pos = sum(c for v, c in per.items() if float(v) == 1)
        return [Target("1", "1 (the positive label)", pos, len(values))], "1"
    try:
        default = pick_positive(list(per), "")[0]
    except ValueError:
        default = None
    return [Target(v, v, c, len(values)) for v, c in per.items()], default
