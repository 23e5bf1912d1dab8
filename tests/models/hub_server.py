"""A loopback stand-in for the Hugging Face Hub: the endpoints huggingface_hub 2.4 calls.

- ``GET /api/models/{repo}/revision/{rev}`` (model info; ``siblings`` with size and LFS sha256)
- ``GET /api/models/{repo}/tree/{rev}`` (recursive tree listing: ``oid``, ``size``, ``lfs.oid``)
- ``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` with ``X-Repo-Commit``, ``ETag``/``X-Linked-Etag``,
  ``Content-Length``/``X-Linked-Size`` and ``Range`` support (206 + ``Content-Range``).

Errors carry the ``X-Error-Code`` header the real Hub sends (``RepoNotFound``, ``GatedRepo``,
``RevisionNotFound``, ``EntryNotFound``), so huggingface_hub raises its own exception types.

Faults, for the tests: ``corrupt`` (serve one flipped byte while the metadata describes the
original), ``drop`` (close the connection after N bytes, a number of times), ``pause`` (stop
after N bytes until released: a download stuck mid-file).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

LFS_THRESHOLD = 1024  # files at least this big are served as LFS files (sha256 etag), as on the Hub
SEND_CHUNK = 16 * 1024


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class ServedRepo:
    repo_id: str
    files: dict[str, bytes]
    gated: bool = False
    commit: str = ""

    def __post_init__(self) -> None:
        if not self.commit:
            self.commit = hashlib.sha1(self.repo_id.encode()).hexdigest()

    def is_lfs(self, path: str) -> bool:
        return len(self.files[path]) >= LFS_THRESHOLD

    def etag(self, path: str) -> str:
        data = self.files[path]
        return hashlib.sha256(data).hexdigest() if self.is_lfs(path) else git_blob_sha1(data)


@dataclass
class Pause:
    """Hold a file's body after ``after`` bytes until ``release`` is set (``reached`` tells the test)."""

    repo_id: str
    path: str
    after: int
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


class HubServer:
    def __init__(self) -> None:
        self.repos: dict[str, ServedRepo] = {}
        self.corrupt: dict[tuple[str, str], int] = {}  # (repo, path) -> index of the flipped byte
        self.drop: dict[tuple[str, str], list[int]] = {}  # (repo, path) -> [bytes before the drop, times]
        self.pauses: list[Pause] = []
        self.cdn = False  # LFS files redirect (302) to http://localhost:<port>/cdn/<sha256>, another host
        self.auth: list[tuple[str, str | None]] = []  # (path, Authorization header) of every request
        self.log: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"hub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, repo_id: str, files: dict[str, bytes], **kwargs) -> ServedRepo:
        repo = ServedRepo(repo_id, dict(files), **kwargs)
        self.repos[repo_id] = repo
        return repo

    def pause(self, repo_id: str, path: str, after: int) -> Pause:
        pause = Pause(repo_id, path, after)
        self.pauses.append(pause)
        return pause

    def gets(self, path_suffix: str = "") -> list[tuple[str, str, str | None]]:
        """The file GETs served (optionally only those whose path ends in ``path_suffix``)."""
        return [e for e in self.log if e[0] == "GET" and "/resolve/" in e[1] and e[1].endswith(path_suffix)]

    def cdn_gets(self) -> list[tuple[str, str, str | None]]:
        return [e for e in self.log if e[0] == "GET" and e[1].startswith("/cdn/")]

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        for pause in self.pauses:
            pause.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/revision/(?P<rev>[^/]+)$")
