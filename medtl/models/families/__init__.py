"""Backbone families, one module each: stages, published cut points, truncation, minimum input
size, Grad-CAM layer and default head dropout. Add a family = one module here + its backbones'
lines in :data:`medtl.models.registry.BACKBONES`."""

from medtl.models.families.base import CutPoint, Family

__all__ = ["CutPoint", "Family"]
