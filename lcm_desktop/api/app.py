"""The HTTP side of the local API: AUTOMATIC1111's ``/sdapi/v1`` routes over an ``ApiService`` (FastAPI).

Why FastAPI (on Starlette, served by uvicorn): it is what AUTOMATIC1111 itself uses, so the routes, the JSON
shapes and the OpenAPI page at ``/docs`` come out as A1111's clients expect; pydantic checks every field and
names the bad one in a 422; both are widely used and actively maintained.

Safety, in the order a request meets it (pure ASGI middleware, so a client's disconnect still reaches a route):
CORS only for the ``--cors-origin`` given; HTTP basic auth when set (401 otherwise); the body capped
(``MAX_BODY``, 413).  Then every bad field is a 4xx naming it (``InvalidRequestError`` → 422); no route takes a
path, and a generation failure never stops the server.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ..core.errors import InvalidRequestError, LcmError
from ..session.jobs import Job, JobState
from . import schemas
from .service import ApiService, ServerBusyError
from .translate import A1111_FIELDS, encode_png, image_response, png_info, sampler_items, to_request

log = logging.getLogger(__name__)
MAX_BODY = 32 * 1024 * 1024  # one request body: a 2048×2048 PNG in base64 fits with room to spare
PREFIX = "/sdapi/v1"


def create_app(service: ApiService, *, auth: tuple[str, str] | None = None, cors_origins: tuple[str, ...] = (),
               max_body: int = MAX_BODY) -> FastAPI:
    app = FastAPI(title="LCM Desktop", description="AUTOMATIC1111's web API for on-device LCM image generation.",
                  version="1")
    _add_routes(app, service)
    app.add_exception_handler(LcmError, _lcm_error)
    app.add_middleware(_BodyLimit, limit=max_body)
    if auth is not None:
        app.add_middleware(_BasicAuth, user=auth[0], password=auth[1])
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["*"],
                           allow_headers=["*"], allow_credentials=True)
    return app


def _add_routes(app: FastAPI, service: ApiService) -> None:  # one short function per route
    queue = service.queue

    async def generate(body: schemas.Txt2ImgBody, request: Request) -> dict:
        model = service.model
        overrides = body.override_settings or {}
        if "sd_model_checkpoint" in overrides:
            model = service.find_model(overrides["sd_model_checkpoint"], field="override_settings")
        generation, note = await run_in_threadpool(to_request, body, model.info)
        service.check_styles(generation)
        if note:
            log.info("%s", note)
        job = service.submit(generation, model)
        await _until_done(job, queue, request)
        if job.state is JobState.FAILED:
            if isinstance(job.exception, InvalidRequestError):
                exc = job.exception
                raise InvalidRequestError(A1111_FIELDS.get(exc.field, exc.field), exc.value, exc.allowed)
            return JSONResponse({"error": type(job.exception).__name__ if job.exception else "GenerationError",
                                 "detail": job.error or "generation failed"}, status_code=500)
        if job.state is not JobState.FINISHED or job.result is None:  # interrupted: A1111 answers with what it has
            return {"images": [], "parameters": body.model_dump(exclude={"init_images", "mask"}),
                    "info": json.dumps({"interrupted": True, "prompt": body.prompt})}
        model_hash = job.saved[0].params.model_hash if job.saved else None
        return await run_in_threadpool(image_response, job.result, body, model=model.name, model_hash=model_hash)

    @app.post(f"{PREFIX}/txt2img", response_model=schemas.ImageResponse, tags=["generation"])
    async def txt2img(body: schemas.Txt2ImgBody, request: Request):
        """Text to image; ``<lora:name:weight>`` in the prompt applies an installed style."""
        return await generate(body, request)

    @app.post(f"{PREFIX}/img2img", response_model=schemas.ImageResponse, tags=["generation"])
    async def img2img(body: schemas.Img2ImgBody, request: Request):
        """Image to image from ``init_images[0]`` at ``denoising_strength``; masks are not supported yet."""
        return await generate(body, request)

    @app.get(f"{PREFIX}/progress", response_model=schemas.ProgressResponse, tags=["generation"])
    def progress(skip_current_image: bool = False):
        job, waiting = queue.running, len(queue.queued)
        if job is None:
            return schemas.ProgressResponse(progress=0.0, eta_relative=0.0, state=schemas.ProgressState(
                job_count=waiting))
        total = job.total or job.request.steps
        preview = job.preview
        return schemas.ProgressResponse(
            progress=min(job.step / total, 1.0) if total else 0.0, eta_relative=0.0,
            state=schemas.ProgressState(job=f"job {job.id}", job_count=1 + waiting, sampling_step=job.step,
                                        sampling_steps=total, interrupted=job.cancel_event.is_set()),
            current_image=None if skip_current_image or preview is None else encode_png(preview),
            textinfo=f"step {job.step} of {total}")

    @app.post(f"{PREFIX}/interrupt", tags=["generation"])
    def interrupt():
        """Cancel the running API request between two steps (its client gets no images); queued ones still run.
        A job of the app's own window is never cancelled from here."""
        service.interrupt()
        return {}

    @app.post(f"{PREFIX}/skip", tags=["generation"])
    def skip():
        """As ``interrupt``: a request is one job here, so skipping its image ends it."""
        service.interrupt()
        return {}

    @app.get(f"{PREFIX}/sd-models", response_model=list[schemas.SDModelItem], tags=["models"])
    def sd_models():
        return [schemas.SDModelItem(title=m.name, model_name=m.name, filename=m.name) for m in service.models()]

    @app.post(f"{PREFIX}/refresh-checkpoints", tags=["models"])
    def refresh_checkpoints():
        return {}  # the list is read afresh on every call

    @app.get(f"{PREFIX}/options", tags=["models"])
    def get_options() -> dict[str, Any]:
        return {"sd_model_checkpoint": service.model.name, "sd_checkpoint_hash": None, "samples_format": "png",
                "sd_lora": "None", "CLIP_stop_at_last_layers": 1}

    @app.post(f"{PREFIX}/options", tags=["models"])
    def set_options(options: dict[str, Any]):
        """Only ``sd_model_checkpoint`` changes anything: later requests run on that model."""
        if "sd_model_checkpoint" in options:
            service.select(options["sd_model_checkpoint"])
        return None

    @app.get(f"{PREFIX}/samplers", response_model=list[schemas.SamplerItem], tags=["models"])
    def samplers():
        return sampler_items(service.model.info)

    @app.get(f"{PREFIX}/loras", response_model=list[schemas.LoraItem], tags=["models"])
    def loras():
        return [schemas.LoraItem(name=s.name, alias=s.name, path=s.path.name,
                                 metadata={"trigger_words": list(s.info.trigger_words) if s.info else [],
                                           "builtin": s.builtin}) for s in service.styles()]

    @app.post(f"{PREFIX}/refresh-loras", tags=["models"])
    def refresh_loras():
        return {}

    @app.get(f"{PREFIX}/scripts", tags=["models"])
    def scripts():
        return {"txt2img": [], "img2img": []}

    @app.get(f"{PREFIX}/prompt-styles", tags=["models"])
    def prompt_styles():
        return []  # A1111's prompt presets: none here (styles are LoRAs: /loras)

    @app.post(f"{PREFIX}/png-info", response_model=schemas.PngInfoResponse, tags=["images"])
    def png_info_route(body: schemas.PngInfoBody):
        return png_info(body.image)


