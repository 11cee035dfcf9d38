"""Initialisation sources: ImageNet weights through torchvision's weights API, files and runs.

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
from pathlib import Path

import torch
import torchvision
from torch.hub import get_dir

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


def download_imagenet(backbone: str, version: str = DEFAULT_WEIGHTS, progress: bool = True) -> Path:
    """Fetch ImageNet weights into the cache (with a progress bar and torch's hash check)."""
    w = weights_enum(backbone, version)
    path = cached_file(backbone, version)
    if path.is_file() and sha256_prefix_ok(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    m = _HASH_RE.search(path.name)
    try:
        torch.hub.download_url_to_file(w.url, str(path), hash_prefix=m.group(1) if m else None, progress=progress)
    except (OSError, RuntimeError) as e:
        raise FileNotFoundError(
            f"Could not download {w.url} ({e}). On a machine with internet, download that file and copy it to "
            f"{path.parent}/, or use init 'random' or 'file:<path>'"
        ) from None
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
        raise ValueError(f"Cannot read {path} as a PyTorch state dict with weights_only=True: {e}") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return obj


def file_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A backbone state dict from a file; a MedTL ``model.pt`` gives its ``backbone.*`` part."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"Initialisation file {p} does not exist")
    sd = _load(p)
    if any(k.startswith("backbone.") for k in sd):
        sd = {k.removeprefix("backbone."): v for k, v in sd.items() if k.startswith("backbone.")}
    return sd


def run_state_dict(run_id: str, runs_dir: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The backbone of a finished run's ``model.pt``.

    The file's model record (when present: runs trained since it was added) names the backbone
    the weights belong to; older files are taken by their tensor names alone."""
    from medtl import checkpoint
    from medtl.runs import RunStore

    store = RunStore(runs_dir)
    path = store.path(run_id) / checkpoint.MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"Run {run_id!r} has no model.pt in {store.root}: it has not finished, or the id is wrong"
        )
    ck = checkpoint.read(path)
    sd = ck.get("state_dict")
    if not isinstance(sd, dict):
        raise ValueError(f"{path} holds no 'state_dict': it is not a MedTL model checkpoint")
    rec = ck.get("model")
    source = f"run:{run_id} ({rec['config']['backbone']}, cut {rec['config']['cut']})" if rec else f"run:{run_id}"
    backbone = {k.removeprefix("backbone."): v for k, v in sd.items() if k.startswith("backbone.")}
    if not backbone:
        raise ValueError(f"{source} has no backbone weights in {path}")
    return backbone


def load_into(
    model: torch.nn.Module, state: dict[str, torch.Tensor], source: str, prefixes: list[str] | None = None
) -> None:
    """Load ``state`` into ``model``; missing or mis-shaped keys raise, listed.

    Keys the source lacks are an error only for parameters the model keeps (restricted to the
    module paths in ``prefixes`` when given); extra keys in the source (the layers above a cut,
    an ImageNet ``fc``) are ignored.
    """
    own = model.state_dict()
    if prefixes is not None:
        own = {k: v for k, v in own.items() if any(k.startswith(p + ".") for p in prefixes)}
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
