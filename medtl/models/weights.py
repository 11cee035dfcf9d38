"""Initialisation sources on the model side: ImageNet weights through torchvision's weights API,
and state dict files (the ``imagenet`` and ``file`` records of :mod:`medtl.initialisations`).

ImageNet weights are read from torchvision's cache, ``$TORCH_HOME/hub/checkpoints/<file>``.
torchvision does not re-check cached files, so the SHA-256 prefix in the file name is verified
here. Nothing is downloaded unless :func:`download_imagenet` is called (CLI:
``python -m medtl models --download NAME``); when a file is absent the error names it, the folder
and the ways forward.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import torch
import torchvision
from torch.hub import get_dir

from medtl.initialisations import Availability, Init
from medtl.models.registry import get_spec

_HASH_RE = re.compile(r"-([a-f0-9]{6,})\.")
DEFAULT_WEIGHTS = "IMAGENET1K_V1"


def weights_enum(backbone: str, version: str = DEFAULT_WEIGHTS) -> torchvision.models.WeightsEnum:
    """torchvision's weights entry for a backbone (``IMAGENET1K_V1`` or ``IMAGENET1K_V2``)."""
    spec = get_spec(backbone)
    if spec.weights is None:
        raise ValueError(
            f"{backbone} has no ImageNet weights (the {spec.family.name} family is trained from scratch). "
            "Use init 'random', 'file:<path>' or 'run:<id>'"
        )
    enum = getattr(torchvision.models, spec.weights)  # the registry names the enum: any family, any name
    try:
        return enum[version]
    except KeyError:
        raise ValueError(
            f"Unknown weights {version!r} for {backbone}. Available: {', '.join(w.name for w in enum)}"
        ) from None


def checkpoint_dir() -> Path:
    """Where torchvision caches downloaded weights (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(get_dir()) / "checkpoints"


def cached_file(backbone: str, version: str = DEFAULT_WEIGHTS) -> Path:
    return checkpoint_dir() / os.path.basename(weights_enum(backbone, version).url)


def sha256_prefix_ok(path: Path) -> bool:
    """Whether the file's SHA-256 starts with the hash prefix in its name (``name-<hash>.pth``)."""
    m = _HASH_RE.search(path.name)
    if not m:
        return True  # no prefix to check against
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest().startswith(m.group(1))


def weights_status(backbone: str, version: str = DEFAULT_WEIGHTS) -> dict[str, object]:
    """Whether a backbone's ImageNet weights are cached here, without reading the file."""
    spec = get_spec(backbone)
    if spec.weights is None:
        return {"backbone": backbone, "available": False, "file": None, "reason": "no ImageNet weights exist"}
    path = cached_file(backbone, version)
    ok = path.is_file()
    return {"backbone": backbone, "available": ok, "file": str(path), "reason": "cached" if ok else "not downloaded"}


def file_size_mb(backbone: str, version: str = DEFAULT_WEIGHTS) -> float | None:
    """The published file's size in MB, from torchvision's metadata (None where it has none)."""
    return weights_enum(backbone, version).meta.get("_file_size")


Progress = Callable[[int, int | None], None]  # (bytes so far, total bytes or None)


