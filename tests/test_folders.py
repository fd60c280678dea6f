"""Image folders as datasets (``folder:PATH``) and their zips: the layout, the shape,
the order, the limits and every refusal; every architecture on both shapes; the CLI.

The folders are written by the tests (``hostile.folder_pictures``): small PNG and JPEG
pictures of assorted sizes, each class its own brightness.
"""

from __future__ import annotations

import os

import pytest
import torch
from hostile import folder_pictures, hostile_zips, png, write_folder, zipped
from PIL import Image

from convae import (
    ARCHITECTURES,
    DatasetError,
    ModelConfig,
    TrainConfig,
    build_model,
    capture_activations,
    evaluate,
    load_checkpoint,
    load_dataset,
    train,
)
from convae.data.datasets import clear_cache
from convae.data.folders import FolderLimits, disk_tree, load_tree
from convae.data.zip_folder import ZipLimits, load_zip


@pytest.fixture(autouse=True)
def fresh(tmp_path, monkeypatch):
    """Each test its own cache folder and no folder remembered from another test."""
    monkeypatch.setenv("CONVAE_CACHE_DIR", str(tmp_path / "cache"))
    clear_cache()
    yield
    clear_cache()


def folder(tmp_path, files=None, name="pictures"):
    return write_folder(tmp_path / name, folder_pictures() if files is None else files)


def refused(root, match: str, **kwargs):
    with pytest.raises(DatasetError, match=match):
        load_dataset(f"folder:{root}", train=True, **kwargs)


# -------------------------------------------------------------------- loading
def test_a_colour_folder_is_3x32x32_uint8_with_its_folder_names_as_classes(tmp_path):
    root = folder(tmp_path)
    train_set = load_dataset(f"folder:{root}", train=True)
    test_set = load_dataset(f"folder:{root}", train=False)
    assert train_set.images.shape == (12, 3, 32, 32) and train_set.images.dtype == torch.uint8
    assert test_set.images.shape == (4, 3, 32, 32)
    assert train_set.classes == test_set.classes == ("circles", "squares")
    assert sorted(train_set.labels.tolist()) == [0] * 6 + [1] * 6
    # each class its own brightness: the labels go with the right pictures
    for s in (train_set, test_set):
        means = s.images.float().mean(dim=(1, 2, 3))
        assert (means[s.labels == 0].max() < 110) and (means[s.labels == 1].min() > 130)
    assert "image folder" in train_set.source and "train/" in train_set.source


def test_grey_pictures_make_1x28x28_and_a_shape_can_be_asked_for(tmp_path):
    root = folder(tmp_path, folder_pictures(colour=False))
    assert load_dataset(f"folder:{root}", train=True).shape == (1, 28, 28)
    assert load_dataset(f"folder:{root}", train=True, shape=(3, 32, 32)).shape == (3, 32, 32)
    assert load_dataset(f"folder:{root}", train=False, shape=(1, 32, 32)).shape == (1, 32, 32)
    refused(root, "unsupported shape 2x32x32", shape=(2, 32, 32))
    refused(root, "unsupported shape 1x28x32", shape=(1, 28, 32))


def test_one_colour_picture_makes_the_whole_folder_colour(tmp_path):
    files = folder_pictures(colour=False)
    files["test/squares/red.png"] = png(Image.new("RGB", (30, 30), (200, 0, 0)))
    assert load_dataset(f"folder:{folder(tmp_path, files)}", train=True).shape == (3, 32, 32)


def test_pictures_are_centre_cropped_then_resized(tmp_path):
    """A wide picture: white centre square between black margins comes out all white."""
    wide = Image.new("L", (90, 30), 0)
    wide.paste(255, (30, 0, 60, 30))
    files = folder_pictures(colour=False, train=1, test=1)
    files["train/circles/0.png"] = png(wide)
    s = load_dataset(f"folder:{folder(tmp_path, files)}", train=True)
    picture = s.images[s.labels == 0][0]
    assert picture.shape == (1, 28, 28) and int(picture.min()) == 255


def test_the_order_is_a_fixed_shuffle_so_the_first_images_sample_every_class(tmp_path):
    files = folder_pictures(train=20, test=1)
    first = load_dataset(f"folder:{folder(tmp_path, files)}", train=True)
    assert set(first.labels[:6].tolist()) == {0, 1}  # not all of the first class
    clear_cache()
    again = load_dataset(f"folder:{folder(tmp_path, files, 'copy')}", train=True)
    assert torch.equal(first.labels, again.labels) and torch.equal(first.images, again.images)


def test_a_folder_is_decoded_once_and_kept_in_the_cache(tmp_path):
    root = folder(tmp_path)
    first = load_dataset(f"folder:{root}", train=True)
    assert len(list((tmp_path / "cache" / "folders").glob("*.pt"))) == 1
    clear_cache()
    assert torch.equal(load_dataset(f"folder:{root}", train=True).images, first.images)
    # a changed picture is decoded again
    (root / "train/circles/0.png").write_bytes(png(Image.new("RGB", (40, 40), (0, 0, 255))))
    clear_cache()
    changed = load_dataset(f"folder:{root}", train=True)
    assert not torch.equal(changed.images, first.images)


