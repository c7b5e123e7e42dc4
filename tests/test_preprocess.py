"""fnn.serving.images: safe decoding, alpha, polarity, crop, 20 px box, centre of mass, blank detection."""

import io
import struct
import time
import zlib

import numpy as np
import pytest
from pad_helpers import png
from PIL import Image

from fnn.serving import images
from fnn.serving.images import ImageError, image_to_mnist


def png_header(width, height, idat=b"") -> bytes:
    """A PNG declaring ``width`` x ``height`` (8-bit gray), with ``idat`` as its only data."""

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg(array, quality=90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def stroke_canvas(value=255, alpha=True):
    """A 280x280 drawing of a '7'-like shape: ink ``value``; transparent background if ``alpha``."""
    a = np.zeros((280, 280), np.uint8)
    a[60:80, 70:210] = 1  # top bar
    for r in range(80, 230):  # diagonal
        c = 205 - (r - 80) // 2
        a[r, c - 10 : c + 10] = 1
    if alpha:
        rgba = np.zeros((280, 280, 4), np.uint8)
        rgba[..., :3] = value
        rgba[..., 3] = a * 255
        return rgba
    return np.where(a, value, 255 - value).astype(np.uint8)


def centre_of_mass(x):
    img = x.reshape(28, 28).astype(np.float64)
    r = np.arange(28)
    return img.sum(1) @ r / img.sum(), img.sum(0) @ r / img.sum()


def box(x):
    img = x.reshape(28, 28) > 0
    rows, cols = np.flatnonzero(img.any(1)), np.flatnonzero(img.any(0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


# ---------------------------------------------------------------- output format and MNIST geometry


def test_output_is_float32_784_in_unit_range_with_20px_box_centred_by_mass():
    x, info = image_to_mnist(png(stroke_canvas(alpha=False, value=0)))
    assert x.shape == (784,) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1 and x.max() > 0.9
    assert not info["blank"] and info["inverted"]
    assert max(box(x)) == 20
    cy, cx = centre_of_mass(x)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_aspect_ratio_is_kept():
    a = np.zeros((200, 200), np.uint8)
    a[20:180, 90:110] = 255  # a tall bar, 160 x 20
    x, _ = image_to_mnist(a)
    h, w = box(x)
    assert h == 20 and 2 <= w <= 4


def test_mnist_digits_come_back_nearly_unchanged(mnist):
    """MNIST itself is already in this form, so preprocessing it again moves little ink."""
    x_test = mnist.x_test[:200]
    out = np.stack([image_to_mnist(d)[0] for d in x_test])
    ref = x_test.reshape(200, -1) / 255.0
    cos = (out * ref).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(ref, axis=1)
    assert np.median(cos) > 0.9, np.median(cos)


# ---------------------------------------------------------------- polarity and transparency


def test_every_polarity_and_transparency_gives_the_same_input():
    """Dark ink on white, white on black, and dark or white strokes on a transparent canvas agree."""
    variants = [
        png(stroke_canvas(0, alpha=False)),
        png(stroke_canvas(255, alpha=False)),
        png(stroke_canvas(17, alpha=True), "RGBA"),
        png(stroke_canvas(255, alpha=True), "RGBA"),
    ]
    xs = [image_to_mnist(v)[0] for v in variants]
    for x in xs[1:]:
        assert np.abs(x - xs[0]).max() < 0.02
    assert image_to_mnist(variants[0])[1]["inverted"] and not image_to_mnist(variants[1])[1]["inverted"]


def test_palette_png_with_transparency_and_16bit_gray():
    rgba = stroke_canvas(0, alpha=True)
    pal = Image.fromarray(rgba, "RGBA").convert("P")  # keeps a transparent palette entry
    buf = io.BytesIO()
    pal.save(buf, "PNG")
    x_pal, _ = image_to_mnist(buf.getvalue())
    ref, _ = image_to_mnist(png(stroke_canvas(255, alpha=False)))
    assert np.abs(x_pal - ref).max() < 0.05
    gray16 = Image.fromarray(stroke_canvas(255, alpha=False).astype(np.uint16) * 257)
    buf = io.BytesIO()
    gray16.save(buf, "PNG")
    x16, _ = image_to_mnist(buf.getvalue())
    assert np.abs(x16 - ref).max() < 0.02


def test_jpeg_photo_like_input():
    """A lossy JPEG of grey ink on off-white paper still gives the same digit."""
    a = stroke_canvas(255, alpha=False).astype(np.float32)
    paper = 60 + 170 * (1 - a / 255)  # ink 60, paper 230
    x, info = image_to_mnist(jpeg(paper, quality=60))
    ref, _ = image_to_mnist(png(stroke_canvas(255, alpha=False)))
    assert info["inverted"] and not info["blank"]
    assert np.abs(x - ref).mean() < 0.03


# ---------------------------------------------------------------- blank and near-blank


@pytest.mark.parametrize(
    "image, reason",
    [
        (np.zeros((280, 280), np.uint8), "nothing drawn"),
        (np.full((280, 280), 255, np.uint8), "nothing drawn"),
        (np.zeros((280, 280, 4), np.uint8), "nothing drawn"),  # empty transparent canvas
        (np.full((280, 280), 128, np.uint8) + np.uint8(10) * (np.arange(280) % 2).astype(np.uint8), "nothing drawn"),
    ],
)
def test_blank_images_are_not_labelled(image, reason):
    x, info = image_to_mnist(png(image))
    assert info["blank"] and info["reason"] == reason
    assert not x.any()


def test_a_speck_is_near_blank_but_a_small_digit_is_not():
    speck = np.zeros((280, 280), np.uint8)
    speck[100:108, 100:108] = 255
    info = image_to_mnist(speck)[1]
    assert info["blank"] and info["reason"] == "too little ink to read"
    small = np.zeros((280, 280), np.uint8)
    small[100:160, 120:128] = 255  # a short '1'
    assert not image_to_mnist(small)[1]["blank"]


def test_blank_reason_on_network_inputs(mnist):
    assert images.blank_reason(np.zeros(784, np.float32)) == "nothing drawn"
    one = np.zeros(784, np.float32)
    one[400] = 1
    assert images.blank_reason(one) == "too little ink to read"
    digit = mnist.x_test[0].reshape(-1) / np.float32(255)
    assert images.blank_reason(digit) is None


# ---------------------------------------------------------------- hostile and broken input


def test_huge_png_is_refused_from_its_header_without_decoding():
    data = png_header(20000, 20000, zlib.compress(b"\0" * 20001 * 64))  # 64 rows of data only
    t = time.perf_counter()
    with pytest.raises(ImageError, match="20000x20000"):
        image_to_mnist(data)
    assert time.perf_counter() - t < 1.0  # the bound; decoding 400 MB of pixels would take far longer


def test_huge_jpeg_is_refused_from_its_frame_header():
    data = bytearray(jpeg(np.zeros((16, 16))))
    i = data.index(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", 30000, 30000)
    assert images.header_size(bytes(data)) == ("JPEG", 30000, 30000)
    with pytest.raises(ImageError, match="30000x30000"):
        image_to_mnist(bytes(data))


def test_size_limit_is_1024_each_side():
    assert images.header_size(png(np.zeros((1024, 3)))) == ("PNG", 3, 1024)
    image_to_mnist(png(np.zeros((1024, 1024))))
    with pytest.raises(ImageError, match="1025x1"):
        image_to_mnist(png(np.zeros((1, 1025))))
    with pytest.raises(ImageError, match="limit"):
        image_to_mnist(np.zeros((2000, 10), np.uint8))


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "not a PNG or JPEG"),
        (b"GIF89a" + b"\0" * 30, "not a PNG or JPEG"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 4, "IHDR"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "frame header"),
        (png_header(10, 10, b"not zlib"), "cannot decode"),
        (png_header(0, 10), "0x10"),
    ],
)
def test_broken_images_raise_image_error(data, match):
    with pytest.raises(ImageError, match=match):
        image_to_mnist(data)


def test_truncated_png_raises_image_error():
    data = png(stroke_canvas(255, alpha=False))
    with pytest.raises(ImageError):
        image_to_mnist(data[: len(data) // 2])


@pytest.mark.parametrize(
    "array",
    [np.zeros((28, 28, 2)), np.full((28, 28), np.nan), np.full((28, 28), 2.0), np.zeros((28, 28), object), np.zeros(784)],
)
def test_bad_arrays_raise_image_error(array):
    with pytest.raises(ImageError):
        image_to_mnist(array)


def test_arrays_work_like_images():
    rgba = stroke_canvas(0, alpha=True)
    from_array, _ = image_to_mnist(rgba)
    from_float, _ = image_to_mnist(rgba.astype(np.float32) / 255)
    from_png, _ = image_to_mnist(png(rgba, "RGBA"))
    assert np.abs(from_array - from_png).max() < 0.02 and np.abs(from_float - from_png).max() < 0.02


def test_load_image_file(tmp_path):
    path = tmp_path / "seven.png"
    path.write_bytes(png(stroke_canvas(0, alpha=False)))
    x, info = images.load_image_file(path)
    assert x.shape == (784,) and not info["blank"]
    with pytest.raises(ImageError, match="no such file"):
        images.load_image_file(tmp_path / "missing.png")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ImageError, match="text.png: not a PNG or JPEG"):
        images.load_image_file(tmp_path / "text.png")
    with pytest.raises(ImageError, match="folder"):
        images.load_image_file(tmp_path)
