"""Issue 6, point 3: hostile input gets only 200/400/413/415, and the server keeps answering.

1000 bodies from a seeded generator (broken JSON, wrong types, NaN and giant
numbers, wrong lengths, bad base64, non-image bytes, huge declared dimensions,
oversized bodies, wrong content types, and some valid ones) go to a real
`fnn-cli serve` process over HTTP (the session's shared one, see conftest.py).
"""

import base64
import http.client
import json
import struct
import time
import zlib
from urllib.parse import urlparse

import numpy as np
from pad_helpers import data_url, get_json, png, post_json, render_drawing
from test_preprocess import png_header

N = 1000
ALLOWED = {200, 400, 413, 415}


def b64(data):
    return base64.b64encode(data).decode()


class Bodies:
    """A seeded generator of ``(content_type, body bytes)`` pairs, one category at a time."""

    def __init__(self, seed, valid_png):
        self.rng = np.random.default_rng(seed)
        self.valid_png = valid_png

    def pick(self, items):
        return items[int(self.rng.integers(len(items)))]

    def random_bytes(self, n):
        return self.rng.integers(0, 256, int(n), dtype=np.uint8).tobytes()

    def pixels(self):
        return self.rng.random(784).round(3).tolist()

    def broken_json(self):
        good = json.dumps({"pixels": self.pixels()}).encode()
        return self.pick([good[: int(self.rng.integers(len(good)))], self.random_bytes(self.rng.integers(1, 300)),
                          b"\xff\xfe{", b'{"pixels": [0.5,,]}', b"{'image': 1}", b"", b"null", b"[" * 5000])

    def wrong_types(self):
        value = self.pick([None, True, 3, -1.5, "text", [], {}, [[]], {"a": [1]}, ["0.5"] * 784, [None] * 784, [[0.1] * 28] * 27 + [0.1]])
        return {self.pick(["image", "pixels", "model", "compare"]): value, **({"pixels": self.pixels()} if self.rng.random() < 0.5 else {})}

    def bad_numbers(self):
        p = self.pixels()
        for _ in range(int(self.rng.integers(1, 5))):
            p[int(self.rng.integers(784))] = self.pick([float("nan"), float("inf"), -float("inf"), 1e308, -1e-9, 1.0000001, 10**400])
        text = json.dumps({"pixels": p})
        if self.rng.random() < 0.2:
            text = text.replace("0.", "9" * 5000 + ".", 1)  # an integer beyond Python's digit limit
        return text

    def wrong_lengths(self):
        n = self.pick([0, 1, 783, 785, 28, 1568, int(self.rng.integers(0, 3000))])
        rows = self.pick([[[0.1] * 28] * 27, [[0.1] * 27] * 28, [[0.1] * 28] * 29])
        return {"pixels": self.pick([[0.5] * n, rows])}

    def bad_base64(self):
        raw = b64(self.valid_png)
        cut = raw[: int(self.rng.integers(1, len(raw)))]
        return {"image": self.pick([cut, "data:image/png;base64," + cut + "!", "data:image/png;base64,====",
                                    "data:image/svg+xml;base64," + raw, "data:,hello", "data:image/png," + raw,
                                    raw.replace("A", "-"), " " + raw, "é" * 50])}

    def non_image(self):
        flipped = bytearray(self.valid_png)
        for _ in range(int(self.rng.integers(1, 20))):
            flipped[int(self.rng.integers(8, len(flipped)))] ^= 1 << int(self.rng.integers(8))
        data = self.pick([self.random_bytes(self.rng.integers(1, 5000)), b"GIF89a" + self.random_bytes(100), b"BM" + self.random_bytes(100),
                          self.valid_png[: int(self.rng.integers(8, len(self.valid_png)))], bytes(flipped), b"\x89PNG\r\n\x1a\n",
                          b"\xff\xd8\xff" + self.random_bytes(200), b"<svg xmlns='http://www.w3.org/2000/svg'/>"])
        return {"image": data_url(data)}

    def huge_dimensions(self):
        w, h = (int(v) for v in self.rng.integers(1, 1 << 31, size=2))
        if self.rng.random() < 0.3:
            w = self.pick([1025, 20000, 65535, 0])
        data = png_header(w, h, zlib.compress(b"\0" * 4096))
        if self.rng.random() < 0.5:  # a JPEG frame header instead
            data = b"\xff\xd8\xff\xc0" + struct.pack(">HBHHB", 11, 8, h & 0xFFFF, w & 0xFFFF, 1) + b"\x01\x11\x00\xff\xd9"
        return {"image": data_url(data)}

    def oversized(self):
        n = int(self.rng.integers((1 << 20) + 1, 3 << 20))
        return self.pick([b'{"pixels": [' + b"0," * (n // 2) + b"0]}", b"{" + b" " * n + b"}", self.random_bytes(n)])

    def valid(self):
        return self.pick([{"pixels": self.pixels()}, {"image": data_url(self.valid_png), "compare": True}, {"pixels": [0] * 784}])

    def __iter__(self):
        kinds = [self.broken_json, self.wrong_types, self.bad_numbers, self.wrong_lengths, self.bad_base64,
                 self.non_image, self.huge_dimensions, self.oversized, self.valid]
        for i in range(N):
            kind = kinds[i % len(kinds)]
            body = kind()
            if not isinstance(body, bytes):
                body = (body if isinstance(body, str) else json.dumps(body)).encode()
            ctype = "application/json"
            if kind.__name__ != "valid" and self.rng.random() < 0.08:
                ctype = self.pick(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "image/png",
                                   "application/jsonx"])
            yield kind.__name__, ctype, body


def post_raw(conn, ctype, body):
    headers = {"Content-Type": ctype} if ctype else {}
    conn.request("POST", "/api/predict", body=body, headers=headers)
    r = conn.getresponse()
    return r.status, r.getheader("Content-Type"), r.read()


def test_fuzzed_bodies_get_only_client_errors_and_the_server_keeps_answering(pad_server, mnist):
    digit = mnist.x_test[0]
    valid_png = render_drawing(digit, np.random.default_rng(0))[0]
    url = pad_server
    host, port = urlparse(url).hostname, urlparse(url).port
    conn = http.client.HTTPConnection(host, port, timeout=30)
    seen = {}
    for i, (kind, ctype, body) in enumerate(Bodies(6, valid_png)):
        try:
            status, rtype, payload = post_raw(conn, ctype, body)
        except (ConnectionError, http.client.HTTPException):  # the server may close after refusing a body
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=30)
            status, rtype, payload = post_raw(conn, ctype, body)
        assert status in ALLOWED, (kind, ctype, body[:200], status, payload[:300])
        assert rtype == "application/json", (kind, status, payload[:200])
        assert (status == 415) == (ctype != "application/json"), (kind, ctype, status)
        if status != 200:
            assert json.loads(payload)["message"], (kind, payload[:200])
        seen.setdefault(kind, set()).add(status)
        if i % 100 == 99:
            assert get_json(url + "/healthz")[0] == 200
    conn.close()
    status, answer = post_json(url + "/api/predict", {"image": data_url(valid_png)})
    assert status == 200 and answer["label"] == 7
    print("\nstatuses by kind:", {k: sorted(v) for k, v in seen.items()})
    assert seen["valid"] == {200} and seen["oversized"] >= {413} and 415 in set().union(*seen.values())
    assert all(400 in seen[k]
               for k in ("broken_json", "wrong_types", "bad_numbers", "wrong_lengths", "bad_base64", "non_image", "huge_dimensions"))


def zeros_zlib(n, block=20001 * 1000):
    """A zlib stream of ``n`` zero bytes (``n`` a multiple of ``block``), built in a tenth of a second.

    One block of zeros is deflated and fully flushed, which makes it byte-aligned
    and free of references to earlier data, so copies of it follow one another;
    then the final empty block and the Adler-32 of ``n`` zeros (a = 1, b = n).
    """
    assert n % block == 0
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: the zlib header and trailer are written here
    one = raw.compress(bytes(block)) + raw.flush(zlib.Z_FULL_FLUSH)
    return b"\x78\xda" + one * (n // block) + raw.flush() + (((n % 65521) << 16) | 1).to_bytes(4, "big")


def test_zeros_zlib_is_the_stream_zlib_writes_for_the_same_zeros():
    n, block = 20 * 4096, 4096
    assert zlib.decompress(zeros_zlib(n, block)) == bytes(n)
    assert zeros_zlib(n, block)[-4:] == zlib.compress(bytes(n))[-4:]


def test_a_png_declaring_20000x20000_is_refused_fast_without_decoding(pad_server):
    idat = zeros_zlib(20000 * 20001)  # each row: its filter byte and 20000 zero pixels
    bomb = png_header(20000, 20000, idat)  # 400 MB of pixels in ~400 KB
    assert len(bomb) < 1 << 20
    start = time.perf_counter()
    status, answer = post_json(pad_server + "/api/predict", {"image": data_url(bomb)})
    seconds = time.perf_counter() - start
    print(f"\n20000x20000 PNG refused in {seconds * 1000:.1f} ms")
    assert status == 400 and "20000x20000" in answer["message"]
    assert seconds < 1.0


def test_huge_png_never_reaches_the_decoder(monkeypatch):
    from PIL import Image

    from fnn.serving import images

    def no_decoding(*args, **kwargs):
        raise AssertionError("Image.open was called")

    monkeypatch.setattr(Image, "open", no_decoding)
    for w, h in ((20000, 20000), (1025, 10), (10, (1 << 31) - 1)):
        try:
            images.image_to_mnist(png_header(w, h, zlib.compress(b"\0" * 100)))
        except images.ImageError as e:
            assert f"{w}x{h}" in str(e)
        else:
            raise AssertionError("not refused")
    assert png(np.zeros((4, 4))).startswith(b"\x89PNG")
