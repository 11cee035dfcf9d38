import numpy as np
import pytest
import torch
from data_fixtures import make_chexpert, make_class_folders, make_csv, make_folder, make_medmnist, write_dicom

from medtl.cli import main
from medtl.config import DataConfig
from medtl.data import load, synth
from medtl.data.augment import AugmentConfig, augment, batches, normalization_stats
from medtl.data.decode import read_image
from medtl.data.imageset import grouped_split, nested_subsample, parse_train_size
from medtl.datasets import pick_positive

# --- SynthCXR ------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("size", [28, 64, 128, 256])
def test_synthetic_every_size_offline(size):
    ds = load(DataConfig(image_size=size, n_images=40))
    assert ds.images.shape == (40, 1, size, size) and ds.images.dtype == np.uint8
    assert set(ds.splits) == {"train", "val", "test"}
    assert sum(v.size for v in ds.splits.values()) == 40


def test_synthetic_deterministic_per_seed_and_index():
    a, la, _ = synth.generate(10, 64, seed=3)
    b, lb, _ = synth.generate(0, 64, seed=3, indices=np.array([7, 2]))
    assert np.array_equal(a[[7, 2]], b) and np.array_equal(la[[7, 2]], lb)
    c, _, _ = synth.generate(10, 64, seed=4)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("k, finding", list(enumerate(synth.FINDINGS)))
def test_masks_lie_on_the_lesions(k, finding):
    """Inside its mask a finding is brighter than the same image rendered without it."""
    prev = {f: 0.0 for f in synth.FINDINGS} | {finding: 1.0}
    params = [synth.draw_params(0, i, prev, 0.3) for i in range(12)]
    with_f, masks = synth.render(params, 96)
    without, _ = synth.render([{**p, finding: 0.0} for p in params], 96)
    diffs = []
    for i in range(12):
        m = masks[i, k]
        assert m.any()
        diffs.append(with_f[i][m].mean() - without[i][m].mean())
    assert np.mean(diffs) > 5  # grey levels


@pytest.mark.slow
def test_prevalence_and_multilabel():
    ds = load(DataConfig(finding="effusion", prevalence=0.4, n_images=600))
    assert ds.target_name == "effusion"
    assert 0.3 < ds.counts()["train"]["prevalence"] < 0.5
    ml = load(DataConfig(finding="all", n_images=200))
    assert ml.target is None and ml.y(ml.splits["train"]).shape[1] == 4
    assert ml.masks(np.array([0, 1])).shape == (2, 4, 64, 64)


def test_cache_is_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDTL_CACHE", str(tmp_path / "c"))
    a = load(DataConfig(n_images=40))
    b = load(DataConfig(n_images=40))
    assert "cached" in b.info and isinstance(b.images, np.memmap)
    assert np.array_equal(np.asarray(a.images), np.asarray(b.images))


# --- splits and regimes --------------------------------------------------------------------------


@pytest.mark.slow
def test_regime_nested_stratified_and_test_fixed():
    base = DataConfig(n_images=1000, prevalence=0.3)
    full = load(base)
    small, big = load(base.replace(train_size=0.05)), load(base.replace(train_size=0.2))
    assert set(small.splits["train"]) <= set(big.splits["train"])
    assert set(small.splits["val"]) <= set(big.splits["val"])
    assert np.array_equal(small.splits["test"], full.splits["test"])
    for ds in (small, big):
        assert abs(ds.counts()["train"]["prevalence"] - full.counts()["train"]["prevalence"]) < 0.03
    count = load(base.replace(train_size=100))
    assert count.splits["train"].size == 100


def test_regime_too_small_names_positive_count():
    with pytest.raises(ValueError, match=r"too small.*positives among"):
        load(DataConfig(n_images=200, train_size=0.005))


def test_grouped_split_keeps_patients_together():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 60, 400)
    labels = (rng.random(400) < 0.3).astype(float)
    s = grouped_split(labels, groups, {"test": 0.2, "val": 0.2, "train": 0.6}, seed=1)
    sets = [set(groups[v]) for v in s.values()]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert sum(v.size for v in s.values()) == 400


