"""Issue 19: each model's images get its own dataset's preprocessing (fnn.serving.pipelines and .photos),
chosen from its metadata, one implementation for the pad and `fnn-cli predict`."""

import io

import numpy as np
import pytest
from pad_helpers import png
from PIL import Image

import fnn
from fnn import datasets
from fnn.serialization import ModelFileError, check_metadata, preprocessing_of
from fnn.serving import images, inference, photos
from fnn.serving.pipelines import PipelineError, kind_of, pipeline_for


@pytest.fixture(scope="module")
def fashion():
    data = datasets.load("fashion-mnist")
    return data.x_test[:200], data.y_test[:200]


def jpeg(array, quality=95, exif=None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buf, "JPEG", quality=quality, **({"exif": exif} if exif else {}))
    return buf.getvalue()


# ---------------------------------------------------------------- which pipeline


@pytest.mark.parametrize("metadata, shape, kind", [
    ({"preprocessing": "fashion"}, (-1, 784), "fashion"),  # declared as a bare name (custom data)
    ({"preprocessing": {"kind": "rgb32", "scale": 1 / 255}}, (-1, 3072), "rgb32"),  # as fnn-cli fit writes it
    ({"preprocessing": {"kind": "none", "image_shape": [16, 16]}}, (-1, 256), "none"),
    ({"dataset": "fashion-mnist", "preprocessing": {"grayscale": False}}, (-1, 784), "fashion"),  # files before kinds
    ({"dataset": "mnist"}, (-1, 784), "digits"),
    ({"dataset": "cifar10"}, (-1, 3072), "rgb32"),
    ({"dataset": "cifar10", "preprocessing": {"grayscale": True}}, (-1, 1024), "rgb32"),
    ({"dataset": "mnist"}, (-1, 100), "none"),  # a name that does not fit the input falls back on the shape
    ({}, (-1, 784), "digits"),  # no metadata at all: by input size
    ({}, (-1, 28, 28, 1), "digits"),
    ({"dataset": "my-photos"}, (-1, 3072), "rgb32"),
    ({}, (-1, 5), "none"),
])
def test_the_kind_is_declared_else_by_dataset_name_else_by_input_shape(metadata, shape, kind):
    assert kind_of(metadata, shape) == kind


def test_a_declared_kind_that_does_not_fit_the_input_is_refused_naming_both():
    with pytest.raises(PipelineError, match="'digits' gives 784 features; the model takes 3072"):
        kind_of({"preprocessing": "digits"}, (-1, 3072))
    with pytest.raises(PipelineError, match="unknown preprocessing 'jpeg'"):
        kind_of({"preprocessing": {"kind": "jpeg"}}, (-1, 784))


def test_model_files_may_declare_a_kind_and_old_ones_still_load(tmp_path):
    check_metadata("m.npz", {"preprocessing": "rgb32"}, 3072, 10)
    check_metadata("m.npz", {"preprocessing": {"kind": "fashion", "grayscale": False, "mean": None, "std": None}}, 784, 10)
    check_metadata("m.npz", {"preprocessing": {"scale": 1 / 255, "grayscale": False, "image_shape": [28, 28]}}, 784, 10)
    for bad, message in (("bmp", "'bmp' is not one of digits, fashion, rgb32, none"), ({"kind": 3}, "kind 3 is not one of")):
        with pytest.raises(ModelFileError, match=message):
            check_metadata("m.npz", {"preprocessing": bad}, 784, 10)
    assert preprocessing_of({"preprocessing": "none"}) == {"kind": "none"} and preprocessing_of({}) == {}
    model = fnn.mlp([784, 10])
    _, params = model.init(fnn.random.key(0), (-1, 784))
    fnn.save_model(tmp_path / "m.npz", model, params, (-1, 784), {"preprocessing": "bogus"})
    with pytest.raises(ModelFileError, match="'bogus' is not one of"):
        fnn.load_model(tmp_path / "m.npz")


