"""The local API's routes on the tiny LCM through FastAPI's test client: A1111's shapes, the CLI's pixels, and a 4xx
naming the field for every bad request (the server keeps serving)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lcm_desktop.api.app import create_app
from lcm_desktop.api.server import ApiServer, build_engine
from lcm_desktop.api.service import ApiService, ServedModel
from lcm_desktop.cli import main as cli_main
from lcm_desktop.core.model_info import describe_model
from lcm_desktop.core.paths import AppPaths, builtin_model_path
from lcm_desktop.history import History
from lcm_desktop.models.styles import StyleStore
from lcm_desktop.outputs import ImageWriter
from lcm_desktop.session.jobs import JobQueue
from lcm_desktop.session.runner import EngineRunner

T2I, I2I = "/sdapi/v1/txt2img", "/sdapi/v1/img2img"
SETTINGS = {"prompt": "a red circle", "steps": 2, "width": 64, "height": 64, "seed": 7}


@pytest.fixture(scope="module")
def served(tiny_lcm, tmp_path_factory):
    """One queue, runner (the real engine on the tiny LCM, kept loaded) and app for the module's tests."""
    home = tmp_path_factory.mktemp("api-home")
    paths = AppPaths(home / "data", home / "cache", home / "output", home / "logs")
    history = History(paths.data / "history.sqlite3")
    queue = JobQueue()
    runner = EngineRunner(queue, build_engine, ImageWriter(history, starts=paths.starts), paths.output)
    tiny = ServedModel("tiny-lcm", tiny_lcm, "cpu", describe_model(tiny_lcm))
    demo = ServedModel("lcm-demo", builtin_model_path(), "cpu", describe_model(builtin_model_path()))
    store = StyleStore(paths)
    service = ApiService(queue, tiny, models=lambda: [demo], styles=store.styles, style_path=store.path_of,
                         output_folder=paths.output)
    runner.start()
    with TestClient(create_app(service)) as client:
        yield client, service, history
    runner.stop(30)
    history.close()


def _png(text: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(text)))