_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?P<sub>/.*)?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._route(head=False)

    def do_HEAD(self) -> None:
        self._route(head=True)

    # -- routing -----------------------------------------------------------------------------
    def _route(self, head: bool) -> None:
        path = urlsplit(self.path).path
        self.hub.log.append(("HEAD" if head else "GET", path, self.headers.get("Range")))
        self.hub.auth.append((path, self.headers.get("Authorization")))
        if path.startswith("/cdn/"):
            self._cdn(path[len("/cdn/"):], head)
            return
        for pattern, handler in ((_INFO, self._info), (_TREE, self._tree), (_RESOLVE, self._resolve)):
            match = pattern.match(path)
            if match:
                groups = {k: unquote(v) if v else v for k, v in match.groupdict().items()}
                repo = self._repo(groups["repo"], groups["rev"])
                if repo is not None:
                    handler(repo, groups, head)
                return
        self._error(404, "RepoNotFound", "not found")

    def _repo(self, repo_id: str, rev: str) -> ServedRepo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
        elif repo.gated:
            self._error(403, "GatedRepo", f"Access to model {repo_id} is restricted. You must have access to it.")
        elif rev not in ("main", repo.commit):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        else:
            return repo
        return None

    # -- endpoints ---------------------------------------------------------------------------
    def _info(self, repo: ServedRepo, groups: dict, head: bool) -> None:
        siblings = []
        for path, data in sorted(repo.files.items()):
            entry = {"rfilename": path, "size": len(data), "blobId": git_blob_sha1(data)}
            if repo.is_lfs(path):
                entry["lfs"] = {"sha256": repo.etag(path), "size": len(data), "pointerSize": 134}
            siblings.append(entry)
        self._json({"id": repo.repo_id, "sha": repo.commit, "private": False, "siblings": siblings}, head)

    def _tree(self, repo: ServedRepo, groups: dict, head: bool) -> None:
        items = []
        for path, data in sorted(repo.files.items()):
            item = {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": path}
            if repo.is_lfs(path):
                item["lfs"] = {"oid": repo.etag(path), "size": len(data), "pointerSize": 134}
            items.append(item)
        self._json(items, head)

    def _resolve(self, repo: ServedRepo, groups: dict, head: bool) -> None:
        path = groups["path"]
        if path not in repo.files:
            self._error(404, "EntryNotFound", f"{path} does not exist", commit=repo.commit)
            return
        if self.hub.cdn and repo.is_lfs(path):
            self.send_response(302)
            self.send_header("X-Repo-Commit", repo.commit)
            self.send_header("X-Linked-Etag", f'"{repo.etag(path)}"')
            self.send_header("X-Linked-Size", str(len(repo.files[path])))
            self.send_header("ETag", f'"{git_blob_sha1(repo.files[path])}"')
            self.send_header("Location", f"http://localhost:{self.server.server_address[1]}/cdn/{repo.etag(path)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send_file(repo, path, head)

    def _cdn(self, sha: str, head: bool) -> None:
        for repo in self.hub.repos.values():
            for path in repo.files:
                if repo.is_lfs(path) and repo.etag(path) == sha:
                    self._send_file(repo, path, head)
                    return
        self._error(404, "EntryNotFound", "no such blob")

    def _send_file(self, repo: ServedRepo, path: str, head: bool) -> None:
        data = repo.files[path]
        key = (repo.repo_id, path)
        if key in self.hub.corrupt:
            index = self.hub.corrupt[key]
            data = data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1 :]
        start, status = 0, 200
        match = _RANGE.match(self.headers.get("Range") or "")
        if match and not head:
            start, status = int(match.group(1)), 206
        body = data[start:]
        self.send_response(status)
        self.send_header("X-Repo-Commit", repo.commit)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        etag = f'"{repo.etag(path)}"'
        if repo.is_lfs(path):
            self.send_header("X-Linked-Etag", etag)
            self.send_header("X-Linked-Size", str(len(data)))
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if not head:
            self._send_body(key, body, start)

    def _send_body(self, key: tuple[str, str], body: bytes, start: int) -> None:
        hub = self.hub
        drop_at = None
        with hub._lock:
            rule = hub.drop.get(key)
            if rule and rule[1] > 0:
                rule[1] -= 1
                drop_at = max(rule[0] - start, 0)
        pause = next((p for p in hub.pauses if (p.repo_id, p.path) == key and not p.release.is_set()), None)
        sent = 0
        try:
            while sent < len(body):
                limit = len(body)
                if drop_at is not None:
                    limit = min(limit, drop_at)
                if pause is not None and start + sent >= pause.after:
                    pause.reached.set()
                    pause.release.wait(timeout=30)
                    pause = None
                if pause is not None:
                    limit = min(limit, pause.after - start)
                if sent >= limit:
                    if drop_at is not None and sent >= drop_at:
                        self.close_connection = True
                        self.connection.shutdown(2)  # SHUT_RDWR: the peer sees a short body
                        return
                    continue
                piece = body[sent : min(sent + SEND_CHUNK, limit)]
                self.wfile.write(piece)
                self.wfile.flush()
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # -- helpers -----------------------------------------------------------------------------
    def _json(self, payload, head: bool) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if not head:
            self.wfile.write(raw)

    def _error(self, status: int, code: str, message: str, commit: str | None = None) -> None:
        raw = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)