def test_nested_subsample_property():
    labels = np.r_[np.ones(50), np.zeros(450)]
    idx = np.arange(500)
    subs = [set(nested_subsample(idx, labels, f, seed=3)) for f in (0.02, 0.05, 0.1, 0.5)]
    assert all(a <= b for a, b in zip(subs, subs[1:], strict=False))


@pytest.mark.parametrize("value, expected", [("5%", 0.05), ("0.1", 0.1), ("500", 500), (1, None), (None, None)])
def test_parse_train_size(value, expected):
    assert parse_train_size(value) == expected


@pytest.mark.parametrize("value", ["-3", "abc", 0, "2.5"])
def test_parse_train_size_rejects(value):
    with pytest.raises(ValueError, match="train_size"):
        parse_train_size(value)


@pytest.mark.parametrize(
    "value, label, words",
    [
        ("10%", "10%", "10% of the training data"),
        (0.05, "5%", "5% of the training data"),
        (0.125, "12.5%", "12.5% of the training data"),
        (500, "500", "500 training images"),
        ("500", "500", "500 training images"),
        (None, "100%", "all the training data"),
        ("all", "100%", "all the training data"),
        (float("nan"), "100%", "all the training data"),  # a runs table's missing cell: the size was None
    ],
)
def test_train_size_label_and_words(value, label, words):
    from medtl.config import DataConfig, RunConfig
    from medtl.datasets import train_size_label, train_size_words

    assert train_size_label(value) == label
    assert train_size_words(value) == words == train_size_words(label)  # the label reads back as the size
    if value == value:  # not NaN: the run name (a stored run folder's) carries the same label
        assert f" · {label} · seed 0" in RunConfig(DataConfig(train_size=value)).name


# --- adapters ------------------------------------------------------------------------------------


def test_medmnist_binary_and_multilabel(tmp_path):
    f = make_medmnist(tmp_path / "pneumoniamnist.npz")
    ds = load(DataConfig(dataset=f"medmnist:{f}", finding=None, image_size=28))
    assert ds.counts()["test"]["n"] == 12 and ds.counts()["train"]["n"] == 40  # official splits
    assert ds.label_names == ("1",) and "class 1" in ds.info["target_note"]  # class 1 without a finding
    assert load(DataConfig(dataset=f"medmnist:{f}", finding="0", image_size=28)).label_names == ("0",)
    up = load(DataConfig(dataset=f"medmnist:{f}", finding=None, image_size=64))
    assert up.images.shape[-1] == 64
    ml = make_medmnist(tmp_path / "chestmnist.npz", multi_label=True)
    chest = load(DataConfig(dataset=f"medmnist:{ml}", finding="effusion", image_size=28))
    assert chest.target_name == "effusion"
    rgb = load(
        DataConfig(dataset=f"medmnist:{make_medmnist(tmp_path / 'derma.npz', rgb=True)}", finding=None, image_size=28)
    )
    assert rgb.channels == 3


def test_medmnist_resized_keeps_each_targets_labels(tmp_path, monkeypatch):
    """The resized images are cached; the labels are the config's own: class 0 after class 1 at the same size
    is class 0 (the cache once handed the first target's labels to the second)."""
    monkeypatch.setenv("MEDTL_CACHE", str(tmp_path / "cache"))
    f = make_medmnist(tmp_path / "pneumoniamnist.npz")
    one = load(DataConfig(dataset=f"medmnist:{f}", finding=None, image_size=32))
    zero = load(DataConfig(dataset=f"medmnist:{f}", finding="0", image_size=32))
    assert one.label_names == ("1",) and zero.label_names == ("0",)
    assert np.array_equal(one.images, zero.images)
    assert np.array_equal(one.y(one.splits["test"]), 1 - zero.y(zero.splits["test"]))


