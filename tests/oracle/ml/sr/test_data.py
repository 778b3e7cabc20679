"""The SR data: which bundled photographs train and which are held out, LR making, crops."""

import numpy as np
import pytest

from oracle.ml.sr.data import (
    EVALUATION,
    TRAINING,
    CropSampler,
    SrDataError,
    bundled,
    downscale,
    folder,
    load_rgb,
    modcrop,
    synthetic,
    upscale_bicubic,
)


def test_every_named_photograph_is_inside_the_wheel_and_evaluation_is_held_out() -> None:
    assert len(bundled(EVALUATION)) == 6
    assert len(bundled(TRAINING)) == 13
    assert not set(EVALUATION) & set(TRAINING)
    halves = {name.split("_")[0] for name in TRAINING if name.startswith("motorcycle")}
    assert halves == {"motorcycle"}
    assert not any(n.startswith("motorcycle") for n in EVALUATION)
    with pytest.raises(SrDataError, match="not in this scikit-image"):
        bundled(["set5_baby.png"])


def test_lr_images_are_a_quarter_of_the_modcropped_hr() -> None:
    hr = modcrop(load_rgb(bundled(["chelsea.png"])[0]), 4)  # 451 wide: cropped to 448
    assert hr.shape == (300, 448, 3)
    lr = downscale(hr, 4)
    assert lr.shape == (75, 112, 3)
    assert lr.dtype == np.uint8
    assert upscale_bicubic(lr, 4).shape == hr.shape
    with pytest.raises(SrDataError, match="smaller than"):
        modcrop(np.zeros((3, 10, 3), np.uint8), 4)


def test_crops_are_paired_seeded_and_resumable() -> None:
    images = synthetic(2, seed=1)
    sampler = CropSampler(images, 48, 4, seed=3)
    state = sampler.state()
    lr, hr = sampler.batch(3)
    assert lr.shape == (3, 3, 12, 12)
    assert hr.shape == (3, 3, 48, 48)
    assert hr.min() >= 0
    assert hr.max() <= 1
    again = CropSampler(images, 48, 4, seed=99)
    again.restore(state)
    assert np.array_equal(again.batch(3)[1], hr)
    with pytest.raises(SrDataError, match="multiple of the scale"):
        CropSampler(images, 50, 4, seed=0)
    with pytest.raises(SrDataError, match="at least 5000"):
        CropSampler(images, 5000, 4, seed=0)


def test_a_folder_of_hr_images_is_read_sorted_and_an_empty_one_is_refused(tmp_path) -> None:
    from PIL import Image

    for name in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    Image.new("RGB", (8, 8)).save(tmp_path / "b.png")
    assert [p.name for p in folder(tmp_path)] == ["a.jpg", "b.png"]
    with pytest.raises(SrDataError, match="not a readable image"):
        load_rgb(tmp_path / "a.jpg")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SrDataError, match="no images"):
        folder(empty)
