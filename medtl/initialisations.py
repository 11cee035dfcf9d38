"""Initialisation kinds as records: how a spec is written, parsed, described and checked, and where
its state dict comes from.

One :class:`InitKind` per kind (``random``, ``imagenet``, ``file``, ``run``). A spec is the kind's
name, followed by ``:<reference>`` for a kind that takes one (``file:/data/sd.pt``, ``run:<id>``).
Validation (``medtl.config``), the command line, the forms, legends and the builders read these
records; nobody else splits a spec on ``:``. A kind names its functions as ``"module:function"``,
imported on first use (as dataset kinds name their loaders), so that this module imports no torch
(``medtl.config`` uses it) and the model package never reaches into the run store: a kind whose
reference lives in a runs folder (``store=True``: ``run:``) is resolved by the caller that owns
the :class:`~medtl.runs.RunStore`, and :func:`medtl.models.build` takes the resolved state dict.

Adding an initialisation kind = one record in :data:`INITS` + its ``source`` and ``status``
functions (see the README's "Extending").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Availability:
    """Whether an initialisation can be used here and now, offline.

    Attributes:
        ok: it can (random always can).
        reason: why not, with the way forward (empty when ``ok``).
        file: the file its weights are read from, where there is one (a cache key's modification time).
    """

    ok: bool
    reason: str = ""
    file: str | None = None


@dataclass(frozen=True)
class InitKind:
    """What an initialisation kind is and where its weights come from.

    Attributes:
        name: the spec's kind (``file`` in ``file:/data/sd.pt``).
        label: the form's label.
        description: one sentence for forms and help.
        ref: what follows ``name:`` (``"state dict file"``); None = the kind takes no reference.
        ref_hint: the reference's syntax, for help (``<path>``).
        pretrained: the network starts from trained weights (False: random).
        published: the weights are the backbone's published ones (torchvision's): only backbones that
            have them (``BackboneSpec.weights``) take this kind.
        store: the reference names a run of a runs folder; resolved by the caller that owns the store.
        source: ``"module:function"`` taking ``(init, backbone, weights, store)`` and returning the
            backbone state dict in the reference network's names (a torchvision ``state_dict()``).
        status: ``"module:function"`` taking the same and returning an :class:`Availability`, offline
            and without reading the weights.
    """

    name: str
    label: str
    description: str
    ref: str | None = None
    ref_hint: str = ""
    pretrained: bool = True
    published: bool = False
    store: bool = False
    source: str | None = None
    status: str | None = None

    @property
    def syntax(self) -> str:
        """``imagenet``, ``file:<path>``."""
        return self.name if self.ref is None else f"{self.name}:{self.ref_hint}"

    @staticmethod
    def function(ref: str) -> Callable:
        """The function ``"module:function"`` names, imported when first needed."""
        module, _, fn = ref.partition(":")
        return getattr(importlib.import_module(module), fn)


@dataclass(frozen=True)
class Init:
    """A parsed initialisation spec: its kind and reference."""

    kind: InitKind
    ref: str = ""

    @property
    def spec(self) -> str:
        """The spec as a config stores it (``ModelConfig.init``)."""
        return self.kind.name if self.kind.ref is None else f"{self.kind.name}:{self.ref}"

    @property
    def pretrained(self) -> bool:
        return self.kind.pretrained

    @property
    def short(self) -> str:
        """A short form for legends and labels: ``run:…565565f`` for a run, the file name for ``file:``."""
        if self.kind.store:
            return f"{self.kind.name}:…{self.ref[-7:]}"
        if self.kind.ref is not None:
            return f"{self.kind.name}:{self.ref.replace(chr(92), '/').rsplit('/', 1)[-1]}"
        return self.kind.name

    def state_dict(self, backbone: str, weights: str, store: Any = None) -> dict | None:
        """The backbone state dict this initialisation loads (None for random).

        Raises:
            ValueError: the kind lives in a run store and none was given, or the source is unreadable.
            FileNotFoundError: the source is absent (e.g. ImageNet weights offline).
        """
        if self.kind.source is None:
            return None
        if self.kind.store and store is None:
            raise ValueError(
                f"init {self.spec!r} names a run of a runs folder: it is resolved by the caller that owns the "
                "RunStore (medtl.initialisations.state_dict(spec, backbone, weights, store))"
            )
        return self.kind.function(self.kind.source)(self, backbone, weights, store)

    def availability(self, backbone: str, weights: str, store: Any = None) -> Availability:
        """Whether the weights are here, offline, without reading them."""
        if self.kind.status is None:
            return Availability(True)
        if self.kind.store and store is None:
            return Availability(False, f"init {self.spec!r} needs the runs folder that holds the run")
        return self.kind.function(self.kind.status)(self, backbone, weights, store)


def file_status(init: Init, backbone: str, weights: str, store: Any = None) -> Availability:
    """A ``file:`` source: the file exists."""
    ref = init.ref.strip()
    if not ref:
        return Availability(False, f"Enter the path of the {init.kind.ref}")
    path = Path(ref).expanduser()
    if not path.is_file():
        return Availability(False, f"Initialisation file {ref} does not exist", str(path))
    return Availability(True, file=str(path))


RANDOM = "random"

INITS: dict[str, InitKind] = {
    k.name: k
    for k in (
        InitKind(RANDOM, "random", "random initialisation (the family's own)", pretrained=False),
        InitKind(
            "imagenet",
            "ImageNet",
            "the backbone's published ImageNet weights, through torchvision's weights API (cached offline)",
            published=True,
            source="medtl.models.weights:imagenet_source",
            status="medtl.models.weights:imagenet_status",
        ),
        InitKind(
            "file",
            "file: a state dict",
            "a backbone state dict file, or a MedTL model.pt (its backbone part)",
            ref="state dict file",
            ref_hint="<path>",
            source="medtl.models.weights:file_source",
            status="medtl.initialisations:file_status",
        ),
        InitKind(
            "run",
            "run: a finished run",
            "the backbone of a finished run of this runs folder",
            ref="finished run",
            ref_hint="<id>",
            store=True,
            source="medtl.checkpoint:run_source",
            status="medtl.checkpoint:run_status",
        ),
    )
}
BARE = "file"  # the kind a reference typed without a kind means (a path)


def allowed() -> str:
    """The specs there are, for messages and help: ``'random', 'imagenet', 'file:<path>' or 'run:<id>'``."""
    specs = [f"'{k.syntax}'" for k in INITS.values()]
    return ", ".join(specs[:-1]) + f" or {specs[-1]}"


def parse(spec: str) -> Init:
    """The record and reference of ``spec``; unknown kinds and missing references raise with the valid ones."""
    if not isinstance(spec, str):
        raise ValueError(f"init must be a string: {allowed()}. Got {spec!r}")
    name, colon, ref = spec.partition(":")
    kind = INITS.get(name)
    if kind is None or bool(colon) != (kind.ref is not None):
        raise ValueError(f"init must be {allowed()}. Got {spec!r}")
    return Init(kind, ref)


def valid(spec: str) -> bool:
    try:
        parse(spec)
    except ValueError:
        return False
    return True


def label(spec: str) -> str:
    """:attr:`Init.short` of a spec; anything unparseable is shown as it is."""
    return parse(spec).short if valid(spec) else str(spec)


def is_pretrained(spec: str) -> bool:
    return parse(spec).pretrained


def as_spec(text: str) -> str:
    """A source as typed: a spec as it is, a bare reference (a path) of the :data:`BARE` kind."""
    text = text.strip()
    return text if not text or valid(text) else f"{BARE}:{text}"


def state_dict(spec: str, backbone: str, weights: str, store: Any = None) -> dict | None:
    """:meth:`Init.state_dict` of a spec."""
    return parse(spec).state_dict(backbone, weights, store)


def availability(spec: str, backbone: str, weights: str, store: Any = None) -> Availability:
    """:meth:`Init.availability` of a spec."""
    return parse(spec).availability(backbone, weights, store)


__all__ = ["INITS", "RANDOM", "Availability", "Init", "InitKind", "allowed", "availability", "parse", "state_dict"]
