"""Issue 17: images that cost the decoder more than their size says are refused before decoding; EXIF orientation.

The pixel limit (1024x1024) bounds a PNG's inflated data, not the work per
byte: a 1 MB progressive JPEG of 100,000 empty scans took 40 s to decode on
this machine, and floods of JPEG segments or PNG chunks cost a second in
Pillow's Python parsers. Each must now be refused (``ImageError`` naming the
limit) in milliseconds, while everything within the limits still decodes fast.
A photo's EXIF orientation is applied; a broken EXIF block is ignored.
"""

import struct
import time
import zlib

import numpy as np
import pytest
from hostile_images import (
    as_stored,
    chunk,
    exif_orientation,
    insert_after_soi,
    insert_before_eoi,
    jpeg,
    png_image,
    scan_bomb,
    segment,
    tiff_ifd,
)
from pad_helpers import png
from PIL import Image

from fnn import datasets
from fnn.serving import images as preprocess
from fnn.serving.images import ImageError, image_to_mnist

# What Pillow's EXIF parser warns about the broken blocks below (they are meant to be broken).
pytestmark = [pytest.mark.filterwarnings(f"ignore:{m}:UserWarning") for m in
              ("Corrupt EXIF", "Possibly corrupt EXIF", "Tag data larger", "Metadata Warning")]
MB = 1 << 20
EMPTY = segment(0xFE, b"")  # an empty comment segment: 4 bytes


def timed(data):
    """``(seconds, result or the ImageError)`` of ``decode_image(data)``."""
    start = time.perf_counter()
    try:
        result = preprocess.decode_image(data)
    except ImageError as e:
        result = e
    return time.perf_counter() - start, result


def small_png(w=10, h=10):
    return zlib.compress(b"\0" * (w + 1) * h)


# ---------------------------------------------------------------- over the limits: refused, fast

OVER = {
    "1 MB of empty DC scans, 1024x1024": (lambda: scan_bomb(size=MB), "more than 64 scans"),
    "750 KB of empty AC scans (fits a 1 MB request)": (lambda: scan_bomb(size=750_000, kind="ac"), "more than 64 scans"),
    "1 MB of 3-component scans": (lambda: scan_bomb(size=MB, components=3), "more than 64 scans"),
    "65 scans at 1024x1024": (lambda: scan_bomb(scans=65), "more than 64 scans"),
    "257 scans at 8x8": (lambda: scan_bomb(side=8, scans=257), "more than 256 scans"),
    "200,000 comments before the frame": (lambda: insert_after_soi(scan_bomb(scans=1), EMPTY * 200_000), "marker segments"),
    "1 MB of fill bytes before the frame": (lambda: insert_after_soi(scan_bomb(scans=1), b"\xff" * MB), "marker segments"),
    "200,000 APP1 segments after the frame": (
        lambda: scan_bomb(scans=1).replace(b"\xff\xda", segment(0xE1, b"") * 200_000 + b"\xff\xda", 1), "marker segments"),
    "200,000 comments between scans": (lambda: insert_before_eoi(scan_bomb(scans=1), EMPTY * 200_000), "marker segments"),
    "junk between the frame and the scan": (lambda: scan_bomb(scans=1).replace(b"\xff\xc4", b"\x00" * 100_000 + b"\xff\xc4", 1),
                                      "corrupt JPEG header"),
    "80,000 empty IDAT chunks": (lambda: png_image(10, 10, [small_png()] + [b""] * 80_000), "more than 4096 chunks"),
    "80,000 unknown chunks before IDAT": (lambda: png_image(10, 10, [small_png()], before=chunk(b"abCd", b"") * 80_000),
                                          "more than 4096 chunks"),
    "80,000 tEXt chunks after IDAT": (lambda: png_image(10, 10, [small_png()], after=chunk(b"tEXt", b"a\0") * 80_000),
                                      "more than 4096 chunks"),
    "900 zTXt chunks inflating to 1 MB each": (
        lambda: png_image(10, 10, [small_png()], before=chunk(b"zTXt", b"a\0\0" + zlib.compress(b"a" * MB, 9)) * 900),
        "900 compressed text or ICC chunks"),
}


@pytest.mark.parametrize("name", list(OVER))
def test_work_bombs_are_refused_in_milliseconds_before_decoding(name, monkeypatch):
    build, message = OVER[name]
    data = build()
    assert len(data) <= 1.1 * MB
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("Image.open was called"))
    seconds, result = timed(data)
    assert isinstance(result, ImageError) and message in str(result), result
    assert seconds < 0.1, f"{name}: refused in {seconds:.3f} s"


