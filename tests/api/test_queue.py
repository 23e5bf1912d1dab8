"""One engine, one queue, over real HTTP on a free loopback port: requests are answered in order, ``interrupt``
stops the running one, a client that goes away cancels its own job, and auth and the body cap hold.
A stand-in engine gated by events (no sleeps)."""

from __future__ import annotations

import base64
import http.client
import io
import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from lcm_desktop.api.app import create_app
from lcm_desktop.api.server import ApiServer, is_loopback
from lcm_desktop.api.service import ApiService, ServedModel
from lcm_desktop.core.errors import GenerationCancelled, InvalidRequestError
from lcm_desktop.core.model_info import ModelDefaults
from lcm_desktop.core.presets import PRESETS, presets_for
from lcm_desktop.core.request import GenerationResult, StepProgress
from lcm_desktop.session.jobs import JobQueue, JobState
from lcm_desktop.session.runner import EngineRunner

INFO = SimpleNamespace(defaults=ModelDefaults(2, 8.5, 64, 64), original_steps=50, name="fake", preset=PRESETS[0],
                       presets=presets_for(PRESETS[0]))  # a ModelInfo's fields the API reads
MODEL = ServedModel("fake", Path("fake-model"), "cpu", INFO)


class GatedEngine:
    """``generate`` waits at each step for ``gate``; a prompt "hold" runs step 1, then waits for its own cancel."""

    model_hash = None

    def __init__(self):
        self.gate, self.entered, self.holding, self.prompts = (threading.Event(), threading.Event(),
                                                               threading.Event(), [])

    def generate(self, request, on_step=None, cancel=None):
        self.prompts.append(request.prompt)
        if request.prompt == "unfit style":
            raise InvalidRequestError("loras", "papercut", "a style for this model's family")
        if request.prompt == "crash":
            raise RuntimeError("a bug")
        for step in range(1, request.steps + 1):
            self.entered.set()
            if request.prompt == "hold":
                if step > 1:
                    self.holding.set()
                    assert cancel.wait(30)
            else:
                assert self.gate.wait(30)
            if cancel.is_set():
                raise GenerationCancelled()
            on_step(StepProgress(step, request.steps, 0.0, denoised=[None]))
        resolved = request.resolved(width=64, height=64, guidance_scale=8.5)
        return GenerationResult(resolved, [Image.new("RGB", (64, 64), "red")] * request.batch_size, resolved.seeds,
                                "fake", "fake:cpu")

    def preview(self, latents):
        return [Image.new("RGB", (32, 32), "blue")]


@pytest.fixture
def server():
    engine, queue = GatedEngine(), JobQueue()
    runner = EngineRunner(queue, lambda spec: engine)
    api = ApiServer(create_app(ApiService(queue, MODEL), auth=("ann", "secret"), max_body=4096), "127.0.0.1", 0)
    runner.start()
    api.start()
    yield SimpleNamespace(engine=engine, queue=queue, port=api.port)
    engine.gate.set()
    assert api.stop(30)
    assert runner.stop(30)


AUTH = {"Authorization": "Basic YW5uOnNlY3JldA=="}  # ann:secret


