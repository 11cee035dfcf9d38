"""The data part of the Train and Study forms: one component read off the dataset records.

Kind, path, the kind's own options, the target (a select of what the data offers, with counts), image
size and training sizes; every value checked by the config's rules, a problem shown under its control
(and blocking Queue); the loaded splits' counts, warnings and a preview. Values are kept in session
state, so leaving the page and coming back (or a rerun) keeps what was typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

from medtl import datasets, fields
from medtl.config import DataConfig
from medtl.fields import check_value
from ui.state import data_summary, data_targets, preview_png
from ui.text import plain


@dataclass
class FormResult:
    configs: list = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # control -> message


def init(key: str, default):
    """Give widget ``key`` its starting value once per session: what this session last had there (a
    widget's own state is dropped when its page is left), else ``default``; returns the value the widget
    has now, which the caller passes on as the widget's own default (``value=``, or :func:`index` for a
    select, ``default=`` for a multiselect).

    Both, because a browser can miss the seeded value: a click while a page's first run is still drawing
    stops that run, and the browser then draws the widget from its own default (a blank box, 0.00) and
    sends that back as the user's value. A widget whose default is the seeded value shows and returns
    the right value either way; the session state stays the one source of truth (it wins over a default,
    so a value set here or by code before the widget is drawn is what the widget shows)."""
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(f"_kept_{key}", default)
    return st.session_state[key]


def index(options, value) -> int | None:
    """A select's ``index=`` for ``value`` (see :func:`init`): its position among ``options``, else None."""
    options = list(options)
    return options.index(value) if value in options else None


def keep(*keys: str) -> None:
    """Remember the widgets' values for the next visit of the page (see :func:`init`)."""
    for k in keys:
        if k in st.session_state:
            st.session_state[f"_kept_{k}"] = st.session_state[k]


def problem(where, res: FormResult, key: str, message: str) -> None:
    """A problem with one control: shown right under it (as plain text: it quotes paths and labels), and
    Queue stays blocked."""
    res.errors[key] = message
    where.error(plain(message), icon=":material/error:")


def _option_widget(prefix: str, option: datasets.Option, initial: DataConfig, res: FormResult, where):
    """One widget for a dataset-kind option, read off its record (type, default, rule, step, hint): a
    checkbox for a bool, a select for a ``Literal``, a number box for a number, a text box for text (a
    path among it). An optional one (``X | None``) can be left empty: a blank box or the select's "none"
    is None. The value is checked by the option's rule (an out-of-range number is said, never clamped)."""
    typ, optional = fields.optional(option.annotation)
    listed, key = fields.literal_choices(typ), prefix + option.name
    start = getattr(initial, option.name, option.default)
    kw = {"key": key, "help": option.help}
    if listed or (typ is bool and optional):
        choices = ([None] if optional else []) + list(listed or (True, False))
        value = where.selectbox(
            option.label, choices, index=index(choices, init(key, start)) or 0, format_func=_choice, **kw
        )
    elif typ is bool:
        value = where.checkbox(option.label, value=bool(init(key, start)), **kw)
    elif typ in (int, float):
        seeded = init(key, start)
        # value=None lets an optional number be cleared (Streamlit keeps a box made with a number filled); the
        # default takes the step's type (Streamlit refuses an int default with a float step)
        default = None if optional or seeded is None else typ(seeded)
        value = where.number_input(option.label, step=typ(option.step or 1), value=default, **kw)
        value = int(value) if typ is int and value is not None and float(value).is_integer() else value
    else:  # text, and anything else a form can only take as typed text (the config's check says what it must be)
        seeded = init(key, "" if start is None else str(start))
        value = where.text_input(option.label, value=seeded, placeholder=option.hint or None, **kw).strip()
        value = None if optional and not value else value
    try:
        fields.check(option.name, value, option.annotation, option.rule)
    except ValueError as e:
        problem(where, res, option.name, str(e))
    keep(key)
    return value


def _choice(value) -> str:
    return "none" if value is None else "yes" if value is True else "no" if value is False else str(value)


def _target(prefix: str, kind: datasets.DatasetKind, probe: DataConfig, initial: DataConfig, res: FormResult):
    """The target select: what the data offers with its counts. Choosing the data's own default stores
    None for a kind that chooses from the data, so a form run and a command line without ``--finding``
    are one experiment."""
    key = f"{prefix}finding_{kind.name}"
    try:
        offered, default = data_targets(probe.to_json())
    except (ValueError, OSError) as e:
        res.errors["dataset"] = str(e)
        return None
    if not offered:  # a kind that cannot list its targets: a free-text label
        # the starting config's target only where it is this kind's (SynthCXR's "nodule" means nothing to a file)
        seeded = init(key, (initial.finding or "") if initial.kind == kind.name else "")
        text = st.text_input(
            "Positive class / target label", value=seeded, key=key, help=f"Blank = {kind.target_help}"
        ).strip()
        keep(key)
        return text or None
    names = [t.name for t in offered]
    start = initial.finding if initial.finding in names and initial.dataset == probe.dataset else default
    init(key, start)
    if st.session_state[key] not in names:  # another path, other classes: start from its default again
        st.session_state[key] = default

    def label(name: str) -> str:  # short: the form's column is narrow at 1280 px
        t = next(t for t in offered if t.name == name)
        about = "≈" if kind.findings is not None else ""
        return t.label if t.n_pos is None else f"{t.label} · {about}{t.n_pos:,}/{t.n:,}"

    picked = st.selectbox(
        "Target",
        names,
        key=key,
        format_func=label,
        index=index(names, st.session_state[key]),
        placeholder="Choose the positive class",
        help=f"The target: {kind.target_help}. Each option shows its positive images / all images"
        + (f"; the data's default is {default}." if default else "."),
    )
    keep(key)
    if picked is None:
        problem(st, res, "finding", "Choose the target: the data does not single out a positive class")
        return None
    return None if picked == default and kind.findings is None else picked