# ---------------------------------------------------------------- within the limits: decoded, fast


def real_progressive(color, quality=30, **save):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (1024, 1024, 3) if color else (1024, 1024), dtype=np.uint8)
    return jpeg(a, progressive=True, quality=quality, **save)


WITHIN = {
    "64 empty scans at 1024x1024": lambda: scan_bomb(scans=64),
    "256 empty scans at 128x128": lambda: scan_bomb(side=128, scans=256),
    "Pillow's progressive gray JPEG, 1024x1024 noise (6 scans)": lambda: real_progressive(False),
    "Pillow's progressive color JPEG, 1024x1024 noise (10 scans)": lambda: real_progressive(True),
    "the heaviest real JPEG found: progressive 4:4:4 color noise, 755 KB": lambda: real_progressive(
        True, 50, subsampling=0),
    "1000 comments before the frame": lambda: insert_after_soi(scan_bomb(scans=1), EMPTY * 1000),
    "4000 unknown PNG chunks": lambda: png_image(10, 10, [small_png()], before=chunk(b"abCd", b"") * 4000),
    "16 zTXt chunks inflating to 1 MB each": lambda: png_image(
        10, 10, [small_png()], before=chunk(b"zTXt", b"a\0\0" + zlib.compress(b"a" * MB, 9)) * 16),
    "16-bit RGBA, interlaced, 1024x1024: 8 MB inflated from 8 KB": lambda: png_image(
        1024, 1024, [zlib.compress(b"\0" * (8 * 1024 + 1) * 1024 * 2, 9)], depth=16, color=6, interlace=1),
    "a 10x10 PNG whose zlib stream would inflate to 256 MB": lambda: png_image(10, 10, [zeros_stream(256)]),
    "a 1024x1024 palette PNG, 256 colours, all translucent": lambda: png_image(
        1024, 1024, [zlib.compress((b"\0" + bytes(range(256)) * 4) * 1024)], color=3,
        before=chunk(b"PLTE", bytes(range(256)) * 3) + chunk(b"tRNS", bytes(range(256)))),
    "1024x1024 in 4000 IDAT chunks": lambda: png_image(1024, 1024, split(zlib.compress(b"\0" * 1025 * 1024), 4000)),
}


def zeros_stream(mb):
    """A zlib stream of ``mb`` MB of zeros (about ``mb`` KB), built without holding them."""
    packer = zlib.compressobj(9)
    block = b"\0" * MB
    return b"".join(packer.compress(block) for _ in range(mb)) + packer.flush()


