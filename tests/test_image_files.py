"""Awkward image files: every mode converts correctly, every broken file is skipped with its reason."""

import numpy as np
import pytest
from PIL import Image

from cnnkit.data.images import UnreadableImage, decode, probe


def test_deep_images_are_scaled_to_8_bits_by_their_nominal_range(tmp_path):
    Image.fromarray(np.array([[0, 32768], [65535, 257]], np.uint16)).save(tmp_path / "a.png")
    assert decode(tmp_path / "a.png", (2, 2), 1)[0].tolist() == [[0, 128], [255, 1]]
    Image.fromarray(np.array([[0, 2**30], [2**31 - 1, 65536]], np.int32), "I").save(tmp_path / "b.tif")
    assert decode(tmp_path / "b.tif", (2, 2), 1)[0].tolist() == [[0, 128], [255, 0]], "beyond 16 bits: by its maximum"
    Image.fromarray(np.array([[0, 1000], [65535, 257]], np.int32), "I").save(tmp_path / "e.tif")
    assert decode(tmp_path / "e.tif", (2, 2), 1)[0].tolist() == [[0, 4], [255, 1]], "within 16 bits: by 65535"
    Image.fromarray(np.array([[0, 0.5], [1.0, 0.25]], np.float32), "F").save(tmp_path / "c.tif")
    assert decode(tmp_path / "c.tif", (2, 2), 3)[1].tolist() == [[0, 128], [255, 64]]
    Image.fromarray(np.array([[-2**23, 3]], np.int32), "I").save(tmp_path / "d.tif")
    with pytest.raises(UnreadableImage) as negative:
        decode(tmp_path / "d.tif", (2, 2), 1)
    assert str(negative.value) == "negative pixel values (down to -8388608); convert it to 8-bit"  # not -8.38861e+06


def test_cmyk_jpeg_becomes_the_right_rgb(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "red.jpg", quality=100)  # no black, full M+Y: red
    red = decode(tmp_path / "red.jpg", (4, 4), 3)
    assert red[0].min() > 230 and red[1].max() < 25 and red[2].max() < 25


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((8, 16, 3), np.uint8)
    pixels[:, :8] = 255  # left half white, stored landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view"
    Image.fromarray(pixels).save(tmp_path / "phone.jpg", exif=exif, quality=100)
    upright = decode(tmp_path / "phone.jpg", (16, 8), 1)[0]  # viewed upright it is portrait: 16 high, 8 wide
    assert upright[:8].mean() > 200 and upright[8:].mean() < 50, "the white half is on top once rotated"


def test_transparency_is_composited_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:2] = (0, 0, 0, 255)  # top half opaque black, bottom half fully transparent black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    gray = decode(tmp_path / "a.png", (4, 4), 1)[0]
    assert gray[:2].max() == 0 and gray[2:].min() == 255
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([10, 20, 30] + [0] * 765)
    palette.info["transparency"] = 0
    palette.save(tmp_path / "p.png", transparency=0)
    assert decode(tmp_path / "p.png", (4, 4), 3).min() == 255


def test_grayscale_palette_and_one_bit_images_convert(tmp_path):
    Image.new("L", (4, 4), 100).save(tmp_path / "l.png")
    Image.new("1", (4, 4), 1).save(tmp_path / "one.png")
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    palette.save(tmp_path / "p.gif")
    assert decode(tmp_path / "l.png", (4, 4), 3).tolist() == np.full((3, 4, 4), 100).tolist()
    assert decode(tmp_path / "one.png", (4, 4), 1).min() == 255
    assert decode(tmp_path / "p.gif", (4, 4), 3)[:, 0, 0].tolist() == [0, 200, 0]


def test_probe_finds_every_broken_file_without_decoding(tmp_path, broken_files):
    for name, why in broken_files(tmp_path).items():
        with pytest.raises(UnreadableImage, match=why):
            probe(tmp_path / name)


def test_a_folder_of_awkward_and_broken_files_trains_and_reports_what_it_skipped(run_cli, image_folder, tmp_path, broken_files):
    dark = image_folder / "train" / "dark"
    reasons = broken_files(dark)
    Image.new("CMYK", (12, 12), (0, 0, 0, 220)).save(dark / "cmyk.jpg")
    Image.fromarray(np.full((12, 12), 9000, np.uint16)).save(dark / "deep.png")
    exif = Image.Exif()
    exif[0x0112] = 8
    Image.new("RGB", (12, 20), (30, 30, 30)).save(dark / "rotated.jpg", exif=exif)
    (dark / ".DS_Store").write_bytes(b"\x00\x01garbage")
    result = run_cli("train", "--data", str(image_folder), "--epochs", "1", "--batch-size", "8",
                     "--out", str(tmp_path / "runs"), "--name", "awkward")
    assert result.code == 0, result.err
    for name, why in reasons.items():
        assert f"skipping unreadable image {dark / name}: {why}" in result.err
    assert result.err.count("skipping unreadable image") == len(reasons), "one warning per file, hidden files ignored"
    assert f"{len(reasons)} unreadable file(s) skipped" in result.out
    assert "(27 train / 8 val images, 4 unreadable file(s) skipped)" in result.out


def test_every_image_size_fits_every_common_input_size(tmp_path):
    """Rounding in the centre box once pushed it a hair outside the image for about 1 size in 20."""
    from cnnkit.data.images import fit

    for side in range(20, 240):
        for shape in ((side, side), (side, side * 4 // 3)):
            img = Image.new("RGB", (shape[1], shape[0]))
            for size in ((28, 28), (224, 224), (32, 32)):
                assert fit(img, size, 3).shape == (3, *size), (shape, size)
