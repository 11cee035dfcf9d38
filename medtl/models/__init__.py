"""Backbones (one family per module in :mod:`medtl.models.families`), published cut points,
initialisation, transfer strategies and profiling."""

from medtl.models.registry import BACKBONES, CutPoint, cut_points, feature_module, get_cut, get_spec, min_input_size
from medtl.models.transfer import TransferNet, build, param_groups, rebuild

__all__ = [
    "BACKBONES",
    "CutPoint",
    "TransferNet",
    "build",
    "cut_points",
    "feature_module",
    "get_cut",
    "get_spec",
    "min_input_size",
    "param_groups",
    "rebuild",
]