def split(data, n):
    return [data[i * len(data) // n : (i + 1) * len(data) // n] for i in range(n)]


@pytest.mark.parametrize("name", list(WITHIN))
def test_the_worst_images_within_the_limits_decode_in_under_a_second(name):
    data = WITHIN[name]()
    assert len(data) <= MB
    times = [timed(data) for _ in range(3)]
    seconds = sorted(t for t, _ in times)[1]
    result = times[0][1]
    print(f"\n{name}: {len(data)} bytes, decoded in {seconds * 1000:.0f} ms")
    assert not isinstance(result, ImageError), result
    assert seconds < 1.0  # the bound for any 1 MB body; measured: 0-50 ms, 0.36 s for the heaviest JPEG


def test_scan_limit_is_scans_times_pixels():
    assert preprocess.jpeg_scans(scan_bomb(scans=10), 100) == 10
    assert preprocess.jpeg_scans(scan_bomb(scans=500), 100) == 101  # counting stops past the limit
    assert preprocess.jpeg_scans(real_progressive(True), 100) == 10
    preprocess.check_work("JPEG", scan_bomb(side=724, scans=128), 724, 724)  # 128 x 724^2 <= 64 x 1024^2
    with pytest.raises(ImageError, match="more than 64 scans; the limit for 1024x1024"):
        preprocess.check_work("JPEG", scan_bomb(scans=65), 1024, 1024)
    with pytest.raises(ImageError, match="more than 128 scans; the limit for 724x724"):
        preprocess.check_work("JPEG", scan_bomb(side=724, scans=129), 724, 724)


def test_entropy_coded_data_is_skipped_as_libjpeg_skips_it():
    """Stuffed 0xFF00, restart markers and fill bytes inside a scan are not segments; an SOS inside an APP segment is not a scan."""
    one = scan_bomb(scans=1)
    noisy = one.replace(b"\xff\xd9", b"\xff\x00" * 5000 + b"\xff\xd0\xff\xd7" * 2000 + b"\xff\xff\xff" + b"\xff\xd9")
    assert preprocess.jpeg_scans(noisy, 10) == 1
    hidden = insert_after_soi(one, segment(0xE1, (b"\xff\xda\x00\x02" * 1000)))  # payload bytes, not markers
    assert preprocess.jpeg_scans(hidden, 10) == 1
    after_eoi = one + scan_bomb(scans=300)[2:]  # what follows EOI is never decoded
    assert preprocess.jpeg_scans(after_eoi, 10) == 1


# ---------------------------------------------------------------- EXIF orientation


@pytest.fixture(scope="module")
def upright_seven():
    """An MNIST 7 (test image 0) drawn dark on light on a 280x200 page (not square, so a turn shows)."""
    digit = datasets.load("mnist").x_test[0]
    page = np.full((280, 200), 255, np.uint8)
    page[40:240, 0:200] = 255 - np.asarray(Image.fromarray(digit).resize((200, 200), Image.Resampling.BICUBIC))
    return page


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(upright_seven, orientation, fmt):
    expected, _ = image_to_mnist(png(upright_seven))
    stored = as_stored(upright_seven, orientation)
    exif = exif_orientation(orientation)
    data = jpeg(stored, quality=95, exif=exif) if fmt == "JPEG" else png_with_exif(stored, exif)
    x, info = image_to_mnist(data)
    assert info["size"] == [280, 200]  # the upright size
    assert np.abs(x - expected).max() < 0.1, f"orientation {orientation} not applied"


def png_with_exif(array, exif):
    import io

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG", exif=exif)
    return buf.getvalue()


TURN = (0x0112, 3, 1, 6)  # SHORT orientation 6, in place

BROKEN_EXIF = {  # EXIF block -> the orientation that must come out of it (1: ignored)
    "only the Exif header": (b"", 1),
    "truncated TIFF header": (b"II*\x00\x08", 1),
    "unknown byte order": (b"XX*\x00" + b"\x00" * 20, 1),
    "IFD offset past the end": (b"II*\x00\xff\xff\xff\x7f", 1),
    "65535 entries announced, none there": (b"II*\x00\x08\x00\x00\x00\xff\xff", 1),
    "orientation 0": (tiff_ifd([(0x0112, 3, 1, 0)]), 1),
    "orientation 9": (tiff_ifd([(0x0112, 3, 1, 9)]), 1),
    "orientation 65535": (tiff_ifd([(0x0112, 3, 1, 65535)]), 1),
    "orientation as text '6'": (tiff_ifd([(0x0112, 2, 2, ord("6"))]), 1),
    "orientation with two values (the first is read)": (tiff_ifd([(0x0112, 3, 2, 6 | 1 << 16)]), 6),
    "orientation pointing past the end": (tiff_ifd([(0x0112, 3, 1000, 4000)]), 1),
    "orientation of an unknown type": (tiff_ifd([(0x0112, 99, 1, 6)]), 1),
    "orientation 6, then an Exif IFD pointing to itself": (tiff_ifd([TURN, (0x8769, 4, 1, 8)]), 6),
    "orientation 6, then a next IFD past the end": (tiff_ifd([TURN], next_ifd=1 << 30), 6),
    "orientation 6, then a GPS IFD of garbage": (tiff_ifd([TURN, (0x8825, 4, 1, 26)], tail=b"\xff" * 40), 6),
    "big-endian orientation 6": (b"MM\x00*" + struct.pack(">IHHHIHHI", 8, 1, 0x0112, 3, 1, 6, 0, 0), 6),
    "orientation 6 as three SHORTs stored after the IFD": (tiff_ifd([(0x0112, 3, 3, 26)], tail=struct.pack("<HHH", 6, 1, 1)), 6),
    "orientation 6 among 5000 junk entries": (tiff_ifd([(0x9000 + i % 50, 7, 100000, 10) for i in range(5000)] + [TURN]), 6),
}


@pytest.mark.parametrize("name", list(BROKEN_EXIF))
def test_a_broken_exif_block_is_ignored_but_a_readable_orientation_is_kept(upright_seven, name):
    tiff, orientation = BROKEN_EXIF[name]
    expected, _ = image_to_mnist(png(upright_seven))
    x, info = image_to_mnist(jpeg(as_stored(upright_seven, orientation), quality=95, exif=b"Exif\x00\x00" + tiff))
    assert info["size"] == [280, 200]
    assert np.abs(x - expected).max() < 0.1
