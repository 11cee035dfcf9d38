"""Issue 19 (6): images of more than 8 bits are read at full depth and windowed, not clipped; the
share of saturated pixels per split is reported and warned about."""

import json
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import (
    gradient12,
    make_class_folders,
    make_clipped_folder,
    make_deep_folder,
    make_folder,
    write_png16_colour,
)
from PIL import Image, ImageOps

from medtl.cli import main
from medtl.config import DataConfig
from medtl.data import adapters, data_warnings, load, preflight, saturation
from medtl.data.decode import BitDepthError, read_dicom, read_fitted, read_image, window
from medtl.data.preview import contact_sheet


def _before(path, size):
    """How every file was decoded before full bit depth (what 8-bit files must still give)."""
    if path.suffix == ".dcm":
        im = Image.fromarray(read_dicom(path))
    else:
        with Image.open(path) as f:
            im = f.convert("L")
    return np.asarray(ImageOps.pad(im, (size, size), method=Image.Resampling.BILINEAR, color=0))


def _assert_gradient_intact(content: np.ndarray) -> None:
    row = content[content.shape[0] // 2].astype(int)
    assert np.all(np.diff(row) >= 0) and row[0] < 5 and row[-1] > 250  # monotonic, the full range
    assert len(np.unique(content)) > 40
    assert (content == 255).mean() < 0.05 and (content == 0).mean() < 0.05


@pytest.mark.parametrize(
    "suffix, mode", [(".png", "I;16"), (".tif", "I;16"), (".tif", "I;16B"), (".tif", "I"), (".tif", "F")]
)
def test_deep_images_keep_their_gradient(tmp_path, suffix, mode):
    root = make_deep_folder(tmp_path / "deep", suffix, n=1, mode=mode)
    f = root / "normal" / f"normal0{suffix}"
    with Image.open(f) as im:
        assert im.mode == mode or (mode == "I;16B" and im.mode.startswith("I;16"))
        assert (np.asarray(im.convert("L")) == 255).mean() > 0.8  # what convert("L") did: mostly white
    padded, content = read_fitted(f, 64)
    assert content.shape == (48, 64) and padded.shape == (64, 64)  # 96 x 72 fitted, padded top and bottom
    _assert_gradient_intact(content)


def test_a_folder_of_12_bit_pngs_previews_with_its_gradients(tmp_path, capsys):
    root = make_deep_folder(tmp_path / "deep")
    ds = load(DataConfig(dataset=f"folder:{root}", finding="abnormal", image_size=64))
    for i in range(len(ds.images)):
        _assert_gradient_intact(np.asarray(ds.images[i, 0, 8:56]))  # the 48 rows of image inside the padding
    sheet = np.asarray(contact_sheet(ds, n=4).convert("L"))
    assert len(np.unique(sheet)) > 40
    assert data_warnings(ds) == []
    assert main(["data", f"folder:{root}", "--finding", "abnormal", "--image-size", "64", "--json"]) == 0
    out, err = capsys.readouterr()
    sat = json.loads(out)["saturation"]
    assert all(s["at_255"] < 0.05 and s["at_0"] < 0.05 for s in sat.values()) and "warning" not in err


def test_window_rule():
    g = gradient12().astype(np.float64)
    assert np.array_equal(window(g), window(g * 16 + 1000))  # only the image's own range matters
    hot = g.copy()
    hot[0, :3] = 65535  # three hot pixels: a min-max window would crush the gradient into 16 levels
    assert len(np.unique(window(hot)[1:])) > 90
    flat = np.full((50, 50), 700.0)
    flat[20:22, 20:22] = 900  # the percentiles coincide: min-max
    w = window(flat)
    assert w[0, 0] == 0 and w[20, 20] == 255
    assert not window(np.full((8, 8), 1234, np.uint16)).any()  # constant: 0
    nan = g.astype(np.float32)
    nan[0, 0] = np.nan
    assert window(nan)[0, 0] == 0 and window(nan)[5, -1] == 255


def test_8_bit_files_decode_byte_identically_to_before(tmp_path):
    root = make_folder(tmp_path / "xr")  # 40 x 30 PNG, JPEG and DICOM
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 53, 3), np.uint8)).save(rgb)
    for size in (28, 32, 64):
        assert np.array_equal(read_image(rgb, size), _before(rgb, size))
    cfg = DataConfig(dataset=f"folder:{root}", finding="pneumonia", image_size=32)
    manifest = adapters.folder(cfg)
    ds = load(cfg)
    assert np.array_equal(np.asarray(ds.images[:, 0]), np.stack([_before(p, 32) for p in manifest.paths]))


