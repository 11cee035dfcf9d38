"""MedTL Studio home: the idea of the study, a map of the pages, and what this machine offers."""

from collections import Counter

import pandas as pd
import streamlit as st

from medtl import __version__, plots, system, toy
from medtl.config import DataConfig
from medtl.models.registry import BACKBONES
from medtl.models.weights import checkpoint_dir
from medtl.strategies import STRATEGIES
from ui.nav import favicon, navigation, page_list
from ui.state import get_store, preview_png, weights_label


def home() -> None:
    """The home page: the study in three pictures, the embedded dataset, the pages, this machine."""
    st.title("MedTL Studio")
    st.caption(
        f"v{__version__} · reproduce and explore *Rethinking Transfer Learning for Medical Image Classification* "
        "(Peng, Liang, Luo, Li, Sun — BMVC 2023, arXiv 2106.05152)"
    )

    st.markdown(
        """
    **Should I transfer, and how much of the network?** Networks pretrained on ImageNet learn general low-level
    features (edges, blobs, textures) in their bottom layers and object-specific high-level features at the top.
    Medical findings — a nodule, a patchy opacity, a blunted costophrenic angle — are mostly low- and mid-level
    patterns. So the study asks whether the top of a pretrained network is worth keeping at all.
    """
    )

    c1, c2, c3 = st.columns(3)
    with c1:
        st.subheader("1 · Keep the bottom")
        st.plotly_chart(plots.truncation_diagram(["stem", "L1", "L2", "L3", "L4"], cut="L3"), key="home_trunc")
        st.markdown(
            "**Truncated transfer learning (TTL)**: keep and fine-tune the pretrained layers up to a cut, discard the "
            "rest, add global pooling and a linear head. The model is smaller and faster — and, in the study, usually better."
        )
    with c2:
        st.subheader(f"2 · {len(STRATEGIES)} ways to transfer")  # one per strategy record, as drawn
        st.plotly_chart(plots.strategies_diagram(), key="home_levels")
        st.markdown(
            "Deep nets are not always better than shallow ones, but **ImageNet initialisation usually beats random "
            "initialisation** for both — most of all with little data (88 COVID positives vs 224,316 CheXpert radiographs)."
        )
    with c3:
        st.subheader("3 · Read PR, not only ROC")
        d = toy.DEFAULTS
        exp = {f"{c} (top {d[k]})": toy.expected(d["n_pos"], d["n_neg"], d[k]) for c, k in (("A", "k_a"), ("B", "k_b"))}
        st.plotly_chart(plots.toy_bars(exp), key="home_toy")
        a, b = exp.values()
        st.markdown(
            f"With {d['n_pos']} positives among {d['n_pos'] + d['n_neg']:,} images, two classifiers with AUROC "
            f"{a['auroc']:.3f} and {b['auroc']:.3f} have average precision {a['auprc']:.3f} and {b['auprc']:.3f} "
            "(exact expectations). **Imbalanced medical data needs precision–recall curves.**"
        )

    st.divider()
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.subheader("SynthCXR: the embedded dataset")
        st.markdown(
            "Procedural chest radiographs with four findings at different feature levels — **nodule** (red), **opacity** "
            "(green), **effusion** (blue), **cardiomegaly** (yellow) — and their masks. Everything runs offline on it; "
            "bring real data (MedMNIST, CheXpert, folders, CSV, DICOM) on the Train page."
        )
        gallery = DataConfig(finding="all", n_images=200, image_size=96, prevalence=0.5)
        st.image(preview_png(gallery.to_json(), n=8, cols=4, px=192), width="stretch")
    with right:
        st.subheader("Pages")
        page_list()
        store = get_store()
        counts = Counter(store.status(r).get("state") for r in store.ids())
        st.subheader("Runs")
        if counts:
            st.markdown(" · ".join(f"**{n}** {state}" for state, n in counts.most_common()) + f"  \n`{store.root}`")
        else:
            st.markdown(f"No runs yet in `{store.root}`.")
        st.subheader("ImageNet weights")
        rows = [{"backbone": b, "weights": weights_label(b).removeprefix("imagenet").strip(" ()")} for b in BACKBONES]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        st.caption(
            f"Read from `{checkpoint_dir()}`; `python -m medtl models --download NAME` fetches them where there is internet."
        )

    with st.expander("System status", expanded=False):
        st.dataframe(pd.Series(system.status(), name="value"), width="stretch")


# One navigation for the whole app (ui/nav.PAGES), so the sidebar says "Home" (not the entry file's name) and
# every page keeps its file in pages/ and its URL (the file name without its number: /ROC_vs_PRC, /Grad-CAM).
st.set_page_config(page_title="MedTL Studio", page_icon=favicon(), layout="wide")
navigation(home).run()