def _call(port: int, method: str, path: str, body: dict | bytes | None = None, headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    connection.request(method, path, body=data, headers={"Content-Type": "application/json", **AUTH,
                                                         **(headers or {})})
    response = connection.getresponse()
    status, text = response.status, response.read()
    connection.close()
    return status, json.loads(text) if text else None


def _queued(queue: JobQueue, count: int) -> threading.Event:
    """Set once ``count`` jobs wait in the queue."""
    reached = threading.Event()

    def listener(job, event):
        if len(queue.queued) >= count:
            reached.set()

    queue.subscribe(listener)
    if len(queue.queued) >= count:
        reached.set()
    return reached


def test_requests_are_answered_in_order_and_interrupt_stops_the_running_one(server):
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(_call, server.port, "POST", "/sdapi/v1/txt2img", {"prompt": "first", "steps": 3})
        assert server.engine.entered.wait(30)
        one_waiting, two_waiting = _queued(server.queue, 1), _queued(server.queue, 2)
        second = pool.submit(_call, server.port, "POST", "/sdapi/v1/txt2img", {"prompt": "second", "seed": 5})
        assert one_waiting.wait(30)  # sent one after the other, as two clients would
        third = pool.submit(_call, server.port, "POST", "/sdapi/v1/txt2img", {"prompt": "third"})
        assert two_waiting.wait(30)
        status, progress = _call(server.port, "GET", "/sdapi/v1/progress")
        assert status == 200 and progress["state"]["job_count"] == 3 and progress["state"]["sampling_steps"] == 3
        assert _call(server.port, "POST", "/sdapi/v1/interrupt")[0] == 200
        server.engine.gate.set()
        (s1, b1), (s2, b2), (s3, b3) = first.result(60), second.result(60), third.result(60)
    assert server.engine.prompts == ["first", "second", "third"]
    assert s1 == 200 and b1["images"] == [] and json.loads(b1["info"])["interrupted"] is True
    assert s2 == 200 and len(b2["images"]) == 1 and json.loads(b2["info"])["all_seeds"] == [5]
    assert s3 == 200 and len(b3["images"]) == 1


def test_progress_carries_the_running_jobs_step_and_preview(server):
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(_call, server.port, "POST", "/sdapi/v1/txt2img", {"prompt": "hold", "steps": 2})
        assert server.engine.holding.wait(30)  # step 1 reported (with its preview); step 2 waits
        status, progress = _call(server.port, "GET", "/sdapi/v1/progress")
        assert status == 200 and progress["progress"] == 0.5 and progress["textinfo"] == "step 1 of 2"
        preview = Image.open(io.BytesIO(base64.b64decode(progress["current_image"])))
        assert preview.size == (32, 32) and preview.getpixel((0, 0)) == (0, 0, 255)
        assert _call(server.port, "GET", "/sdapi/v1/progress?skip_current_image=true")[1]["current_image"] is None
        assert _call(server.port, "POST", "/sdapi/v1/skip")[0] == 200
        assert held.result(60)[1]["images"] == []


def test_a_client_that_disconnects_cancels_its_own_job(server):
    body = json.dumps({"prompt": "hold"}).encode()
    client = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    client.sendall(b"POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Authorization: " + AUTH["Authorization"].encode() +
                   b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    assert server.engine.holding.wait(30)
    job = server.queue.running
    assert job is not None and job.origin == "api" and job.state is JobState.RUNNING
    client.close()
    assert job.wait(30) and job.state is JobState.CANCELLED
    server.engine.gate.set()
    status, answer = _call(server.port, "POST", "/sdapi/v1/txt2img", {"prompt": "after"})
    assert status == 200 and len(answer["images"]) == 1  # the server goes on serving


def test_basic_auth_is_required_when_set(server):
    status, answer = _call(server.port, "GET", "/sdapi/v1/sd-models", headers={"Authorization": ""})
    assert status == 401 and "api-auth" in answer["detail"]
    assert _call(server.port, "GET", "/docs", headers={"Authorization": "Basic YW5uOndyb25n"})[0] == 401
    status, models = _call(server.port, "GET", "/sdapi/v1/sd-models")
    assert status == 200 and models[0]["title"] == "fake"


def test_a_body_over_the_cap_is_413_by_length_or_as_it_streams(server):
    big = json.dumps({"prompt": "x" * 5000}).encode()
    assert _call(server.port, "POST", "/sdapi/v1/txt2img", big)[0] == 413
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    connection.request("POST", "/sdapi/v1/txt2img", body=iter([big[:3000], big[3000:]]),
                       headers={"Content-Type": "application/json", **AUTH}, encode_chunked=True)
    assert connection.getresponse().status == 413
    connection.close()
    assert server.queue.idle


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                                 ("127.0.0.2", True), ("0.0.0.0", False), ("192.168.1.5", False),
                                                 ("::", False), ("example.com", False)])
def test_only_loopback_addresses_count_as_this_machine(host, loopback):
    assert is_loopback(host) is loopback


def test_too_many_waiting_requests_are_a_503_and_the_queue_goes_on(server, monkeypatch):
    monkeypatch.setattr("lcm_desktop.api.service.MAX_WAITING", 1)
    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(_call, server.port, "POST", "/sdapi/v1/txt2img", {"prompt": "hold"})
        assert server.engine.holding.wait(30)
        one_waiting = _queued(server.queue, 1)
        waiting = pool.submit(_call, server.port, "POST", "/sdapi/v1/txt2img", {"prompt": "waits"})
        assert one_waiting.wait(30)
        status, answer = _call(server.port, "POST", "/sdapi/v1/txt2img", {"prompt": "one too many"})
        assert status == 503 and "waiting already" in answer["detail"]
        server.engine.gate.set()
        assert _call(server.port, "POST", "/sdapi/v1/interrupt")[0] == 200
        assert held.result(60)[1]["images"] == [] and len(waiting.result(60)[1]["images"]) == 1
    assert server.engine.prompts == ["hold", "waits"]


def test_the_server_binds_loopback_unless_told_otherwise():
    from lcm_desktop.cli import build_parser

    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    server = ApiServer(create_app(ApiService(JobQueue(), MODEL)), port=0)
    try:
        assert server._socket.getsockname()[0] == "127.0.0.1" and server.url.startswith("http://127.0.0.1:")
    finally:
        assert server.stop(10)


def test_cors_answers_only_the_origin_given():
    from fastapi.testclient import TestClient

    app = create_app(ApiService(JobQueue(), MODEL), auth=("ann", "secret"), cors_origins=("http://localhost:3000",))
    client = TestClient(app)
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    allowed = client.options("/sdapi/v1/txt2img", headers={"Origin": "http://localhost:3000", **preflight})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
    other = client.options("/sdapi/v1/txt2img", headers={"Origin": "http://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
    plain = TestClient(create_app(ApiService(JobQueue(), MODEL)))
    answer = plain.get("/sdapi/v1/samplers", headers={"Origin": "http://localhost:3000"})
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers  # no CORS by default


def test_a_job_the_engine_refuses_is_a_422_and_a_crash_a_500_and_serving_goes_on(server):
    server.engine.gate.set()
    status, answer = _call(server.port, "POST", "/sdapi/v1/txt2img", {"prompt": "unfit style"})
    assert status == 422 and answer["field"] == "prompt" and "papercut" in answer["detail"]  # loras: the prompt's tags
    status, answer = _call(server.port, "POST", "/sdapi/v1/txt2img", {"prompt": "crash"})
    assert status == 500 and "RuntimeError: a bug" in answer["detail"]
    status, answer = _call(server.port, "POST", "/sdapi/v1/txt2img", {"prompt": "fine"})
    assert status == 200 and len(answer["images"]) == 1