async def _until_done(job: Job, queue: Any, request: Request) -> None:
    """Wait for ``job`` without holding a thread; a client that goes away cancels its job (and so does a server
    shutting down while it waits)."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def listener(changed: Job, event: str) -> None:
        if changed is job and event == "state" and changed.state.done:
            loop.call_soon_threadsafe(done.set)

    unsubscribe = queue.subscribe(listener)
    if job.state.done:
        done.set()
    finished = asyncio.ensure_future(done.wait())
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({finished, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        unsubscribe()
        for task in (finished, gone):
            task.cancel()
        if not job.state.done:
            queue.cancel(job.id)


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (the body is read by now: the next ASGI message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _lcm_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, InvalidRequestError):
        return JSONResponse({"error": type(exc).__name__, "field": exc.field, "detail": str(exc)}, status_code=422)
    if isinstance(exc, ServerBusyError):
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=503)
    return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=500)


class _TooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"The request body is larger than {limit // 2**20} MiB.")


async def _send_json(send: Any, status: int, data: dict, headers: list | None = None) -> None:
    body = json.dumps(data).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class _BodyLimit:
    """413 for a body over ``limit`` bytes: by its Content-Length at once, else counted as it arrives."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await _send_json(send, 413, {"detail": f"The request body is larger than "
                                                          f"{self.limit // 2**20} MiB."})
        received = 0

        async def counted() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge(self.limit)
            return message

        await self.app(scope, counted, send)


class _BasicAuth:
    """HTTP basic auth on every route (``/docs`` too): 401 with ``WWW-Authenticate`` without the credentials."""

    def __init__(self, app: Any, user: str, password: str):
        self.app = app
        self._expected = b"Basic " + base64.b64encode(f"{user}:{password}".encode())

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"authorization", b"")
        if not secrets.compare_digest(given, self._expected):
            return await _send_json(send, 401, {"detail": "Not authenticated: this server needs --api-auth's "
                                                          "user and password (HTTP basic auth)."},
                                    [(b"www-authenticate", b'Basic realm="lcm-desktop"')])
        await self.app(scope, receive, send)
