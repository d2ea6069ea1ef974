"""32-bit integer TIFFs whose values exceed 16 bits (a 24-bit camera, a sum of frames): scaled by
their own maximum with a warning, not by 2**32 - 1 into near black."""

import numpy as np
from PIL import Image

from cnnkit.contracts import DataRequest
from cnnkit.data.folder import load_folder
from cnnkit.data.images import RESCALED_WARNINGS, decode, forget_rescaled

TOP = 2**24 - 1


def deep_tiff(path, top=TOP, size=16):
    values = np.linspace(0, top, size * size).round().astype(np.int32).reshape(size, size)
    Image.fromarray(values, "I").save(path)
    return values


def test_a_24_bit_tiff_is_scaled_by_its_maximum_with_one_warning(tmp_path, make_images, capsys):
    make_images(tmp_path / "data" / "plain", 4, (0, 0, 0), size=16)
    (tmp_path / "data" / "deep").mkdir()
    values = deep_tiff(tmp_path / "data" / "deep" / "camera.tif")
    for name in ("b.tif", "c.tif", "d.tif"):
        deep_tiff(tmp_path / "data" / "deep" / name, top=65535)  # within 16 bits: no warning
    data = load_folder(tmp_path / "data", DataRequest(image_size=(16, 16), channels=1, val_split=0.25, seed=0))
    split = data.train if "camera" in str(data.train.source.paths) else data.val
    position = [str(p).endswith("camera.tif") for p in split.source.paths].index(True)
    for _ in range(2):  # read twice, as every epoch of streamed data reads it
        pixels = split.source.read(position)[0]
    expected = np.round(values * (255 / TOP)).astype(np.uint8)  # by hand: 0..max onto 0..255
    assert np.array_equal(pixels, expected) and pixels.max() == 255
    assert np.round(values * (255 / (2**32 - 1))).max() <= 1, "the nominal 32-bit range would make it black"
    warnings = [line for line in capsys.readouterr().err.splitlines() if "32-bit" in line]
    assert warnings == [
        f"cnnkit: warning: '{tmp_path / 'data' / 'deep' / 'camera.tif'}' holds 32-bit values up to {TOP}, beyond 16 bits; "
        "cnnkit scales it by that maximum (to 255), so its brightness is its own, not comparable with other files'; "
        "convert it to 8 or 16 bits to choose the scale."
    ]


def test_many_such_files_are_named_up_to_a_limit(tmp_path, capsys):
    forget_rescaled()
    for i in range(RESCALED_WARNINGS + 3):
        deep_tiff(tmp_path / f"{i}.tif", top=2**20 + i)
        assert decode(tmp_path / f"{i}.tif", (16, 16), 1).max() == 255
    err = capsys.readouterr().err.splitlines()
    assert len([line for line in err if "holds 32-bit values" in line]) == RESCALED_WARNINGS
    assert err[-1] == ("cnnkit: warning: more 32-bit images hold values beyond 16 bits; each is scaled by its own maximum "
                       "like those above (no further warnings).")


def test_a_uniform_32_bit_tiff_is_named_as_a_blank_image(tmp_path, capsys):
    """One value beyond 16 bits everywhere: scaled by its own maximum it is pure white, and the
    warning says so (the generic warning speaks of a brightness the file does not have)."""
    forget_rescaled()
    Image.fromarray(np.full((8, 8), 2**20, np.int32), "I").save(tmp_path / "flat.tif")
    assert decode(tmp_path / "flat.tif", (8, 8), 1).tolist() == [[[255] * 8] * 8]
    assert capsys.readouterr().err.splitlines() == [
        f"cnnkit: warning: '{tmp_path / 'flat.tif'}' holds one 32-bit value, 1048576, in every pixel, beyond 16 bits; "
        "scaled by its own maximum (as cnnkit scales such files) it is pure white (255), a blank image whose level tells "
        "nothing; convert it to 8 or 16 bits to choose the scale, or remove it."]