def test_16_bit_colour_is_a_clear_error_not_a_silent_8_bits(tmp_path):
    g = gradient12(32, 32)
    f = write_png16_colour(tmp_path / "rgb16.png", np.stack([g, g, g], -1))
    with pytest.raises(BitDepthError, match=r"Cannot read image .*rgb16.png: it has 16 bits per colour channel"):
        read_image(f, 32)
    with pytest.raises(BitDepthError, match="16 bits per colour channel"):
        read_image(write_png16_colour(tmp_path / "la16.png", np.stack([g, g], -1)), 32)
    root = make_class_folders(tmp_path / "mixed", n=10)
    f.rename(root / "normal" / "rgb16.png")
    with pytest.raises(ValueError, match="rgb16.png: it has 16 bits per colour channel.*set skip_bad"):
        load(DataConfig(dataset=f"folder:{root}", finding="abnormal", image_size=28))
    ds = load(DataConfig(dataset=f"folder:{root}", finding="abnormal", image_size=28, skip_bad=True))
    assert ds.info["skipped"] == 1


def test_clipped_images_warn_with_the_share_per_split(tmp_path, capsys):
    root = make_clipped_folder(tmp_path / "clipped")
    ds = load(DataConfig(dataset=f"folder:{root}", finding="abnormal", image_size=64))
    sat = saturation(ds)
    for name, idx in ds.splits.items():  # the shares are those of the images' own pixels (no padding)
        content = np.asarray(ds.images[idx, 0, 8:56])
        assert sat[name]["at_255"] == pytest.approx((content == 255).mean())
        assert sat[name]["at_0"] == pytest.approx((content == 0).mean())
        assert sat[name]["at_255"] > 0.85
    (warning,) = data_warnings(ds)
    assert warning.startswith("The train, val and test splits have more than 20% of their pixels at 255 (white)")
    assert f"train {sat['train']['at_255']:.0%}" in warning and "16-bit radiographs converted to 8 bits" in warning
    assert preflight(DataConfig(dataset=f"folder:{root}", finding="abnormal", image_size=64)).warnings == (warning,)
    assert main(["data", f"folder:{root}", "--finding", "abnormal", "--image-size", "64", "--json"]) == 0
    out, err = capsys.readouterr()
    info = json.loads(out)
    assert info["saturation"] == sat and info["warnings"] == [warning]
    assert f"warning: folder:{root}: {warning}" in err


@pytest.mark.slow
def test_train_and_sweep_print_the_data_warning_after_preflight(tmp_path, capsys):
    root = make_clipped_folder(tmp_path / "clipped")
    flags = ["--dataset", f"folder:{root}", "--finding", "abnormal", "--image-size", "28", "--epochs", "1"]
    flags += ["--batch-size", "8", "--threads", "1", "--runs-dir", str(tmp_path / "runs")]
    assert main(["train", *flags]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: folder:") == 1 and "at 255 (white)" in err
    assert err.index("warning: folder:") < err.index("run ")  # before the run is recorded
    assert main(["sweep", *flags]) == 0  # the same config: skipped, after the same pre-flight
    captured = capsys.readouterr()
    assert captured.err.count("warning: folder:") == 1 and "skip (done as" in captured.out


def test_no_warning_on_synthcxr_or_ordinary_folders(tmp_path):
    assert data_warnings(load(DataConfig(n_images=300))) == []
    wide = load(DataConfig(dataset=f"folder:{make_folder(tmp_path / 'xr')}", finding="pneumonia", image_size=32))
    assert (np.asarray(wide.images) == 0).mean() > 0.2  # the padding of 40 x 30 images, which does not count
    assert data_warnings(wide) == [] and saturation(wide)["train"]["at_0"] < 0.1
    square = load(DataConfig(dataset=f"folder:{make_class_folders(tmp_path / 'sq')}", finding="abnormal"))
    assert data_warnings(square) == []


def test_old_cache_entries_get_their_counts():
    cfg = DataConfig(n_images=60)
    first = load(cfg)
    counts = Path(first.info["cached"]) / "pixel_counts.npy"
    counts.unlink()  # an entry written before the counts existed
    again = load(cfg)
    assert np.array_equal(again.pixel_counts, first.pixel_counts) and counts.is_file()
