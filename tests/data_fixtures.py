"""Tiny real-format datasets written into a temporary folder (shared by data tests)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image


def write_dicom(path: Path, arr: np.ndarray, photometric: str = "MONOCHROME2") -> None:
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "CR", "anon"
    ds.Rows, ds.Columns = arr.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = arr.astype(np.uint16).tobytes()
    ds.save_as(str(path), enforce_file_format=True)


def gradient(h: int = 40, w: int = 30, bright: bool = False) -> np.ndarray:
    base = np.linspace(0, 200, w)[None, :].repeat(h, 0)
    return (base + (50 if bright else 0)).clip(0, 255).astype(np.uint8)


def make_folder(root: Path) -> Path:
    """root/{normal,pneumonia}/ with PNG, JPEG and DICOM files (pneumonia images brighter)."""
    for cls, bright in (("normal", False), ("pneumonia", True)):
        d = root / cls
        d.mkdir(parents=True)
        for i in range(6):
            Image.fromarray(gradient(bright=bright)).save(d / f"{cls}{i}.png")
            Image.fromarray(gradient(bright=bright)).save(d / f"{cls}{i}.jpg")
        write_dicom(d / f"{cls}.dcm", gradient(bright=bright).astype(np.uint16) * 16)
    return root


def make_class_folders(root: Path, classes: tuple[str, ...] = ("normal", "abnormal"), n: int = 10) -> Path:
    """root/<class>/ with ``n`` small PNGs each (the last class brighter)."""
    for k, cls in enumerate(classes):
        d = root / cls
        d.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(gradient(28, 28, bright=k == len(classes) - 1)).save(d / f"{cls}{i}.png")
    return root


def make_csv(root: Path, with_split: bool = True, bad: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(30):
        p = root / "img" / f"{i}.png"
        p.parent.mkdir(exist_ok=True)
        Image.fromarray(gradient(bright=i % 3 == 0)).save(p)
        rows.append(
            {
                "path": f"img/{i}.png",
                "label": int(i % 3 == 0),
                "patient_id": f"p{i // 2}",
                "split": ["train", "train", "train", "val", "test"][i % 5],
            }
        )
    if bad:
        (root / "img" / "broken.png").write_bytes(b"not a png")
        rows.append({"path": "img/broken.png", "label": 0, "patient_id": "px", "split": "train"})
    f = root / "manifest.csv"
    with open(f, "w", newline="") as fh:
        cols = ["path", "label", "patient_id"] + (["split"] if with_split else [])
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return f


def make_chexpert(root: Path) -> Path:
    """A CheXpert-small tree: 28 patients, frontal + lateral views, a -1 (uncertain) label."""
    base = root / "CheXpert-v1.0-small"
    header = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", "No Finding", "Cardiomegaly", "Pleural Effusion"]
    for part, n_pat, offset in (("train", 24, 0), ("valid", 4, 100)):
        rows = []
        for p in range(n_pat):
            pid = f"patient{offset + p:05d}"
            label = ["1.0", "", "0.0", "-1.0"][p % 4]
            for view in ("frontal", "lateral"):
                rel = f"CheXpert-v1.0-small/{part}/{pid}/study1/view1_{view}.jpg"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(gradient(bright=label == "1.0")).save(root / rel)
                rows.append([rel, "Female", "50", view.capitalize(), "PA", "", "", label])
        with open(base / f"{part}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)
    return base


def make_medmnist(path: Path, multi_label: bool = False, rgb: bool = False, classes: int = 2) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 40), ("val", 10), ("test", 12)):
        shape = (n, 28, 28, 3) if rgb else (n, 28, 28)
        arrays[f"{split}_images"] = rng.integers(0, 255, shape, dtype=np.uint8)
        if multi_label:
            lab = rng.integers(0, 2, (n, 14))
            lab[0], lab[1] = 1, 0
            arrays[f"{split}_labels"] = lab
        else:
            arrays[f"{split}_labels"] = (np.arange(n) % classes)[:, None]
    np.savez(path, **arrays)
    return path


def gradient12(h: int = 72, w: int = 96, offset: int = 0) -> np.ndarray:
    """A 12-bit horizontal gradient (0..4095 plus ``offset``) as uint16, like a 12-bit detector's values."""
    return (np.linspace(0, 4095, w)[None, :].repeat(h, 0) + offset).round().astype(np.uint16)


