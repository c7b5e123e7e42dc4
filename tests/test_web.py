"""The pad's app and JSON API through Flask's test client; `fnn-cli serve` through a real process."""

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from pad_helpers import data_url, get_json, png, post_json, render_drawing, serve_process

import fnn
from fnn_cli.main import cli
from fnn_web import create_app
from fnn_web.models import ModelLoadError


@pytest.fixture(scope="module")
def app(pad_models):
    return create_app({"MODELS": [pad_models["mnist"], pad_models["small"]], "TESTING": True})


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def digits(mnist):
    data = mnist
    return data.x_test[:20], data.y_test[:20]


def drawing_url(digit, seed=0):
    return data_url(render_drawing(digit, np.random.default_rng(seed))[0])


# ---------------------------------------------------------------- predictions


def test_predict_image_answers_label_probabilities_model_preview_ms(client, digits):
    x, y = digits
    r = client.post("/api/predict", json={"image": drawing_url(x[0])})
    assert r.status_code == 200
    a = r.json
    assert a["label"] == int(y[0]) and a["class"] == str(y[0]) and a["model"] == "mnist"
    assert len(a["probabilities"]) == 10 and abs(sum(a["probabilities"]) - 1) < 1e-4
    assert a["confidence"] == max(a["probabilities"]) and a["blank"] is False
    preview = np.array(a["preview"])
    assert preview.shape == (28, 28) and 0 <= preview.min() and preview.max() <= 1
    assert isinstance(a["ms"], float) and a["ms"] >= 0


def test_preview_is_what_the_model_was_given(client, digits):
    """Posting the preview back as pixels gives the same probabilities."""
    a = client.post("/api/predict", json={"image": drawing_url(digits[0][1])}).json
    b = client.post("/api/predict", json={"pixels": a["preview"]}).json
    assert b["label"] == a["label"]
    assert np.allclose(a["probabilities"], b["probabilities"], atol=2e-3)


def test_predict_pixels_flat_or_rows(client, app, digits):
    x, y = digits
    flat = (x[2].reshape(-1) / 255.0).tolist()
    a = client.post("/api/predict", json={"pixels": flat}).json
    rows = client.post("/api/predict", json={"pixels": np.asarray(flat).reshape(28, 28).tolist()}).json
    assert a["label"] == rows["label"] == int(y[2])
    served = app.extensions["fnn"].get("mnist")
    expected = fnn.predict_proba(served.model, served.params, np.float32([flat]))[0]
    assert np.allclose(a["probabilities"], expected, atol=1e-5)


def test_choose_model_and_compare(client, digits):
    url = drawing_url(digits[0][3])
    a = client.post("/api/predict", json={"image": url, "model": "small", "compare": True}).json
    assert a["model"] == "small"
    assert [c["model"] for c in a["compare"]] == ["mnist", "small"]
    assert a["compare"][1]["probabilities"] == a["probabilities"]
    assert a["compare"][0]["probabilities"] != a["compare"][1]["probabilities"]
    assert all(0.8 < c["test_accuracy"] < 1 for c in a["compare"])


def test_concurrent_requests_get_the_same_answers_as_sequential_ones(app, digits):
    """Models are shared read-only by every thread: 8 threads at once answer exactly as one does."""
    from concurrent.futures import ThreadPoolExecutor

    bodies = [{"image": drawing_url(d, seed=i), "compare": True} for i, d in enumerate(digits[0])]
    sequential = [app.test_client().post("/api/predict", json=b).json for b in bodies]

    def ask(i):
        return app.test_client().post("/api/predict", json=bodies[i % len(bodies)]).json

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(8 * len(bodies))))
    for i, a in enumerate(answers):
        want = sequential[i % len(bodies)]
        assert a["probabilities"] == want["probabilities"] and a["preview"] == want["preview"]
        assert [c["probabilities"] for c in a["compare"]] == [c["probabilities"] for c in want["compare"]]


