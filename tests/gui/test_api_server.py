"""The app as a server (``gui/api_server.py``): API requests join the window's queue as KEPT jobs from the API,
never replace a Live update, and follow the window's model.  A stand-in engine gated by an event; no Qt needed."""

from __future__ import annotations

import http.client
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from lcm_desktop.core.errors import InvalidRequestError
from lcm_desktop.core.paths import builtin_model_path
from lcm_desktop.core.request import GenerationRequest, GenerationResult, StepProgress
from lcm_desktop.gui.api_server import AppApiServer
from lcm_desktop.session.jobs import EngineSpec, JobKind, JobQueue, JobState
from lcm_desktop.session.runner import EngineRunner


class HeldEngine:
    model_hash = None

    def __init__(self):
        self.gate, self.entered, self.ran = threading.Event(), threading.Event(), []

    def generate(self, request, on_step=None, cancel=None):
        self.entered.set()
        assert self.gate.wait(30)
        on_step(StepProgress(1, 1, 0.0, denoised=[None]))
        resolved = request.resolved(width=64, height=64, guidance_scale=8.5)
        return GenerationResult(resolved, [Image.new("RGB", (64, 64))], resolved.seeds, "m", "fake")

    def preview(self, latents):
        return [Image.new("RGB", (8, 8))]


def _request(prompt):
    return GenerationRequest(prompt, steps=1, width=64, height=64, seed=1)


def test_api_jobs_queue_behind_the_window_and_never_replace_live(tmp_path):
    engine, queue, specs = HeldEngine(), JobQueue(), []
    runner = EngineRunner(queue, lambda spec: (specs.append(spec), engine)[1])
    spec = EngineSpec(builtin_model_path(), "cpu")
    server = AppApiServer(queue, spec, "lcm-demo", port=0, choose=lambda info: "cpu", list_models=False)
    runner.start()
    url = server.start()
    host, port = url.split("//")[1].split("/")[0].split(":")
    ran = []
    queue.subscribe(lambda job, event: event == "started" and ran.append((job.request.prompt, job.origin)))
    try:
        generate = queue.submit(JobKind.KEPT, _request("window"), spec)
        assert engine.entered.wait(30)
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        connection.request("POST", "/sdapi/v1/interrupt")
        assert connection.getresponse().status == 200
        connection.close()
        assert not generate.cancel_event.is_set()  # a client never stops the window's own job
        api_queued = threading.Event()
        queue.subscribe(lambda job, event: job.origin == "api" and job.state is JobState.QUEUED and api_queued.set())

        def call():
            connection = http.client.HTTPConnection(host, int(port), timeout=60)
            connection.request("POST", "/sdapi/v1/txt2img", body=json.dumps({"prompt": "from a client"}),
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, json.loads(response.read())

        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(call)
            assert api_queued.wait(30)
            first_live = queue.submit(JobKind.LIVE, _request("live 1"), spec)
            second_live = queue.submit(JobKind.LIVE, _request("live 2"), spec)
            assert first_live.state is JobState.CANCELLED  # a newer Live update replaces the queued one …
            assert [j.origin for j in queue.queued] == ["api", "app"]  # … but never the API's job
            engine.gate.set()
            status, body = answer.result(60)
        assert status == 200 and len(body["images"]) == 1
        assert second_live.wait(30) and generate.state is JobState.FINISHED
        assert ran == [("window", "app"), ("from a client", "api"), ("live 2", "app")]
        assert specs == [spec]  # one engine: the API shares the window's loaded model
    finally:
        assert server.stop(30)
        runner.stop(30)


def test_serving_beyond_this_machine_needs_credentials():
    with pytest.raises(InvalidRequestError, match="`auth`"):
        AppApiServer(JobQueue(), EngineSpec(builtin_model_path()), "lcm-demo", host="0.0.0.0", port=0,
                     choose=lambda info: "cpu", list_models=False)