def write_png16_colour(path: Path, arr: np.ndarray) -> Path:
    """A PNG of 16 bits per channel (``arr`` H x W x 2, 3 or 4 uint16), which Pillow cannot write."""
    import struct
    import zlib

    h, w, c = arr.shape
    rows = b"".join(b"\x00" + arr[i].astype(">u2").tobytes() for i in range(h))  # filter 0 per row
    chunk = lambda kind, data: (  # noqa: E731
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    )
    header = struct.pack(">IIBBBBB", w, h, 16, {2: 4, 3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )
    return path


def make_deep_folder(root: Path, suffix: str = ".png", n: int = 10, mode: str = "I;16") -> Path:
    """root/{normal,abnormal}/ with ``n`` 12-bit gradients each, in a Pillow ``mode`` of more than 8 bits
    (``I;16``, ``I;16B``, ``I``, ``F``); abnormal images carry a brighter offset."""
    for cls, offset in (("normal", 0), ("abnormal", 300)):
        d = root / cls
        d.mkdir(parents=True)
        for i in range(n):
            g = gradient12(offset=offset + 10 * i)
            im = Image.fromarray(g) if mode == "I;16" else Image.fromarray(g.astype(np.int32)).convert(mode)
            im.save(d / f"{cls}{i}{suffix}")
    return root


def make_clipped_folder(root: Path, n: int = 10) -> Path:
    """root/{normal,abnormal}/ with 8-bit PNGs of 12-bit gradients clipped at 255, as a tool that
    converts 16-bit images to 8 bits by clipping (Pillow's ``convert("L")``) leaves them."""
    for cls, offset in (("normal", 0), ("abnormal", 300)):
        d = root / cls
        d.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(gradient12(offset=offset).clip(0, 255).astype(np.uint8)).save(d / f"{cls}{i}.png")
    return root


def make_own_data(root: Path, n: int = 180, size: int = 32) -> dict[str, str]:
    """One learnable finding (SynthCXR nodules, large and clear) written three ways a user brings data:
    a MedMNIST-format ``.npz`` (official splits), a class folder of PNG, JPEG and 12-bit DICOM files
    (``normal``/``nodule``), and a CSV manifest whose labels are the words ``normal``/``nodule``.
    Returns dataset spec -> its kind's name. No target needs to be given: each has a default."""
    from medtl.data import synth

    prev = {f: (0.4 if f == "nodule" else 0.1) for f in synth.FINDINGS}
    images, labels, _ = synth.generate(n, size, seed=5, prevalence=prev, difficulty=0.05, progress=False)
    img = np.asarray(images[:, 0])
    y = labels[:, synth.FINDINGS.index("nodule")].astype(np.uint8)
    root.mkdir(parents=True, exist_ok=True)
    parts = np.split(np.arange(n), [int(0.6 * n), int(0.8 * n)])
    npz = root / "nodulemnist.npz"
    arrays = {}
    for name, idx in zip(("train", "val", "test"), parts, strict=True):
        arrays[f"{name}_images"], arrays[f"{name}_labels"] = img[idx], y[idx, None]
    np.savez(npz, **arrays)
    folder, rows = root / "xr", []
    for i in range(n):
        cls = "nodule" if y[i] else "normal"
        (folder / cls).mkdir(parents=True, exist_ok=True)
        p = folder / cls / f"img{i:03d}"
        if i % 3 == 0:
            Image.fromarray(img[i]).save(p.with_suffix(".png"))
        elif i % 3 == 1:
            Image.fromarray(img[i]).save(p.with_suffix(".jpg"), quality=95)
        else:
            write_dicom(p.with_suffix(".dcm"), img[i].astype(np.uint16) * 16)
        rows.append({"path": f"img/{i:03d}.png", "label": cls, "patient_id": f"p{i}"})
        (root / "img").mkdir(exist_ok=True)
        Image.fromarray(img[i]).save(root / "img" / f"{i:03d}.png")
    manifest = root / "manifest.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "label", "patient_id"])
        w.writeheader()
        w.writerows(rows)
    return {f"medmnist:{npz}": "medmnist", f"folder:{folder}": "folder", f"csv:{manifest}": "csv"}