def test_hidden_files_litter_and_files_beside_the_splits_are_ignored(tmp_path):
    files = folder_pictures()
    files["README.txt"] = b"my class's drawings"
    files["train/circles/.DS_Store"] = b"\x00\x01"
    files["train/squares/Thumbs.db"] = b"\x00\x01"
    files["__MACOSX/train/circles/._0.png"] = b"\x00\x01"
    files["train/.hidden/0.png"] = files["train/circles/0.png"]
    s = load_dataset(f"folder:{folder(tmp_path, files)}", train=True)
    assert len(s) == 12 and s.classes == ("circles", "squares")


def test_images_in_subfolders_of_a_class_belong_to_it(tmp_path):
    files = folder_pictures()
    files["train/circles/more/extra.png"] = files["train/circles/0.png"]
    s = load_dataset(f"folder:{folder(tmp_path, files)}", train=True)
    assert len(s) == 13 and int((s.labels == 0).sum()) == 7


# -------------------------------------------------------------------- refusals
def without(files: dict[str, bytes], prefix: str) -> dict[str, bytes]:
    return {p: d for p, d in files.items() if not p.startswith(prefix)}


def test_a_folder_without_train_or_test_is_refused(tmp_path):
    refused(tmp_path / "nowhere", "is not a folder")
    refused(folder(tmp_path, without(folder_pictures(), "train/"), "a"), "no train/ folder")
    refused(folder(tmp_path, without(folder_pictures(), "test/"), "b"), "no test/ folder")


def test_no_classes_an_empty_class_and_a_class_test_lacks_in_train_are_refused(tmp_path):
    files = folder_pictures()
    loose = {p.replace("circles/", "").replace("squares/", "s"): d for p, d in files.items()}
    refused(folder(tmp_path, loose, "loose"), r"train/ in .* has no class folders")
    stray = {**files, "train/0.png": files["train/circles/0.png"]}
    refused(folder(tmp_path, stray, "stray"), r"train/0.png .* is not in a class folder")
    empty = folder(tmp_path, files, "empty")
    (empty / "train" / "triangles").mkdir()
    refused(empty, r"train/triangles/ in .* holds no images")
    only_hidden = folder(tmp_path, {**files, "test/circles/.keep": b""}, "hidden")
    for f in (only_hidden / "test" / "circles").glob("*.*g"):
        f.unlink()
    refused(only_hidden, r"test/circles/ in .* holds no images")
    extra = folder(tmp_path, {**files, "test/dogs/0.png": files["test/circles/0.png"]}, "dogs")
    refused(extra, r"test/dogs/ .* a class that train/ does not have")


