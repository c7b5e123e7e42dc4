"""Issue 19: the pad serves every dataset fnn trains on, each model's images preprocessed as its data were.

Figures (run with -s to print them; the README quotes them):

- Fashion-MNIST: the first 1000 test images rendered as PNG uploads (scaled to 0.6-1.0 of a 280x280
  canvas at a random offset, on black as stored or negated onto white, as a product photo) are read
  within 2 points of the same model on the stored pixels; the digit pipeline it got before is far off;
- CIFAR-10-shaped (a model trained on synthetic 32x32x3 pictures, tests/kind_models.py): PNG uploads
  of its 500 test images get the answers the stored pixels get, for >= 99% of them; so do the first
  200 blown up 4x (bicubic) and padded to 128x160 (>= 97%).
"""

import base64
import io
import json

import numpy as np
import pytest
from kind_models import CLASSES, kind_models, synthetic_cifar  # noqa: F401  (session fixture)
from pad_helpers import data_url, png
from PIL import Image

import fnn
from fnn import datasets
from fnn.datasets.transforms import scale
from fnn.serving import images, photos
from fnn_web import create_app
from fnn_web.models import ModelLoadError

N = 1000
BIG = 200  # CIFAR-shaped test images also sent blown up


@pytest.fixture(scope="module")
def app(pad_models, kind_models):  # noqa: F811
    return create_app({"MODELS": [pad_models["mnist"], pad_models["small"], kind_models["fashion"], kind_models["shapes"],
                                  kind_models["cnn"]], "TESTING": True})


@pytest.fixture()
def client(app):
    return app.test_client()


def render_fashion(item, rng, canvas=280):
    """A Fashion-MNIST image ``(28, 28)`` as an upload: ``(png bytes, on_white)``; scaled (bicubic) to 0.6-1.0 of the
    canvas at a random offset, on black as stored or negated onto white."""
    side = int(round(rng.uniform(0.6, 1.0) * canvas))
    top, left = rng.integers(0, canvas - side + 1, size=2)
    page = np.zeros((canvas, canvas), np.uint8)
    page[top : top + side, left : left + side] = np.asarray(Image.fromarray(item).resize((side, side), Image.Resampling.BICUBIC))
    on_white = bool(rng.random() < 0.5)
    return png(255 - page if on_white else page), on_white


def test_fashion_uploads_are_read_within_2_points_of_the_stored_pixels(client, app):
    data = datasets.load("fashion-mnist")
    x, y = data.x_test[:N], data.y_test[:N]
    served = app.extensions["fnn"].get("fashion")
    rng = np.random.default_rng(19)
    uploads = [render_fashion(item, rng)[0] for item in x]
    labels = []
    for upload in uploads:
        r = client.post("/api/predict", json={"image": data_url(upload), "model": "fashion"})
        assert r.status_code == 200 and r.json["kind"] == "fashion", r.json
        labels.append(r.json["label"])
    uploaded = float(np.mean(np.array(labels) == y))
    raw = fnn.predict(served.model, served.params, scale(x).reshape(N, -1))
    stored, same = float(np.mean(raw == y)), float(np.mean(np.array(labels) == raw))
    as_digits = float(np.mean(fnn.predict(served.model, served.params, np.stack([images.image_to_mnist(u)[0] for u in uploads])) == y))
    print(f"\nFashion-MNIST test images (n={N}) as PNG uploads: {uploaded:.1%} right ({same:.1%} the stored pixels' answer); "
          f"the same images as stored: {stored:.1%}; through the digit pipeline: {as_digits:.1%}")
    assert abs(uploaded - stored) <= 0.02
    assert as_digits < stored - 0.2


def cifar_like_uploads(client, model, x, encode):
    out = []
    for item in x:
        r = client.post("/api/predict", json={"image": data_url(encode(item)), "model": model})
        assert r.status_code == 200 and r.json["kind"] == "rgb32", r.json
        out.append(r.json)
    return out