def data_section(
    res: FormResult, initial: DataConfig | None = None, prefix: str = "", sizes_default: str = "100%"
) -> tuple[dict, list[str]]:
    """Dataset, its options, target, image size and training sizes; returns the DataConfig fields (without
    ``train_size`` and ``seed``) and the training sizes as typed. Problems go into ``res.errors``."""
    initial = initial or DataConfig()
    k_kind = prefix + "ds_kind"
    kinds = datasets.KINDS
    at = index(kinds, init(k_kind, initial.kind)) or 0
    kind = datasets.get_kind(
        st.selectbox("Dataset", list(kinds), index=at, format_func=lambda k: kinds[k].label, key=k_kind)
    )
    keep(k_kind)
    d: dict = {}
    if kind.source is None:
        d["dataset"] = kind.name
    else:
        k_path = prefix + "ds_path"
        seeded = init(k_path, initial.source if initial.kind == kind.name else "")
        path = st.text_input(
            kind.source,
            value=seeded,
            key=k_path,
            placeholder=kind.source_hint,
            help=f"{kind.description}: `{kind.spec}`",
        ).strip()
        keep(k_path)
        d["dataset"] = f"{kind.name}:{path}"
        if not path:
            problem(st, res, "dataset", f"Enter the {kind.source}'s path")
    cols = st.columns(2)
    for i, option in enumerate(kind.options):
        d[option.name] = _option_widget(prefix, option, initial, res, cols[i % 2])
    if "dataset" not in res.errors:
        probe = DataConfig(
            dataset=d["dataset"], **{o.name: d[o.name] for o in kind.options if o.name not in res.errors}
        )
        d["finding"] = _target(prefix, kind, probe, initial, res)
        if "dataset" in res.errors:
            st.error(plain(res.errors["dataset"]), icon=":material/error:")
    else:
        d["finding"] = None
    k_size = prefix + "image_size"
    seeded = init(k_size, initial.image_size)
    d["image_size"] = st.number_input("Image size (px)", value=seeded, step=16, key=k_size, help="image side in pixels")
    keep(k_size)
    try:
        check_value(DataConfig, "image_size", d["image_size"])
        if kind.max_image_size is not None and d["image_size"] > kind.max_image_size:
            raise ValueError(
                f"image_size must be at most {kind.max_image_size} px for {kind.title}. Got {d['image_size']}"
            )
    except ValueError as e:
        problem(st, res, "image_size", str(e))
    k_sizes = prefix + "train_size"
    seeded = init(k_sizes, sizes_default)
    text = st.text_input(
        "Training-set size(s)",
        value=seeded,
        key=k_sizes,
        help="fractions (5%, 0.05) or counts (500) of the training split, or all; comma-separated for several",
    )
    keep(k_sizes)
    sizes = [t.strip() for t in text.split(",") if t.strip()]
    if not sizes:
        problem(st, res, "train_size", "Give at least one training-set size (e.g. 100%, 10%, 500)")
    for z in sizes:
        try:
            datasets.parse_train_size(z)
        except ValueError as e:
            problem(st, res, "train_size", str(e))
            break
    return d, sizes


def data_feedback(d: dict, sizes: list[str], res: FormResult) -> DataConfig | None:
    """Counts for the first size, live; the positive class chosen; warnings (few positives, saturated
    pixels); a problem found by loading stands under the data controls. Returns the loaded config."""
    if res.errors.keys() & {"dataset", "finding", "image_size", "train_size", *datasets.options()} or not sizes:
        return None
    try:
        cfg = DataConfig(**{**d, "train_size": sizes[0]})
        s = data_summary(cfg.to_json())
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as e:
        problem(st, res, "dataset", str(e))
        return None
    c = s["counts"]
    tr, va, te = c["train"], c["val"], c["test"]
    if s["info"].get("target_note"):  # the positive class was chosen from the data: say which
        st.info(plain(s["info"]["target_note"].capitalize()), icon=":material/info:")
    st.caption(
        f"train {tr['n']} ({tr['n_pos']} positive, {tr['n'] - tr['n_pos']} negative) · val {va['n']} "
        f"({va['n_pos']} pos.) · test {te['n']} ({te['n_pos']} pos.) · target **{plain(s['target'])}**"
    )
    if tr["n_pos"] < 20:
        st.warning(f"Only {tr['n_pos']} positive training images: expect noisy results; compare several seeds.")
    for w in s.get("warnings", []):
        st.warning(plain(w), icon=":material/warning:")
    with st.expander("Preview test images"):
        st.image(preview_png(cfg.to_json(), n=8, cols=4, px=128), width="stretch")
    return cfg