def _b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _cli_pixels(tmp_path: Path, model: Path, *extra: str, batch: int = 1) -> list[np.ndarray]:
    """What `lcm-desktop generate` makes with SETTINGS (a batch is computed together, as the API's is)."""
    out = tmp_path / "cli.png"
    argv = ["generate", SETTINGS["prompt"], "--model", str(model), "--steps", "2", "--width", "64", "--height", "64",
            "--seed", "7", "--out", str(out), "--quiet", "--batch", str(batch), *extra]
    assert cli_main(argv) == 0
    files = [out] if batch == 1 else [tmp_path / f"cli-{i + 1}.png" for i in range(batch)]
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def test_txt2img_answers_a1111_shapes_with_the_clis_pixels_and_an_api_history_row(served, tiny_lcm, tmp_path):
    client, _, history = served
    response = client.post(T2I, json={**SETTINGS, "batch_size": 2, "sampler_name": "Euler a"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"images", "parameters", "info"} and len(body["images"]) == 2
    info = json.loads(body["info"])
    assert info["seed"] == 7 and info["all_seeds"] == [7, 8] and info["prompt"] == "a red circle"
    assert info["steps"] == 2 and info["width"] == 64 and info["sampler_name"] == "LCM"
    assert info["sd_model_name"] == "tiny-lcm" and len(info["infotexts"]) == 2
    assert body["parameters"]["prompt"] == "a red circle" and body["parameters"]["seed"] == 7
    first = _png(body["images"][0])
    assert "Seed: 7" in first.info["parameters"] and "Steps: 2" in first.info["parameters"]
    assert "Seed: 8" in _png(body["images"][1]).info["parameters"]
    cli = _cli_pixels(tmp_path, tiny_lcm, batch=2)
    for text, pixels in zip(body["images"], cli):
        assert np.array_equal(np.asarray(_png(text).convert("RGB")), pixels)
    rows = [e for e in history.entries() if e.seed in (7, 8)]
    assert len(rows) == 2 and {e.origin for e in rows} == {"api"} and all(e.exists for e in rows)


def test_img2img_starts_from_the_picture_with_the_clis_pixels(served, tiny_lcm, tmp_path):
    client, _, _ = served
    ramp = np.linspace(0, 255, 64, dtype=np.uint8)
    start = Image.fromarray(np.stack([np.tile(ramp, (64, 1)), np.tile(ramp[:, None], (1, 64)),
                                      np.full((64, 64), 90, np.uint8)], axis=-1))
    start.save(tmp_path / "start.png")
    response = client.post(I2I, json={**SETTINGS, "init_images": ["data:image/png;base64," + _b64(start)],
                                      "denoising_strength": 0.5})
    assert response.status_code == 200, response.text
    body = response.json()
    info = json.loads(body["info"])
    assert info["denoising_strength"] == 0.5 and body["parameters"]["init_images"] is None
    image = _png(body["images"][0])
    assert "Denoising strength: 0.5" in image.info["parameters"]
    cli = _cli_pixels(tmp_path, tiny_lcm, "--init-image", str(tmp_path / "start.png"), "--strength", "0.5")
    assert np.array_equal(np.asarray(image.convert("RGB")), cli[0])


def test_txt2img_runs_the_sampler_named_with_its_eta_as_the_cli(served, tiny_lcm, tmp_path):
    client, _, _ = served
    response = client.post(T2I, json={**SETTINGS, "sampler_name": "TCD", "eta": 0.7})
    assert response.status_code == 200, response.text
    body = response.json()
    info = json.loads(body["info"])
    assert info["sampler_name"] == "TCD" and info["eta"] == 0.7
    image = _png(body["images"][0])
    assert "Sampler: TCD" in image.info["parameters"] and "Eta: 0.7" in image.info["parameters"]
    tcd = _cli_pixels(tmp_path, tiny_lcm, "--sampler", "tcd", "--eta", "0.7")[0]
    assert np.array_equal(np.asarray(image.convert("RGB")), tcd)
    lcm = _cli_pixels(tmp_path, tiny_lcm, "--overwrite")[0]
    assert not np.array_equal(tcd, lcm)  # the sampler really changed the picture


def test_a_sampler_the_model_cannot_run_falls_back_to_its_own_and_says_so(served):
    client, _, _ = served
    made = {}
    for name in ("Euler a", "no such sampler", "DPM++ 2M"):
        response = client.post(T2I, json={**SETTINGS, "sampler_name": name, "eta": 0.9})
        assert response.status_code == 200, response.text
        info = json.loads(response.json()["info"])
        assert info["sampler_name"] == "LCM" and info["eta"] is None  # LCM takes no eta: ignored
        assert "Sampler: LCM" in info["infotexts"][0]
        made[name] = response.json()["images"][0]
    assert len({np.asarray(_png(v)).tobytes() for v in made.values()}) == 1


def _ramp() -> Image.Image:
    ramp = np.linspace(0, 255, 64, dtype=np.uint8)
    return Image.fromarray(np.stack([np.tile(ramp, (64, 1)), np.tile(ramp[:, None], (1, 64)),
                                     np.full((64, 64), 90, np.uint8)], axis=-1))


MASKS = [
    ({"inpaint_full_res": False}, ["--inpaint-area", "whole"], False),
    ({"inpaint_full_res": False, "inpainting_mask_invert": 1}, [], True),  # the inverse picture, inverted back
    ({}, ["--inpaint-area", "masked", "--inpaint-padding", "0"], False),  # A1111's defaults: only masked, padding 0
]


@pytest.mark.parametrize(("fields", "flags", "invert"), MASKS, ids=["whole", "inverted", "only-masked"])
def test_img2img_with_a_mask_repaints_only_the_mask_as_the_cli(served, tiny_lcm, tmp_path, fields, flags, invert):
    client, _, _ = served
    start = _ramp()
    start.save(tmp_path / "start.png")
    mask = np.zeros((64, 64), np.uint8)
    mask[8:40, 8:32] = 255  # repaint a box in the top-left; keep the rest
    Image.fromarray(mask).save(tmp_path / "mask.png")
    sent = Image.fromarray(255 - mask if invert else mask)
    response = client.post(I2I, json={**SETTINGS, "init_images": [_b64(start)], "mask": _b64(sent), **fields})
    assert response.status_code == 200, response.text
    body = response.json()
    assert json.loads(body["info"])["denoising_strength"] == 1.0  # a mask's default, as the CLI's
    image = _png(body["images"][0])
    assert "Mask blur: 4" in image.info["parameters"]
    got = np.asarray(image.convert("RGB"))
    cli = _cli_pixels(tmp_path, tiny_lcm, "--init-image", str(tmp_path / "start.png"),
                      "--mask", str(tmp_path / "mask.png"), *flags)[0]
    assert np.array_equal(got, cli)
    original = np.asarray(start)
    assert np.array_equal(got[:, 48:], original[:, 48:]) and np.array_equal(got[56:], original[56:])  # kept
    assert not np.array_equal(got[12:36, 12:28], original[12:36, 12:28])  # repainted


BAD = [
    (T2I, {"steps": 99}, "steps"),
    (T2I, {"width": 63}, "width"),
    (T2I, {"height": 4096}, "height"),
    (T2I, {"cfg_scale": 99}, "cfg_scale"),
    (T2I, {"seed": -5}, "seed"),
    (T2I, {"batch_size": 4, "n_iter": 3}, "n_iter"),
    (T2I, {"enable_hr": True}, "enable_hr"),
    (T2I, {"negative_prompt": "blurry " * 2000}, "negative_prompt"),
    (T2I, {"batch_size": 0}, "batch_size"),
    (T2I, {"styles": ["my style"]}, "styles"),
    (T2I, {"prompt": "a <lora:no-such-style:1> cat"}, "prompt"),
    (T2I, {"override_settings": {"sd_model_checkpoint": "/etc/passwd"}}, "override_settings"),
    (I2I, {"init_images": ["not base64!"]}, "init_images"),
    (I2I, {"init_images": [base64.b64encode(b"hello").decode()]}, "init_images"),
    (I2I, {"init_images": []}, "init_images"),
    (I2I, {"init_images": ["iVBORw0KGgo="], "mask": "iVBORw0KGgo="}, "mask"),
    (I2I, {"init_images": ["iVBORw0KGgo="], "mask": "not base64!"}, "mask"),
    (I2I, {"init_images": ["iVBORw0KGgo="], "mask": "iVBORw0KGgo=", "inpainting_fill": 2}, "inpainting_fill"),
    (I2I, {"init_images": ["iVBORw0KGgo="], "mask": "iVBORw0KGgo=", "mask_blur": 99}, "mask_blur"),
    (I2I, {"init_images": ["iVBORw0KGgo="], "mask": "iVBORw0KGgo=", "inpaint_full_res_padding": 999},
     "inpaint_full_res_padding"),
    (T2I, {"sampler_name": "TCD", "eta": 5}, "eta"),
    (I2I, {"init_images": ["iVBORw0KGgo="], "denoising_strength": 0}, "denoising_strength"),
    (I2I, {"init_images": ["iVBORw0KGgo="], "denoising_strength": 0.01}, "denoising_strength"),
]


@pytest.mark.parametrize(("route", "fields", "name"), BAD, ids=[f"{r[-7:]}-{n}" for r, _, n in BAD])
def test_a_bad_field_is_a_422_naming_it(served, route, fields, name):
    client, service, _ = served
    response = client.post(route, json={**SETTINGS, **fields})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == name and f"`{name}`" in response.json()["detail"]
    assert service.queue.idle  # refused before any job


def test_a_huge_picture_is_refused_from_its_header(served):
    client, _, _ = served
    buffer = io.BytesIO()
    Image.new("L", (5000, 4000)).save(buffer, format="PNG")  # 20 megapixels in a few kB
    response = client.post(I2I, json={**SETTINGS, "init_images": [base64.b64encode(buffer.getvalue()).decode()]})
    assert response.status_code == 422 and response.json()["field"] == "init_images"
    assert "megapixels" in response.json()["detail"]


@pytest.mark.parametrize("body", [b"{not json", b'{"steps": "many"}', b'{"width": [64]}', b"[]"])
def test_malformed_json_and_wrong_types_are_422_naming_where(served, body):
    client, _, _ = served
    response = client.post(T2I, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list) and response.json()["detail"][0]["loc"][0] == "body"


def test_models_options_samplers_loras_and_png_info(served):
    client, service, _ = served
    models = client.get("/sdapi/v1/sd-models").json()
    assert [m["title"] for m in models] == ["tiny-lcm", "lcm-demo"]
    assert all("/" not in m["filename"] for m in models)  # no local paths
    assert client.get("/sdapi/v1/options").json()["sd_model_checkpoint"] == "tiny-lcm"
    assert client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "lcm-demo"}).status_code == 200
    assert client.get("/sdapi/v1/options").json()["sd_model_checkpoint"] == "lcm-demo"
    assert service.model.path == builtin_model_path()
    refused = client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "../../elsewhere"})
    assert refused.status_code == 422 and refused.json()["field"] == "sd_model_checkpoint"
    assert client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "tiny-lcm"}).status_code == 200
    samplers = client.get("/sdapi/v1/samplers").json()  # the presets the tiny LCM runs, its own first
    assert [s["name"] for s in samplers] == ["LCM", "TCD", "DDIM"]
    assert {"tcd", "hyper-sd"} <= set(samplers[1]["aliases"]) and "pcm" in samplers[2]["aliases"]
    loras = client.get("/sdapi/v1/loras").json()
    assert "huge" in [lora["name"] for lora in loras] and all("/" not in lora["path"] for lora in loras)
    progress = client.get("/sdapi/v1/progress").json()
    assert progress["progress"] == 0.0 and progress["current_image"] is None and progress["state"]["job_count"] == 0

    made = client.post(T2I, json={**SETTINGS, "seed": 11}).json()["images"][0]
    info = client.post("/sdapi/v1/png-info", json={"image": made}).json()
    assert info["parameters"]["Seed"] == 11 and info["parameters"]["Steps"] == 2 and "Seed: 11" in info["info"]
    bad = client.post("/sdapi/v1/png-info", json={"image": "%%%"})
    assert bad.status_code == 422 and bad.json()["field"] == "image"