def test_medmnist_missing_keys_and_offline_name(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match="keys .* are missing"):
        load(DataConfig(dataset=f"medmnist:{bad}", finding=None, image_size=28))
    with pytest.raises(FileNotFoundError, match="pneumoniamnist_64.npz"):
        load(DataConfig(dataset="medmnist:pneumoniamnist@64", finding=None))


def test_chexpert_policy_views_and_patients(tmp_path):
    root = make_chexpert(tmp_path)
    ones = load(DataConfig(dataset=f"chexpert:{root}", finding="pleural effusion", image_size=32, val_fraction=0.2))
    assert ones.counts()["test"]["n"] == 4  # official valid set, frontal only
    ignore = load(
        DataConfig(
            dataset=f"chexpert:{root}",
            finding="Pleural Effusion",
            image_size=32,
            uncertainty="ignore",
            val_fraction=0.3,
        )
    )
    zeros = load(
        DataConfig(
            dataset=f"chexpert:{root}", finding="Pleural Effusion", image_size=32, uncertainty="zeros", val_fraction=0.2
        )
    )
    assert len(ignore.labels) < len(ones.labels) == len(zeros.labels)
    assert ones.labels.sum() > zeros.labels.sum()
    both = load(
        DataConfig(
            dataset=f"chexpert:{root}", finding="Pleural Effusion", image_size=32, frontal_only=False, val_fraction=0.2
        )
    )
    assert len(both.labels) == 2 * len(ones.labels)
    tr, va = set(both.groups[both.splits["train"]]), set(both.groups[both.splits["val"]])
    assert not tr & va  # two views of one patient never straddle train and val
    with pytest.raises(ValueError, match="Unknown CheXpert observation"):
        load(DataConfig(dataset=f"chexpert:{root}", finding="Broken Heart", image_size=32))


def test_folder_png_jpeg_dicom(tmp_path):
    root = make_folder(tmp_path / "xr")
    ds = load(
        DataConfig(dataset=f"folder:{root}", finding="pneumonia", image_size=32, val_fraction=0.2, test_fraction=0.2)
    )
    assert len(ds.labels) == 26 and ds.labels.sum() == 13
    with pytest.raises(ValueError, match="Choose one of: normal, pneumonia"):
        load(DataConfig(dataset=f"folder:{root}", finding="covid", image_size=32))
    # without a finding the class that is not a common negative name is positive, and the data says so
    chosen = load(DataConfig(dataset=f"folder:{root}", finding=None, image_size=32))
    assert chosen.target_name == "pneumonia" and np.array_equal(chosen.labels, ds.labels)
    assert "positive class 'pneumonia'" in chosen.info["target_note"] and "'normal'" in chosen.info["target_note"]
    (root / "covid").mkdir()
    (root / "covid" / "c.png").write_bytes((root / "normal" / "normal0.png").read_bytes())
    with pytest.raises(ValueError, match="Choose the positive class .*: one of covid, normal, pneumonia"):
        load(DataConfig(dataset=f"folder:{root}", finding=None, image_size=32))


@pytest.mark.parametrize(
    "classes, positive",
    [
        (["normal", "abnormal"], "abnormal"),
        (["PNEUMONIA", "NORMAL"], "PNEUMONIA"),
        (["No Finding", "effusion"], "effusion"),
        (["no_finding", "mass"], "mass"),
        (["0", "tumour"], "tumour"),
        (["Healthy", "sick"], "sick"),
        (["negative", "positive"], "positive"),
    ],
)
def test_pick_positive(classes, positive):
    assert pick_positive(classes, "x")[0] == positive


@pytest.mark.parametrize("classes", [["cat", "dog"], ["normal", "healthy"], ["normal", "a", "b"], ["a"]])
def test_pick_positive_asks_when_ambiguous(classes):
    with pytest.raises(ValueError, match="Choose the positive class .*of x: one of " + ", ".join(classes)):
        pick_positive(classes, "x")


