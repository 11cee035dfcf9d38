"""What the app runs on: device, threads and library versions (for the home page and CLI)."""

from __future__ import annotations

import platform
from importlib import metadata


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def status() -> dict[str, str]:
    """A flat dict of display strings describing the compute device and key packages."""
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        device = f"CUDA: {props.name} ({props.total_memory / 2**30:.0f} GiB)"
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        device = "Apple MPS"
    else:
        device = f"CPU ({platform.processor() or platform.machine()})"
    info = {
        "device": device,
        "torch threads": str(torch.get_num_threads()),
        "python": platform.python_version(),
    }
    for pkg in ("torch", "torchvision", "captum", "streamlit", "plotly", "scikit-learn", "numpy"):
        info[pkg] = _version(pkg)
    return info