def test_openapi_docs_list_the_routes(served):
    client, _, _ = served
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/sdapi/v1/txt2img", "/sdapi/v1/img2img", "/sdapi/v1/progress", "/sdapi/v1/png-info"} <= set(paths)


def test_an_a1111_client_library_over_real_http(served):
    """webuiapi (a PyPI client for A1111's API) against the app on a loopback port: generation, lists, errors."""
    import webuiapi

    _, service, _ = served
    open_server = ApiServer(create_app(service), "127.0.0.1", 0)
    locked_server = ApiServer(create_app(service, auth=("ann", "secret")), "127.0.0.1", 0)
    open_server.start()
    locked_server.start()
    try:
        api = webuiapi.WebUIApi(host="127.0.0.1", port=open_server.port)
        made = api.txt2img(prompt="a red circle", steps=2, width=64, height=64, seed=21, cfg_scale=7)
        assert made.info["all_seeds"] == [21] and made.image.size == (64, 64)
        assert "Seed: 21" in made.image.info["parameters"] and "CFG scale: 7" in made.image.info["parameters"]
        edited = api.img2img(images=[made.image], prompt="a blue square", denoising_strength=0.5, steps=2,
                             width=64, height=64, seed=21)
        assert edited.info["denoising_strength"] == 0.5 and edited.image.size == (64, 64)
        assert not np.array_equal(np.asarray(made.image.convert("RGB")), np.asarray(edited.image.convert("RGB")))
        assert sorted(api.util_get_model_names()) == ["lcm-demo", "tiny-lcm"]
        assert "huge" in [style["name"] for style in api.get_loras()]
        with pytest.raises(RuntimeError) as bad:
            api.txt2img(prompt="x", steps=51, width=64, height=64)
        assert bad.value.args[0] == 422 and "`steps`" in bad.value.args[1]
        with pytest.raises(RuntimeError) as refused:
            webuiapi.WebUIApi(host="127.0.0.1", port=locked_server.port).txt2img(prompt="x", steps=2)
        assert refused.value.args[0] == 401 and "api-auth" in refused.value.args[1]
        locked = webuiapi.WebUIApi(host="127.0.0.1", port=locked_server.port, username="ann", password="secret")
        assert [m["title"] for m in locked.get_sd_models()] == ["tiny-lcm", "lcm-demo"]
    finally:
        assert open_server.stop(30) and locked_server.stop(30)