def download_imagenet(
    backbone: str, version: str = DEFAULT_WEIGHTS, progress: bool = True, on_progress: Progress | None = None
) -> Path:
    """Fetch ImageNet weights into the cache, hash-checked against the prefix in the file name.

    Args:
        progress: a terminal progress bar (torch's), when ``on_progress`` is not given.
        on_progress: called as ``on_progress(bytes_done, total_bytes)`` while downloading (e.g. a page's bar).

    Raises:
        FileNotFoundError: the download failed (offline, say); the message names the URL and the folder
            the file can be copied into.
        ValueError: the downloaded file does not match its published hash.
    """
    w = weights_enum(backbone, version)
    path = cached_file(backbone, version)
    if path.is_file() and sha256_prefix_ok(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    m = _HASH_RE.search(path.name)
    try:
        if on_progress is None:
            torch.hub.download_url_to_file(w.url, str(path), hash_prefix=m.group(1) if m else None, progress=progress)
        else:
            import urllib.request

            with urllib.request.urlopen(w.url, timeout=30) as r:  # noqa: S310 - torchvision's https URL
                total = int(r.headers.get("Content-Length") or 0) or None
                _store(r, path, backbone, version, lambda n: on_progress(n, total))
    except (OSError, RuntimeError) as e:
        raise FileNotFoundError(
            f"Could not download {w.url} ({e}). On a machine with internet, download that file and copy it to "
            f"{path.parent}/ (or upload it in the dashboard), or use init 'random' or 'file:<path>'"
        ) from None
    return path


def install_weights(
    backbone: str,
    source: BinaryIO | bytes,
    version: str = DEFAULT_WEIGHTS,
    on_progress: Callable[[int], None] | None = None,
) -> Path:
    """Copy a published weights file (e.g. uploaded in the dashboard) into torch's cache under its published name.

    The content's SHA-256 must start with the prefix in the published name (``resnet18-f37072fd.pth``),
    whatever the uploaded file was called; nothing is written otherwise.

    Raises:
        ValueError: the content is not the published file.
    """
    import io

    path = cached_file(backbone, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _store(io.BytesIO(source) if isinstance(source, bytes) else source, path, backbone, version, on_progress)


def _store(src: BinaryIO, path: Path, backbone: str, version: str, on_progress: Callable[[int], None] | None) -> Path:
    """Stream ``src`` into ``path`` through a temporary file, checking the hash before the file appears."""
    m = _HASH_RE.search(path.name)
    h = hashlib.sha256()
    done = 0
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                f.write(chunk)
                h.update(chunk)
                done += len(chunk)
                if on_progress:
                    on_progress(done)
        if m and not h.hexdigest().startswith(m.group(1)):
            raise ValueError(
                f"This file is not the published {backbone} {version} weights: its SHA-256 starts with "
                f"{h.hexdigest()[:8]}, the published {path.name} with {m.group(1)}"
            )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def imagenet_state_dict(backbone: str, version: str = DEFAULT_WEIGHTS) -> dict[str, torch.Tensor]:
    """The cached ImageNet state dict, hash-checked; absent or corrupt files raise a clear error."""
    path = cached_file(backbone, version)
    if not path.is_file():
        raise FileNotFoundError(
            f"ImageNet weights for {backbone} ({version}) are not available offline: {path.name} is not in "
            f"{path.parent}. Download them with `python -m medtl models --download {backbone}` where there is "
            f"internet (or copy {path.name} from another machine into that folder; TORCH_HOME moves it), "
            "or use init 'random', 'file:<path>' or 'run:<id>'"
        )
    if not sha256_prefix_ok(path):
        raise ValueError(
            f"{path} does not match the SHA-256 prefix in its name: the file is corrupt or not the published "
            "weights. Delete it and download it again"
        )
    return _load(path)


def _load(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        # torch's own message runs to a page (how to load unsafely); its first line says what is wrong
        why = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise ValueError(
            f"Cannot read {path} as a PyTorch state dict (loaded with weights_only=True, as every checkpoint is): "
            f"{why.split('. ')[0]}"
        ) from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return obj


def imagenet_source(init: Init, backbone: str, version: str, store=None) -> dict[str, torch.Tensor]:
    """The ``imagenet`` record's source: :func:`imagenet_state_dict`."""
    return imagenet_state_dict(backbone, version)


def imagenet_status(init: Init, backbone: str, version: str, store=None) -> Availability:
    """The ``imagenet`` record's availability: the cached file, or what to do without it."""
    st = weights_status(backbone, version)
    if st["available"]:
        return Availability(True, file=st["file"])
    if st["file"] is None:
        return Availability(False, f"ImageNet weights for {backbone} are not available offline: none exist for it")
    folder, name = st["file"].rsplit("/", 1)
    return Availability(
        False,
        f"ImageNet weights for {backbone} are not available offline: put {name} into {folder} "
        f"(`python -m medtl models --download {backbone}` where there is internet), or choose random.",
        st["file"],
    )


def file_source(init: Init, backbone: str, version: str, store=None) -> dict[str, torch.Tensor]:
    """The ``file`` record's source: :func:`file_state_dict` of its path."""
    return file_state_dict(init.ref)


def file_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A backbone state dict from a file; a MedTL ``model.pt`` gives its ``backbone.*`` part."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"Initialisation file {p} does not exist")
    sd = _load(p)
    if any(k.startswith("backbone.") for k in sd):
        sd = {k.removeprefix("backbone."): v for k, v in sd.items() if k.startswith("backbone.")}
    return sd


def load_into(
    model: torch.nn.Module, state: dict[str, torch.Tensor], source: str, prefixes: list[str] | None = None
) -> None:
    """Load ``state`` into ``model``; missing or mis-shaped keys raise, listed.

    Keys the source lacks are an error only for parameters the model keeps (restricted to the
    module or parameter paths in ``prefixes`` when given); extra keys in the source (the layers above a cut,
    an ImageNet ``fc``) are ignored.
    """
    own = model.state_dict()
    if prefixes is not None:
        own = {k: v for k, v in own.items() if any(k == p or k.startswith(p + ".") for p in prefixes)}
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    shapes = [
        f"{k}: source {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or shapes:
        lines = []
        if missing:
            lines.append(
                f"missing in source ({len(missing)}): {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}"
            )
        if shapes:
            lines.append(f"shape mismatch ({len(shapes)}): {'; '.join(shapes[:5])}{' ...' if len(shapes) > 5 else ''}")
        raise ValueError(f"Cannot initialise from {source}: " + " | ".join(lines))
    model.load_state_dict({k: state[k] for k in own if k in state}, strict=False)
