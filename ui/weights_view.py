"""Get ImageNet weights from the dashboard: a download button (on click only) and an upload of the .pth file."""

from __future__ import annotations

import streamlit as st

from medtl.models import weights


def offer(backbone: str, key: str) -> bool:
    """Say whether ``backbone``'s ImageNet weights are here; when absent, offer to download or upload them.

    Returns whether the weights are available now. Nothing downloads without the click.
    """
    status = weights.weights_status(backbone)
    if status["file"] is None or status["available"]:
        return bool(status["available"])
    w = weights.weights_enum(backbone)
    name = status["file"].rsplit("/", 1)[-1]
    folder = weights.checkpoint_dir()
    size = weights.file_size_mb(backbone)
    size_text = f"{size:.1f} MB" if size else "size unknown"
    with st.container(border=True):
        st.markdown(f"**ImageNet weights for {backbone} are not here** (`{name}`, {size_text}).")
        c1, c2 = st.columns([1, 2])
        if c1.button(f"Download weights ({size_text})", key=f"{key}_download", icon=":material/download:"):
            bar = st.progress(0.0, text=f"Downloading {w.url}")
            total_mb = (size or 0) * 1e6

            def on_progress(done: int, total: int | None) -> None:
                t = total or total_mb
                bar.progress(min(done / t, 1.0) if t else 0.0, text=f"{done / 1e6:.1f} of {t / 1e6:.1f} MB")

            try:
                weights.download_imagenet(backbone, on_progress=on_progress)
            except (FileNotFoundError, ValueError) as e:
                bar.empty()
                st.error(f"Download failed. {e}", icon=":material/cloud_off:")
            else:
                st.success(f"Downloaded and hash-checked: {name} is in {folder}", icon=":material/check_circle:")
                return True
        c2.caption(
            f"From {w.url}, checked against the SHA-256 prefix in its name, into `{folder}`. "
            "No internet here? Download it elsewhere and upload it below, or copy it into that folder."
        )
        up = st.file_uploader(f"…or upload {name}", type=["pth"], key=f"{key}_upload")
        if up is not None:
            try:
                weights.install_weights(backbone, up.getvalue())
            except ValueError as e:
                st.error(str(e), icon=":material/error:")
            else:
                st.success(f"Hash checked: {name} is now in {folder}", icon=":material/check_circle:")
                return True
    return False