def test_fit_records_the_kind_and_refuses_one_that_does_not_fit(tmp_path):
    from fnn.training.config import ConfigError, FitConfig
    from fnn.training.experiment import prepare_data

    x = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "p.npz", x=x, y=np.arange(40) % 4)
    meta = prepare_data(FitConfig(dataset=str(tmp_path / "p.npz"), arch=(3072, 4)))["meta"]
    assert meta["preprocessing"]["kind"] == "rgb32"
    meta = prepare_data(FitConfig(dataset=str(tmp_path / "p.npz"), arch=(1024, 4), grayscale=True))["meta"]
    assert meta["preprocessing"]["kind"] == "rgb32" and meta["preprocessing"]["grayscale"] is True
    meta = prepare_data(FitConfig(dataset=str(tmp_path / "p.npz"), arch=(3072, 4), preprocessing="none"))["meta"]
    assert meta["preprocessing"]["kind"] == "none"
    with pytest.raises(ConfigError, match="preprocessing 'fashion' does not fit p: .*gives 784 features; the model takes 3072"):
        prepare_data(FitConfig(dataset=str(tmp_path / "p.npz"), arch=(3072, 4), preprocessing="fashion"))
    assert prepare_data(FitConfig(arch=(784, 10)))["meta"]["preprocessing"]["kind"] == "digits"


# ---------------------------------------------------------------- Fashion-MNIST's preprocessing


def render(item, scale, top, left, light, canvas=200):
    """A Fashion-MNIST image scaled (bicubic) to ``scale`` of a ``canvas`` at ``(top, left)``, black or white background."""
    side = int(round(scale * canvas))
    page = np.zeros((canvas, canvas), np.uint8)
    page[top : top + side, left : left + side] = np.asarray(Image.fromarray(item).resize((side, side), Image.Resampling.BICUBIC))
    return 255 - page if light else page


def test_fashion_gives_the_stored_image_back_from_a_photo_on_white_or_black(fashion):
    x, _ = fashion
    rng = np.random.default_rng(0)
    errors, digit_errors = [], []
    for item in x[:40]:
        scale = rng.uniform(0.6, 1.0)
        top, left = rng.integers(0, int(200 * (1 - scale)) + 1, size=2)
        for light in (False, True):
            photo = png(render(item, scale, top, left, light))
            got, info = photos.image_to_fashion(photo)
            assert got.shape == (784,) and got.dtype == np.float32 and info["inverted"] is light and not info["blank"]
            errors.append(np.abs(got - item.reshape(-1) / np.float32(255)).mean())  # mean absolute error, 0..1 units
            digit_errors.append(np.abs(images.image_to_mnist(photo)[0] - item.reshape(-1) / np.float32(255)).mean())
    # measured: 0.036 (a bicubic blow-up and back blurs edges) against 0.165 for the digit pipeline
    assert np.median(errors) < 0.045 and np.median(errors) < np.median(digit_errors) / 3, (np.median(errors), np.median(digit_errors))


def test_fashion_keeps_gray_levels_aspect_and_centres_by_the_box_not_the_mass():
    a = np.full((300, 300), 255, np.uint8)
    a[40:260, 100:160] = 160  # a mid-gray bar on white, 220 x 60, off-centre to the left
    a[40:80, 100:160] = 0  # its top is black: the mass sits high
    x, info = photos.image_to_fashion(png(a))
    img = x.reshape(28, 28)
    rows, cols = np.flatnonzero(img.max(1) > 0.05), np.flatnonzero(img.max(0) > 0.05)
    assert rows[0] == 0 and rows[-1] == 27  # the longer side fills 28 px (not MNIST's 20 px box)
    assert 7 <= len(cols) <= 9 and abs((cols[0] + cols[-1]) / 2 - 13.5) <= 0.5  # aspect kept, centred by its box
    assert abs(img[14, 13] - (255 - 160) / 255) < 0.02  # gray levels kept (negated), not stretched to 1
    assert img[1, 13] > 0.98 and info["inverted"]
    digit_x, _ = images.image_to_mnist(png(a))
    assert np.abs(digit_x - x).max() > 0.5  # the digit pipeline would have given something else


