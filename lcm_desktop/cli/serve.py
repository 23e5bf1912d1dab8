"""``lcm-desktop serve``: AUTOMATIC1111's web API (``/sdapi/v1/txt2img``, ``img2img``, …) on this machine.

Safe by default: it listens on 127.0.0.1; any other ``--host`` prints a warning and needs ``--api-auth``.
One engine and one job queue: requests run one at a time, in order; images are saved (and listed in the
app's history, marked as from the API) as the app saves its own.
"""

from __future__ import annotations

import argparse
import sys

from ..core.errors import InvalidRequestError

FLAGS = {"sd_model_checkpoint": "--model"}


def add_parser(sub) -> argparse.ArgumentParser:
    serve = sub.add_parser("serve", help="serve AUTOMATIC1111's web API (txt2img, img2img, …) on this machine")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only; others need --api-auth)")
    serve.add_argument("--port", type=int, default=7860, help="port (default 7860, as AUTOMATIC1111)")
    serve.add_argument("--model", default=None,
                       help="catalog id, imported or converted model name, or a model folder (default: built-in)")
    serve.add_argument("--api-auth", default=None, metavar="USER:PASS",
                       help="require HTTP basic auth with this user and password")
    serve.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                       help="let web pages from ORIGIN (e.g. http://localhost:3000) call the API; repeatable")
    return serve


def run(args: argparse.Namespace) -> int:
    from ..api.server import is_loopback

    auth = parse_auth(args.api_auth)
    if not 0 <= args.port <= 65535:
        raise InvalidRequestError("--port", args.port, "from 0 to 65535")
    if not is_loopback(args.host):
        if auth is None:
            raise InvalidRequestError("--api-auth", None, f"USER:PASS when --host {args.host} lets other machines "
                                      "connect")
        print(f"warning: listening on {args.host}: other machines can reach this server (with the --api-auth "
              "credentials, sent unencrypted over plain HTTP).", file=sys.stderr)
    from ..api.app import create_app
    from ..api.server import ApiServer, Hosting, backend_chooser, preloaded
    from ..api.service import ApiService, installed_models, served_model
    from ..core.paths import builtin_model_path
    from ..engine.diffusers_quiet import quiet_libraries
    from ..models.styles import StyleStore

    choose = backend_chooser()
    if args.model:
        from ..models.resolve import resolve_model

        model = served_model(args.model, resolve_model(args.model), choose)
    else:
        model = None
    listed = installed_models(choose)
    if model is None:
        model = next((m for m in listed if m.path == builtin_model_path()), None) or \
            served_model("lcm-demo", builtin_model_path(), choose)
    store = StyleStore()
    quiet_libraries()
    print(f"Loading {model.name}…", file=sys.stderr, flush=True)
    hosting = Hosting(build=preloaded(model.spec))
    service = ApiService(hosting.queue, model, models=lambda: installed_models(choose), styles=store.styles,
                         style_path=store.path_of, output_folder=hosting.output_folder)
    app = create_app(service, auth=auth, cors_origins=tuple(args.cors_origin))
    server = ApiServer(app, args.host, args.port)
    hosting.start()
    print(f"Serving {model.name} at {server.url}/sdapi/v1 (API docs: {server.url}/docs); Ctrl-C stops.",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        hosting.stop()
    return 0


def cancelled_message(args: argparse.Namespace) -> str:
    return "stopped serving (Ctrl-C)"


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """``USER:PASS`` → (user, password); both must be non-empty."""
    if text is None:
        return None
    user, colon, password = text.partition(":")
    if not colon or not user or not password:
        raise InvalidRequestError("--api-auth", "(hidden)", "USER:PASS with both parts non-empty")
    return user, password
