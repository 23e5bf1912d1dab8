"""The job queue's rules and the engine runner, with a stand-in engine gated by events (no sleeps, no Qt)."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from lcm_desktop.core.errors import GenerationCancelled, InvalidRequestError
from lcm_desktop.core.request import GenerationRequest, GenerationResult, StepProgress
from lcm_desktop.session.jobs import EngineSpec, JobKind, JobQueue, JobState
from lcm_desktop.session.runner import EngineRunner

SPEC = EngineSpec(Path("model"))


def _request(prompt="a red circle", steps=2):
    return GenerationRequest(prompt, steps=steps, width=64, height=64, guidance_scale=1.0, seed=1)


def test_a_newer_live_job_replaces_a_queued_one_and_kept_jobs_queue_in_order():
    queue, events = JobQueue(), []
    queue.subscribe(lambda job, event: events.append((job.id, event, job.state)))
    first_live = queue.submit(JobKind.LIVE, _request("a"), SPEC)
    kept = queue.submit(JobKind.KEPT, _request("b"), SPEC)
    second_live = queue.submit(JobKind.LIVE, _request("c"), SPEC)
    assert first_live.state is JobState.CANCELLED and first_live.wait(0)  # never ran
    assert [j.id for j in queue.queued] == [kept.id, second_live.id]
    kept_2 = queue.submit(JobKind.KEPT, _request("d"), SPEC)
    assert [j.id for j in queue.queued] == [kept.id, second_live.id, kept_2.id]  # kept ones are never dropped
    assert (first_live.id, "state", JobState.CANCELLED) in events
    assert queue.take(0) is kept and kept.state is JobState.RUNNING and queue.running is kept and not queue.idle


def test_idle_means_nothing_running_and_nothing_waiting():
    queue = JobQueue()
    assert queue.idle
    job = queue.submit(JobKind.KEPT, _request(), SPEC)
    assert not queue.idle
    assert queue.take(0) is job and not queue.idle
    queue.finish(job, JobState.FINISHED)
    assert queue.idle and job.state is JobState.FINISHED and job.wait(0)


def test_cancel_a_queued_job_and_the_running_one():
    queue = JobQueue()
    running = queue.submit(JobKind.KEPT, _request(), SPEC)
    waiting = queue.submit(JobKind.KEPT, _request(), SPEC)
    assert queue.take(0) is running
    assert queue.cancel(waiting.id) and waiting.state is JobState.CANCELLED
    assert queue.cancel(running.id) and running.cancel_event.is_set()  # stops between two steps
    assert not queue.cancel(12345)


class FakeEngine:
    """Engine's interface: ``generate`` calls ``on_step`` per step, honours ``cancel``; ``gate`` holds step 1."""

    model_hash = "abc"

    def __init__(self, gate: threading.Event | None = None, entered: threading.Event | None = None):
        self.gate, self.entered, self.prompts = gate, entered, []

    def generate(self, request, on_step=None, cancel=None):
        self.prompts.append(request.prompt)
        if request.prompt == "bad":
            raise InvalidRequestError("prompt", "bad", "a good one")
        for step in range(1, request.steps + 1):
            if self.entered is not None:
                self.entered.set()
            if self.gate is not None:
                assert self.gate.wait(10)
            if cancel is not None and cancel.is_set():
                raise GenerationCancelled()
            on_step(StepProgress(step, request.steps, 0.0, denoised=[f"latent{step}"]))
        return GenerationResult(request.resolved(width=64, height=64, guidance_scale=1.0), ["image"], [1], "m", "x")

    def preview(self, latents):
        return [f"preview of {latents[0]}"]


def test_the_runner_runs_jobs_in_order_reports_them_and_survives_failures():
    queue, built = JobQueue(), []
    engine = FakeEngine()
    writer = SimpleNamespace(write=lambda result, folder, tag, model_hash, origin: [f"{folder}/{tag}.png"])
    runner = EngineRunner(queue, lambda spec: (built.append(spec), engine)[1], writer, Path("out"))
    events = []
    queue.subscribe(lambda job, event: events.append((job.id, event)))
    a = queue.submit(JobKind.KEPT, _request("a"), SPEC)
    bad = queue.submit(JobKind.KEPT, _request("bad"), SPEC)
    live = queue.submit(JobKind.LIVE, _request("c"), SPEC)
    runner.start()
    assert all(job.wait(10) for job in (a, bad, live))
    runner.stop(10)
    assert engine.prompts == ["a", "bad", "c"] and built == [SPEC]  # loaded once, in order
    assert a.state is JobState.FINISHED and a.saved == [f"out/{a.id}.png"] and a.result.images == ["image"]
    assert live.state is JobState.FINISHED and live.saved == []  # live updates are shown, not written
    assert bad.state is JobState.FAILED and "`prompt` must be a good one" in bad.error
    assert (a.id, "loading") in events and (a.id, "preview") in events and (a.id, "progress") in events
    assert a.seconds is not None and bad.seconds is None


def test_interrupt_stops_the_running_job_between_steps_and_the_next_one_runs():
    queue, gate, entered = JobQueue(), threading.Event(), threading.Event()
    engine = FakeEngine(gate, entered)
    runner = EngineRunner(queue, lambda spec: engine)
    first = queue.submit(JobKind.KEPT, _request("first", steps=3), SPEC)
    second = queue.submit(JobKind.KEPT, _request("second"), SPEC)
    runner.start()
    assert entered.wait(10) and queue.running is first
    queue.interrupt()
    gate.set()
    assert first.wait(10) and second.wait(10)
    runner.stop(10)
    assert first.state is JobState.CANCELLED and first.step == 0
    assert second.state is JobState.FINISHED


def test_stop_cancels_what_is_queued_and_ends_the_thread():
    queue, gate, entered = JobQueue(), threading.Event(), threading.Event()
    runner = EngineRunner(queue, lambda spec: FakeEngine(gate, entered))
    running = queue.submit(JobKind.KEPT, _request(), SPEC)
    waiting = queue.submit(JobKind.KEPT, _request(), SPEC)
    runner.start()
    assert entered.wait(10)
    queue.close()  # what stop() does first: the running job is asked to stop, the queued one cancelled
    gate.set()
    assert runner.stop(10)
    assert running.state is JobState.CANCELLED and waiting.state is JobState.CANCELLED
    with pytest.raises(RuntimeError, match="closed"):
        queue.submit(JobKind.KEPT, _request(), SPEC)