def test_csv_with_named_labels_picks_the_positive(tmp_path):
    import csv

    root = make_class_folders(tmp_path / "imgs", n=8)
    f = tmp_path / "m.csv"
    with open(f, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        for p in sorted(root.rglob("*.png")):
            w.writerow([p.relative_to(tmp_path), p.parent.name])
    ds = load(DataConfig(dataset=f"csv:{f}", finding=None, image_size=28))
    assert ds.target_name == "abnormal" and ds.labels.sum() == 8
    assert "positive class 'abnormal'" in ds.info["target_note"]


def test_dicom_monochrome1_is_inverted(tmp_path):
    arr = np.tile(np.linspace(0, 4000, 32), (32, 1))
    write_dicom(tmp_path / "m2.dcm", arr)
    write_dicom(tmp_path / "m1.dcm", arr, photometric="MONOCHROME1")
    m2, m1 = read_image(tmp_path / "m2.dcm", 32), read_image(tmp_path / "m1.dcm", 32)
    assert m2[16, 0] < m2[16, -1] and m1[16, 0] > m1[16, -1]


def test_resize_keeps_aspect_and_pads(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((20, 40), 200, np.uint8)).save(tmp_path / "wide.png")
    out = read_image(tmp_path / "wide.png", 40)
    assert out.shape == (40, 40) and out[0, 20] == 0 and out[20, 20] == 200


def test_csv_manifest_and_bad_inputs(tmp_path):
    f = make_csv(tmp_path / "a")
    ds = load(DataConfig(dataset=f"csv:{f}", finding=None, image_size=32))
    assert ds.counts()["test"]["n"] == 6
    bad = make_csv(tmp_path / "b", bad=True)
    with pytest.raises(ValueError, match=r"Cannot read image .*broken.png"):
        load(DataConfig(dataset=f"csv:{bad}", finding=None, image_size=32))
    skipped = load(DataConfig(dataset=f"csv:{bad}", finding=None, image_size=32, skip_bad=True))
    assert skipped.info["skipped"] == 1
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("file,target\na.png,1\n")
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['path', 'label'\]"):
        load(DataConfig(dataset=f"csv:{wrong}", finding=None, image_size=32))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(DataConfig(dataset=f"csv:{tmp_path / 'none.csv'}", finding=None))
    with pytest.raises(ValueError, match="dataset must be"):
        DataConfig(dataset="s3://bucket")


# --- the tensor data path ------------------------------------------------------------------------


def test_batches_and_augmentation_deterministic():
    ds = load(DataConfig(n_images=80))
    run = lambda: [
        x
        for x, _, _ in batches(ds, "train", 16, shuffle=True, gen=torch.Generator().manual_seed(0), aug=AugmentConfig())
    ]
    a, b = run(), run()
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert a[0].dtype == torch.float32 and a[0].min() >= 0 and a[0].max() <= 1
    x = torch.rand(4, 1, 32, 32)
    y = augment(x, AugmentConfig(), torch.Generator().manual_seed(1))
    assert y.shape == x.shape and not torch.equal(x, y)
    mean, std = normalization_stats(ds)
    assert len(mean) == 1 and 0 < mean[0] < 1 and std[0] > 0


def test_data_cli_counts_and_preview(tmp_path, capsys):
    out = tmp_path / "sheet.png"
    assert main(["data", "synthetic", "--n-images", "200", "--train-size", "0.5", "--json", "--preview", str(out)]) == 0
    import json

    info = json.loads(capsys.readouterr().out)
    assert info["splits"]["train"]["n"] == 70 and out.stat().st_size > 1000
    assert main(["data", "folder:/definitely/not/here"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_small_folder_with_an_empty_or_one_class_split_is_refused(tmp_path):
    """Issue 12: 6 images give a test split without positives (or none at all): loading refuses,
    naming the split and its counts, so nothing is queued."""
    from data_fixtures import make_class_folders

    from medtl.data import preflight

    root = make_class_folders(tmp_path / "six", n=3)
    with pytest.raises(
        ValueError, match=r"(split of folder:.* is empty|split of folder:.* has no (positive|negative) image)"
    ):
        preflight(DataConfig(dataset=f"folder:{root}", image_size=28))