def test_cifar_shaped_uploads_get_the_answers_of_the_stored_pixels(client, app):
    x, _ = synthetic_cifar(500, seed=2)  # the run's own test split
    served = app.extensions["fnn"].get("shapes")
    stored = fnn.predict_proba(served.model, served.params, scale(x).reshape(len(x), -1))
    answers = cifar_like_uploads(client, "shapes", x, png)
    same = float(np.mean([a["label"] for a in answers] == stored.argmax(1)))
    assert np.allclose([a["probabilities"] for a in answers], stored, atol=1e-6)  # a 32x32 PNG is the stored image

    def blown_up(item):
        big = np.asarray(Image.fromarray(item).resize((128, 128), Image.Resampling.BICUBIC))
        return png(np.pad(big, ((0, 0), (16, 16), (0, 0)), mode="edge"))  # 128x160: the central square is the image

    big = cifar_like_uploads(client, "shapes", x[:BIG], blown_up)
    same_big = float(np.mean([a["label"] for a in big] == stored[:BIG].argmax(1)))
    print(f"\nCIFAR-shaped test images (n={len(x)}) as 32x32 PNG uploads: {same:.1%} the stored pixels' answers; "
          f"the first {BIG} blown up 4x to 128x160: {same_big:.1%}")
    assert same >= 0.99 and same_big >= 0.97
    assert np.array(answers[0]["preview"]).shape == (32, 32, 3)


def test_fnn_cli_predict_reads_a_photo_as_the_pad_does(client, kind_models, tmp_path):  # noqa: F811
    from click.testing import CliRunner

    from fnn_cli.main import cli

    x, _ = synthetic_cifar(3, seed=7)
    for i, item in enumerate(x):
        (tmp_path / f"{i}.png").write_bytes(png(np.asarray(Image.fromarray(item).resize((70, 90)))))
    r = CliRunner().invoke(cli, ["predict", str(kind_models["shapes"]), *(str(tmp_path / f"{i}.png") for i in range(3)), "--json"])
    assert r.exit_code == 0, r.output
    for i, row in enumerate(json.loads(r.output)):
        a = client.post("/api/predict", json={"image": data_url((tmp_path / f"{i}.png").read_bytes()), "model": "shapes"}).json
        assert row["top"][0]["class"] == a["class"] and row["top"][0]["probability"] == pytest.approx(a["confidence"], abs=1e-6)


def test_models_list_kinds_groups_and_summaries(client, kind_models):  # noqa: F811
    m = client.get("/api/models").json
    by_name = {d["name"]: d for d in m["models"]}
    assert [k["kind"] for k in m["kinds"]] == ["digits", "fashion", "rgb32", "none"]
    assert {n: d["kind"] for n, d in by_name.items()} == {"mnist": "digits", "small": "digits", "fashion": "fashion",
                                                         "shapes": "rgb32", "cnn": "fashion"}
    assert by_name["shapes"]["input"] == [32, 32, 3] and by_name["shapes"]["classes"] == CLASSES
    assert by_name["fashion"]["classes"][0] == "T-shirt/top" and by_name["fashion"]["view"] == [28, 28]
    cnn = by_name["cnn"]["summary"]
    assert [row["type"] for row in cnn["layers"]] == ["Reshape", "Conv2D", "Relu", "Flatten", "Dense"]
    assert cnn["layers"][1]["output_shape"] == "(None, 28, 28, 4)" and cnn["total"] == 4 * 9 + 4 + 28 * 28 * 4 * 10 + 10
    assert by_name["mnist"]["summary"]["total"] == 109386
    assert all(d["trained"][:2] == "20" and "T" in d["trained"] for d in m["models"])