def test_blank_canvas_gets_no_label(client):
    empty = data_url(png(np.zeros((280, 280, 4)), "RGBA"))
    for body in ({"image": empty}, {"pixels": [0] * 784}, {"image": empty, "compare": True}):
        a = client.post("/api/predict", json=body).json
        assert a["blank"] is True and a["reason"] == "nothing drawn"
        assert a["label"] is None and a["probabilities"] is None and a["confidence"] is None
        assert all(c["label"] is None for c in a.get("compare", []))


def test_models_sample_healthz(client, mnist):
    m = client.get("/api/models").json
    assert m["default"] == "mnist" and [d["name"] for d in m["models"]] == ["mnist", "small"]
    assert m["models"][0]["classes"] == [str(i) for i in range(10)] and m["models"][0]["test_accuracy"] > 0.96
    assert client.get("/healthz").json == {"status": "ok", "models": 2}
    data = mnist
    s = client.get("/api/sample?index=7&model=small").json
    assert s["index"] == 7 and s["true_label"] == int(data.y_test[7]) and s["model"] == "small"
    assert np.allclose(np.array(s["preview"]) * 255, data.x_test[7], atol=0.2)
    assert len(s["probabilities"]) == 10 and s["dataset"] == "mnist"
    picks = {client.get("/api/sample").json["index"] for _ in range(5)}
    assert len(picks) > 1 and all(0 <= i < 10000 for i in picks)


def test_page_has_labelled_controls_and_local_assets(client):
    html = client.get("/").get_data(as_text=True)
    for control in ("stroke", "model", "upload"):
        assert f'<label for="{control}"' in html
    for button in ("clear", "sample", "compare-toggle"):
        assert re.search(rf'<button id="{button}" type="button"[^>]*>\s*\w', html)
    assert 'name="viewport"' in html and 'width="280" height="280"' in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # no CDN
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert client.get(asset).status_code == 200
    js = client.get("/static/pad.js").get_data(as_text=True)
    assert "pointerdown" in js and "MIN_INTERVAL_MS = 100" in js and "Escape" in js


def test_models_load_once_and_standardization_is_applied(tmp_path, pad_models, mnist):
    """A model trained on standardized inputs (as `fnn-cli fit` can) gets the same standardization."""
    model, params, shape, meta, _ = fnn.load_model(pad_models["small"])
    mean, std = np.full(784, 0.1, np.float32), np.full(784, 0.3, np.float32)
    meta = {**meta, "preprocessing": {"mean": mean.tolist(), "std": std.tolist()}}
    fnn.save_model(tmp_path / "std.npz", model, params, shape, meta)
    app = create_app({"MODELS": [tmp_path / "std.npz"]})
    x = mnist.x_test[5].reshape(-1) / np.float32(255)
    got = app.test_client().post("/api/predict", json={"pixels": x.tolist()}).json["probabilities"]
    want = fnn.predict_proba(model, params, ((x - mean) / std)[None])[0]
    assert np.allclose(got, want, atol=1e-5)


def test_models_from_the_environment_for_flask_run(monkeypatch, pad_models):
    """`flask --app fnn_web run` calls create_app() with no config: FNN_* variables set it."""
    monkeypatch.setenv("FNN_MODELS", json.dumps([str(pad_models["small"]), str(pad_models["mnist"])]))
    assert create_app().test_client().get("/api/models").json["default"] == "small"
    monkeypatch.setenv("FNN_MODELS", str(pad_models["mnist"]))
    assert list(create_app().extensions["fnn"].models) == ["mnist"]


def test_bad_model_paths_are_named(tmp_path, pad_models):
    with pytest.raises(ModelLoadError, match="missing.npz: no such"):
        create_app({"MODELS": [tmp_path / "missing.npz"]})
    model = fnn.mlp([4, 2])
    _, params = model.init(fnn.random.key(0), (-1, 4))
    fnn.save_model(tmp_path / "tiny.npz", model, params, (-1, 4))
    with pytest.raises(ModelLoadError, match="28x28"):
        create_app({"MODELS": [tmp_path / "tiny.npz"]})
    with pytest.raises(ModelLoadError, match="no MNIST run"):
        create_app({"RUNS": tmp_path})
    app = create_app({"MODELS": [pad_models["small"], pad_models["small"]]})
    assert list(app.extensions["fnn"].models) == ["small", "small-2"]