def test_fashion_transparency_and_nothing_to_see():
    rgba = np.zeros((100, 100, 4), np.uint8)
    assert photos.image_to_fashion(png(rgba, "RGBA"))[1]["reason"] == "nothing to see"
    rgba[20:80, 30:70] = (40, 40, 40, 255)  # a dark object on transparency is flattened onto white, then negated
    x, info = photos.image_to_fashion(png(rgba, "RGBA"))
    assert info["inverted"] and not info["blank"] and x.reshape(28, 28)[14, 14] > 0.8
    speck = np.full((200, 200), 255, np.uint8)
    speck[100:103, 100:103] = 0
    assert photos.image_to_fashion(speck)[1]["reason"] == "too small to read"
    assert photos.image_to_fashion(np.full((50, 50), 0.5, np.float32))[1]["reason"] == "nothing to see"


# ---------------------------------------------------------------- CIFAR-10's preprocessing


def test_rgb32_keeps_a_32x32_image_bit_for_bit_and_crops_the_central_square():
    from fnn.datasets.transforms import scale

    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    x, info = photos.image_to_rgb32(png(a))
    assert x.shape == (32, 32, 3) and x.dtype == np.float32 and np.array_equal(x, scale(a)) and not info["blank"]
    smooth = np.asarray(Image.fromarray(a[:8, :8]).resize((32, 32), Image.Resampling.BICUBIC))
    wide = np.zeros((64, 96, 3), np.uint8)
    wide[:, 16:80] = np.asarray(Image.fromarray(smooth).resize((64, 64), Image.Resampling.BICUBIC))
    wide[:, :16], wide[:, 80:] = 255, 255  # what lies outside the central square is cut away
    x, info = photos.image_to_rgb32(png(wide))
    assert info["crop"] == [0, 16, 64, 80] and np.abs(x - scale(smooth)).mean() < 0.02
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0], rgba[10:30, 10:30, 3] = 200, 255
    x, _ = photos.image_to_rgb32(png(rgba, "RGBA"))
    assert np.allclose(x[0, 0], 1) and np.allclose(x[16, 16], [200 / 255, 0, 0], atol=0.02)  # onto white
    assert photos.image_to_rgb32(png(np.full((50, 70, 3), 90, np.uint8)))[1]["reason"] == "nothing to see"
    assert photos.image_to_rgb32(png(np.zeros((8, 8, 4), np.uint8), "RGBA"))[1]["blank"]


def test_rgb32_turns_a_phone_photo_upright_and_takes_gray_jpegs():
    a = np.zeros((48, 64, 3), np.uint8)
    a[:24] = (250, 20, 20)  # red on top when upright
    stored = np.rot90(a, 1)  # as a sensor held sideways stores it; orientation 6 says: turn 90 degrees clockwise
    exif = Image.Exif()
    exif[images.ORIENTATION] = 6
    x, info = photos.image_to_rgb32(jpeg(stored, exif=exif.tobytes()))
    assert info["size"] == [48, 64] and x[2, 16, 0] > 0.9 and x[29, 16, 0] < 0.1
    g, _ = photos.image_to_rgb32(jpeg(np.tile(np.arange(64, dtype=np.uint8)[None] * 4, (64, 1))))
    assert np.allclose(g[..., 0], g[..., 1]) and np.allclose(g[..., 1], g[..., 2])


def test_a_grayscale_model_gets_trainings_own_conversion():
    rng = np.random.default_rng(2)
    stored = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    pipe = pipeline_for({"dataset": "cifar10", "preprocessing": {"grayscale": True}}, (-1, 1024))
    assert pipe.kind == "rgb32" and pipe.view_shape == (32, 32)
    x = np.stack([pipe.preprocess(png(s))[0] for s in stored])
    assert np.array_equal(pipe.to_model(x), datasets.make_transform(grayscale=True)(stored))
    assert pipe.view(x[0]).shape == (32, 32)