def test_compare_takes_the_models_of_the_same_input_kind_only(client):
    item = datasets.load("fashion-mnist").x_test[3]
    a = client.post("/api/predict", json={"image": data_url(png(255 - item)), "model": "fashion", "compare": True}).json
    assert [c["model"] for c in a["compare"]] == ["fashion", "cnn"]
    assert a["compare"][0]["probabilities"] == a["probabilities"]
    d = client.post("/api/predict", json={"pixels": [0.0] * 300 + [1.0] * 184 + [0.0] * 300, "compare": True}).json
    assert [c["model"] for c in d["compare"]] == ["mnist", "small"]
    s = client.get("/api/sample?model=shapes&compare=1").json
    assert [c["model"] for c in s["compare"]] == ["shapes"]


def test_a_cnn_with_a_reshape_front_is_fed_like_an_mlp(client, app):
    item = datasets.load("fashion-mnist").x_test[7]
    photo = png(255 - np.pad(item, 10))
    a = client.post("/api/predict", json={"image": data_url(photo), "model": "cnn"}).json
    served = app.extensions["fnn"].get("cnn")
    x, _ = photos.image_to_fashion(photo)
    want = fnn.predict_proba(served.model, served.params, x[None])[0]
    assert a["kind"] == "fashion" and np.allclose(a["probabilities"], want, atol=1e-6)
    assert np.allclose(np.array(a["preview"]).reshape(-1), x, atol=5e-4)


def test_a_test_image_of_each_class_with_its_true_label(client):
    names = {d["name"]: d["classes"] for d in client.get("/api/models").json["models"]}
    for model, side in (("fashion", (28, 28)), ("shapes", (32, 32, 3)), ("mnist", (28, 28))):
        for label in range(10):
            s = client.get(f"/api/sample?model={model}&class={label}").json
            assert s["true_label"] == label and s["true_class"] == names[model][label] and s["model"] == model
            image = Image.open(io.BytesIO(base64.b64decode(s["image"].split(",", 1)[1])))
            assert np.asarray(image).shape == side and np.array(s["preview"]).shape == side
    s = client.get("/api/sample?model=shapes&class=4&index=3").json  # an index wins over a class
    assert s["index"] == 3
    assert client.get("/api/sample?model=shapes&class=10").status_code == 400
    assert "'class' must be an integer in 0..9" in client.get("/api/sample?model=fashion&class=x").json["message"]


def test_confusion_matrix_from_the_test_split_then_from_the_runs_evaluation(client, app, kind_models, tmp_path):  # noqa: F811
    import shutil

    from fnn.evaluation.report import evaluate_run

    reg = app.extensions["fnn"]
    d = client.get("/api/models/fashion").json
    cm = np.array(d["confusion"]["matrix"])
    assert cm.shape == (10, 10) and cm.sum() == 10000 and d["confusion"]["source"] == "the fashion-mnist test split"
    assert np.trace(cm) / cm.sum() == pytest.approx(reg.get("fashion").test_accuracy, abs=1e-9)
    d = client.get("/api/models/shapes").json
    cm = np.array(d["confusion"]["matrix"])
    summary = json.loads((kind_models["shapes"] / "summary.json").read_text())
    assert cm.sum() == 500 and np.trace(cm) / 500 == pytest.approx(summary["test_accuracy"], abs=1e-9)
    assert client.get("/api/models/nope").status_code == 404
    run = shutil.copytree(kind_models["shapes"], tmp_path / "shapes")  # the session's run stays unevaluated for other tests
    evaluate_run(run, pictures=False)  # fnn-cli evaluate: RUN/eval/metrics.json
    fresh = create_app({"MODELS": [run]}).test_client().get("/api/models/shapes").json["confusion"]
    assert "fnn-cli evaluate" in fresh["source"] and fresh["matrix"] == cm.tolist()