# ---------------------------------------------------------------- client errors are JSON 4xx


@pytest.mark.parametrize(
    "body, status, message",
    [
        ('{"pixels": [0.5', 400, "not valid JSON"),
        ('{"pixels": NaN}', 400, "NaN"),
        ("[1, 2]", 400, "JSON object"),
        ("{}", 400, "exactly one of"),
        ('{"image": "x", "pixels": []}', 400, "exactly one of"),
        ('{"pixels": [1, 2, 3]}', 400, "784"),
        ('{"pixels": "abc"}', 400, "list of 784"),
        ('{"pixels": [' + ",".join(["0.5"] * 783) + ', "1"]}', 400, "only numbers"),
        ('{"pixels": [' + ",".join(["0.5"] * 783) + ", 1e400]}", 400, "0..1"),
        ('{"pixels": [' + ",".join(["0.5"] * 783) + ", 2]}", 400, "0..1"),
        ('{"pixels": [' + ",".join(["0.5"] * 783) + ", " + "9" * 400 + "]}", 400, "too large"),
        ('{"image": 5}', 400, "must be a string"),
        ('{"image": "data:image/gif;base64,R0lGOD"}', 400, "PNG or JPEG"),
        ('{"image": "data:image/png;base64,@@@"}', 400, "base64"),
        ('{"image": "aGVsbG8gd29ybGQ="}', 400, "not a PNG or JPEG"),
        ('{"image": ""}', 400, "empty"),
        ('{"pixels": [], "model": "nope"}', 400, "unknown model 'nope'; loaded: mnist, small"),
        ('{"pixels": [], "compare": "yes"}', 400, "'compare'"),
        ('{"pixels": [], "extra": 1}', 400, "unknown field 'extra'"),
        ("[" * 100000 + "]" * 100000, 400, "nested too deeply"),
    ],
)
def test_malformed_bodies_get_json_400_naming_the_problem(client, body, status, message):
    r = client.post("/api/predict", data=body, content_type="application/json")
    assert r.status_code == status and r.is_json
    assert message in r.json["message"] and r.json["status"] == status


def test_too_large_wrong_type_and_wrong_method_are_json(client):
    r = client.post("/api/predict", data=b"{" + b" " * (1 << 20) + b"}", content_type="application/json")
    assert r.status_code == 413 and r.json["message"] == f"the body is {(1 << 20) + 2} bytes; the limit is {1 << 20}"
    r = client.post("/api/predict", data="pixels=1", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 415 and "application/json" in r.json["message"]
    r = client.post("/api/predict", data=json.dumps({"pixels": []}))
    assert r.status_code == 415
    r = client.get("/api/predict")
    assert r.status_code == 405 and r.is_json and "POST" in r.headers["Allow"]
    assert client.get("/api/missing").json["status"] == 404
    for query in ("index=-1", "index=10000", "index=2x", "index=²", "model=nope"):
        r = client.get(f"/api/sample?{query}")
        assert r.status_code == 400 and r.is_json, query


def test_responses_carry_a_strict_content_security_policy(client):
    csp = client.get("/").headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp


# ---------------------------------------------------------------- fnn-cli serve


def test_serve_without_a_run_says_how_to_train_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 2
    assert "fnn-cli fit --arch 784,128,64,10" in result.output and "Traceback" not in result.output


def test_serve_bad_models_exit_2_with_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["serve", "--models", str(tmp_path / "nope.npz")])
    assert result.exit_code == 2 and "nope.npz: no such run folder or model file" in result.output


def test_serve_runs_waitress_and_answers(pad_models, mnist):
    digit = mnist.x_test[0]
    with serve_process([pad_models["mnist"], pad_models["small"]], "--threads", "2") as (url, seconds):
        assert get_json(url + "/api/models")[1]["default"] == "mnist"
        status, answer = post_json(url + "/api/predict", {"image": drawing_url(digit)})
        assert status == 200 and answer["label"] == 7
        status, answer = post_json(url + "/api/predict", b"{" + b" " * (2 << 20) + b"}")
        assert status == 413
    print(f"fnn-cli serve answered /healthz {seconds:.2f} s after start")