def test_to_model_standardizes_and_gives_the_models_input_shape():
    mean, std = np.float32(0.2), np.float32(0.5)
    pipe = pipeline_for({"preprocessing": {"kind": "digits", "mean": 0.2, "std": 0.5}}, (-1, 28, 28, 1))
    x = np.random.default_rng(3).random((4, 28, 28), dtype=np.float32)
    got = pipe.to_model(x)
    assert got.shape == (4, 28, 28, 1) and got.dtype == np.float32 and np.allclose(got, ((x - mean) / std)[..., None])
    with pytest.raises(PipelineError, match="takes 784 features, got 100"):
        pipe.to_model(np.zeros((1, 100), np.float32))


def test_none_resizes_the_whole_image_and_a_model_without_an_image_shape_takes_no_images():
    pipe = pipeline_for({"preprocessing": {"kind": "none", "image_shape": [16, 16]}}, (-1, 256))
    a = np.zeros((64, 64), np.uint8)
    a[:, :32] = 255
    x, _ = pipe.preprocess(png(a))
    assert x.shape == (16, 16) and x[:, :7].min() > 0.95 and x[:, 9:].max() < 0.05  # no crop, no inversion
    with pytest.raises(PipelineError, match="takes 5 raw features, not an image"):
        pipeline_for({}, (-1, 5)).preprocess(png(a))


# ---------------------------------------------------------------- one implementation: fnn-cli predict and the pad


def test_predict_and_the_pad_preprocess_a_photo_alike(tmp_path, fashion):
    from pad_helpers import data_url

    from fnn_web import create_app

    model = fnn.mlp([784, 32, 10])
    _, params = model.init(fnn.random.key(0), (-1, 784))
    classes = list(datasets.REGISTRY["fashion-mnist"].classes)
    fnn.save_model(tmp_path / "f.npz", model, params, (-1, 784), {"dataset": "fashion-mnist", "classes": classes})
    photo = render(fashion[0][0], 0.7, 20, 30, light=True)
    (tmp_path / "coat.png").write_bytes(png(photo))
    loaded = fnn.load_model(tmp_path / "f.npz")
    x, info = inference.read_inputs(tmp_path / "coat.png", loaded)
    assert np.array_equal(x[0], photos.image_to_fashion(png(photo))[0]) and info[0]["inverted"]
    row = inference.predict_files(loaded, [tmp_path / "coat.png"], k=10)[0]
    pad = create_app({"MODELS": [tmp_path / "f.npz"]}).test_client().post("/api/predict", json={"image": data_url(png(photo))}).json
    assert [t["label"] for t in row["top"]][0] == pad["label"]
    assert np.allclose(sorted(t["probability"] for t in row["top"]), sorted(pad["probabilities"]), atol=1e-6)
    assert inference.blank_rows(np.zeros((1, 784), np.float32), loaded.metadata) == ["nothing to see"]
    assert inference.blank_rows(np.full((1, 3072), 0.3, np.float32), {}) == ["nothing to see"]


def test_fit_cli_takes_preprocessing_and_refuses_one_that_does_not_fit(tmp_path):
    from click.testing import CliRunner

    from fnn_cli.main import cli

    x = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "p.npz", x=x, y=np.arange(40) % 4)
    common = ["fit", "--dataset", str(tmp_path / "p.npz"), "--arch", "3072,4", "--epochs", "1", "--quiet", "--threads", "1"]
    r = CliRunner().invoke(cli, [*common, "--preprocessing", "none", "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    assert fnn.load_model(tmp_path / "run" / "model.npz").metadata["preprocessing"]["kind"] == "none"
    r = CliRunner().invoke(cli, [*common, "--preprocessing", "fashion", "--out", str(tmp_path / "bad")])
    assert r.exit_code == 2 and "preprocessing 'fashion' does not fit p" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "bad").exists()
    r = CliRunner().invoke(cli, [*common, "--preprocessing", "jpeg"])
    assert r.exit_code == 2 and "'jpeg' is not one of" in r.output