def test_pixels_take_the_models_input_shape(client, app):
    x, _ = synthetic_cifar(1, seed=5)
    flat = (x[0] / 255).reshape(-1).round(4).tolist()
    a = client.post("/api/predict", json={"pixels": flat, "model": "shapes"}).json
    b = client.post("/api/predict", json={"pixels": np.array(flat).reshape(32, 32, 3).tolist(), "model": "shapes"}).json
    assert a["probabilities"] == b["probabilities"] and a["blank"] is False
    gray = client.post("/api/predict", json={"pixels": [[0.2] * 16 + [0.9] * 16] * 32, "model": "shapes"}).json
    assert np.array(gray["preview"]).shape == (32, 32, 3) and gray["preview"][0][0] == [0.2, 0.2, 0.2]
    flat_colour = client.post("/api/predict", json={"pixels": [0.4] * 3072, "model": "shapes"}).json
    assert flat_colour["blank"] and flat_colour["reason"] == "nothing to see"
    r = client.post("/api/predict", json={"pixels": [0.5] * 784, "model": "shapes"})
    assert r.status_code == 400 and "3072 numbers (flat, or 32 rows of 32 of 3)" in r.json["message"]
    r = client.post("/api/predict", json={"pixels": [[[0.5] * 3] * 32] * 31 + [[0.5] * 96], "model": "shapes"})
    assert r.status_code == 400


def test_blank_photos_and_bad_images_are_named(client):
    white = data_url(png(np.full((100, 100), 255, np.uint8)))
    a = client.post("/api/predict", json={"image": white, "model": "fashion"}).json
    assert a["blank"] and a["reason"] == "nothing to see" and a["label"] is None
    r = client.post("/api/predict", json={"image": "data:image/png;base64,aGVsbG8=", "model": "shapes"})
    assert r.status_code == 400 and "not a PNG or JPEG" in r.json["message"]


def test_a_grayscale_model_sees_gray(tmp_path):
    x, y = synthetic_cifar(64, seed=3)
    model = fnn.mlp([1024, 16, 10])
    _, params = model.init(fnn.random.key(0), (-1, 1024))
    meta = {"dataset": "cifar10", "classes": CLASSES, "preprocessing": {"grayscale": True, "scale": 1 / 255}}
    fnn.save_model(tmp_path / "gray.npz", model, params, (-1, 1024), meta)
    client = create_app({"MODELS": [tmp_path / "gray.npz"]}).test_client()
    a = client.post("/api/predict", json={"image": data_url(png(x[0]))}).json
    want = fnn.predict_proba(model, params, datasets.make_transform(grayscale=True)(x[:1]))[0]
    assert a["kind"] == "rgb32" and np.array(a["preview"]).shape == (32, 32) and np.allclose(a["probabilities"], want, atol=1e-6)
    assert client.get("/api/models").json["models"][0]["view"] == [32, 32]


def test_custom_data_models_declare_their_preprocessing(tmp_path):
    model = fnn.mlp([256, 8, 3])
    _, params = model.init(fnn.random.key(0), (-1, 256))
    fnn.save_model(tmp_path / "raw.npz", model, params, (-1, 256), {"preprocessing": {"kind": "none", "image_shape": [16, 16]}})
    client = create_app({"MODELS": [tmp_path / "raw.npz"]}).test_client()
    a = client.post("/api/predict", json={"image": data_url(png(np.tile(np.arange(64, dtype=np.uint8)[None] * 4, (64, 1))))}).json
    assert a["kind"] == "none" and np.array(a["preview"]).shape == (16, 16)
    s = client.get("/api/sample")
    assert s.status_code == 404 and "cannot be found" in s.json["message"]
    tabular = fnn.mlp([5, 3])
    fnn.save_model(tmp_path / "tab.npz", tabular, tabular.init(fnn.random.key(0), (-1, 5))[1], (-1, 5), {"preprocessing": "none"})
    with pytest.raises(ModelLoadError, match=r"the pad needs a model of images .* takes \(-1, 5\)"):
        create_app({"MODELS": [tmp_path / "tab.npz"]})
    fnn.save_model(tmp_path / "bad.npz", model, params, (-1, 256), {"preprocessing": "digits"})
    with pytest.raises(ModelLoadError, match="'digits' gives 784 features; the model takes 256"):
        create_app({"MODELS": [tmp_path / "bad.npz"]})