def test_files_that_are_not_pictures_are_refused_by_name(tmp_path):
    files = folder_pictures()
    refused(folder(tmp_path, {**files, "train/circles/notes.txt": b"hi"}, "a"), "notes.txt")
    disguised = {**files, "train/circles/evil.png": b"#!/bin/sh\nrm -rf /\n"}
    refused(folder(tmp_path, disguised, "b"), r"train/circles/evil.png: the file is not a picture")
    half = files["train/squares/0.png"]
    truncated = {**files, "test/squares/cut.png": half[: len(half) // 2]}
    refused(folder(tmp_path, truncated, "c"), r"test/squares/cut.png: the picture is damaged")


def test_symbolic_links_are_refused(tmp_path):
    root = folder(tmp_path)
    (root / "train" / "circles" / "link.png").symlink_to(root / "train" / "circles" / "0.png")
    refused(root, "link.png .* is a symbolic link")
    other = folder(tmp_path, name="other")
    (other / "test" / "linked").symlink_to(root / "test" / "circles")
    refused(other, "linked .* is a symbolic link")


def test_a_folder_too_large_is_refused_before_decoding(tmp_path):
    root = folder(tmp_path)
    small = FolderLimits(images=10)
    with pytest.raises(DatasetError, match="too large: 16 images; at most 10"):
        load_tree(disk_tree(root, small), limits=small)
    few = FolderLimits(entries=8)
    with pytest.raises(DatasetError, match="too large: more than 8 files and folders"):
        disk_tree(root, few)
    with pytest.raises(DatasetError, match="too large: .* MB of images"):
        load_tree(disk_tree(root), limits=FolderLimits(bytes=1000))
    with pytest.raises(DatasetError, match=r"0.png .* MB; images up to"):
        load_tree(disk_tree(root), limits=FolderLimits(file_bytes=100))


def test_a_named_dataset_refuses_another_shape(data_root):
    with pytest.raises(DatasetError, match="mnist images are 1x28x28, not 3x32x32"):
        load_dataset("mnist", train=False, root=data_root, shape=(3, 32, 32))


# --------------------------------------------------------------------- progress
def test_progress_counts_every_header_and_every_picture(tmp_path):
    seen: list[tuple[int, int]] = []
    load_dataset(f"folder:{folder(tmp_path)}", train=True, on_progress=lambda *a: seen.append(a))
    assert seen[-1] == (32, 32) and len(seen) == 32  # 16 headers, then 16 pictures
    assert [d for d, _ in seen] == list(range(1, 33))


# --------------------------------------------------------- models on both shapes
@pytest.mark.parametrize("colour", [False, True], ids=["grey", "colour"])
def test_every_architecture_trains_measures_and_shows_activations_on_a_folder(tmp_path, colour):
    root = folder(tmp_path, folder_pictures(colour=colour))
    train_set = load_dataset(f"folder:{root}", train=True)
    test_set = load_dataset(f"folder:{root}", train=False)
    for arch in ARCHITECTURES:
        model = build_model(ModelConfig(arch, train_set.shape), seed=0)
        history = train(model, train_set.images, TrainConfig(epochs=1, batch_size=8))
        assert len(history.epochs) == 1
        result = evaluate(model, test_set.images)
        assert result.n == 4 and 0 < result.psnr < 100
        acts = capture_activations(model, test_set.floats(slice(0, 2)))
        assert acts["input"].shape == (2, *train_set.shape)
        assert acts["output"].shape == (2, *train_set.shape)


# -------------------------------------------------------------------------- zips
def test_a_zip_gives_the_same_images_as_the_folder_at_its_root_or_in_one_folder(tmp_path):
    files = folder_pictures()
    on_disk = load_dataset(f"folder:{folder(tmp_path, files)}", train=True)
    for top in ("", "my pictures"):
        classes, splits = load_zip(zipped(files, top=top), "pictures.zip")
        assert classes == on_disk.classes
        assert torch.equal(splits["train"][0], on_disk.images)
        assert torch.equal(splits["train"][1], on_disk.labels)
        assert splits["test"][0].shape == (4, 3, 32, 32)


def test_macos_litter_in_a_zip_is_ignored():
    files = folder_pictures()
    litter = {"__MACOSX/train/circles/._0.png": b"\x00\x05", "train/.DS_Store": b"\x00"}
    classes, splits = load_zip(zipped({**files, **litter}), "mac.zip")
    assert len(splits["train"][0]) == 12


@pytest.mark.parametrize("name", list(hostile_zips()))
def test_every_hostile_zip_is_refused_with_a_one_line_reason(name, tmp_path):
    data, reason = hostile_zips()[name]
    before = set(os.listdir(tmp_path))
    with pytest.raises(DatasetError) as caught:
        load_zip(data, name)
    message = str(caught.value)
    assert reason in message and "\n" not in message and len(message) < 300
    assert set(os.listdir(tmp_path)) == before  # nothing written anywhere near


def test_a_zip_with_more_images_than_the_limit_is_refused():
    with pytest.raises(DatasetError, match="too large: 16 images; at most 10"):
        load_zip(zipped(folder_pictures()), "many.zip", limits=ZipLimits(images=10))


# ---------------------------------------------------------------------------- CLI
def test_cli_trains_on_a_folder_and_eval_reproduces_it(tmp_path, capsys):
    from convae.cli import main

    root = folder(tmp_path, folder_pictures(train=10, test=3))
    out = tmp_path / "x.pt"
    args = ["train", "--arch", "conv-upsample", "--dataset", f"folder:{root}"]
    assert main([*args, "--epochs", "2", "--out", str(out), "--quiet"]) == 0
    ckpt = load_checkpoint(out)
    assert ckpt.config.in_shape == (3, 32, 32) and ckpt.dataset == f"folder:{root}"
    assert len(ckpt.meta["history"]["epochs"]) == 2
    capsys.readouterr()
    assert main(["eval", str(out), "--json", "--quiet"]) == 0
    import json

    measured = json.loads(capsys.readouterr().out)
    assert measured["n"] == 6
    assert measured["psnr"] == pytest.approx(ckpt.meta["metrics"]["clean"]["psnr"], abs=1e-6)


def test_cli_takes_a_shape_and_refuses_a_bad_folder_in_one_line(tmp_path, capsys):
    from convae.cli import main

    root = folder(tmp_path, folder_pictures(colour=False))
    out = tmp_path / "g.pt"
    args = ["train", "--arch", "linear", "--dataset", f"folder:{root}", "--quiet"]
    assert main([*args, "--shape", "3x28x28", "--out", str(out)]) == 0
    assert load_checkpoint(out).config.in_shape == (3, 28, 28)
    capsys.readouterr()
    assert main(["eval", str(out), "--quiet"]) == 0  # read again at the model's shape
    (root / "train" / "squares" / "notes.txt").write_text("hello")
    clear_cache()
    assert main([*args, "--out", str(tmp_path / "h.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("convae: error: train/squares/notes.txt in ") and "\n" not in err
    with pytest.raises(SystemExit) as bad:
        main([*args, "--shape", "4x4", "--out", str(out)])
    assert bad.value.code == 2
    assert "expected CxHxW" in capsys.readouterr().err
