"""Downloads against the loopback Hub: progress, cancel + resume, verification, faults, errors."""

from __future__ import annotations

import hashlib
import os
import threading
import types

import pytest

from lcm_desktop.core.errors import DownloadError
from lcm_desktop.models import download
from lcm_desktop.models.download import (
    DownloadCancelled,
    hub_cache_dir,
    pull,
    pull_repo,
    read_receipt,
    repo_storage,
)

REPO = "tiny/lcm"
BIG = "unet/diffusion_pytorch_model.safetensors"
PATTERNS = ["*.json", "*.safetensors"]


def _random(n: int, seed: int = 0) -> bytes:
    out, block = bytearray(), hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


@pytest.fixture
def small_chunks(monkeypatch):
    """huggingface_hub hands over (and writes) 10 MB at a time; our test files are 1 MB."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)


@pytest.fixture
def big_repo(hub):
    files = {"model_index.json": b'{"_class_name": "X"}', "unet/config.json": b'{"a": 1}',
             BIG: _random(1_000_000), "vae/diffusion_pytorch_model.safetensors": _random(50_000, 1),
             "unet/diffusion_pytorch_model.bin": b"pickle" * 500}
    hub.add(REPO, files)
    return files


def _snapshot_files(snapshot) -> dict[str, bytes]:
    return {p.relative_to(snapshot).as_posix(): p.read_bytes() for p in snapshot.rglob("*") if p.is_file()}


def _partials() -> list:
    return sorted(hub_cache_dir().glob("*/blobs/*.incomplete"))


def test_pull_fetches_only_the_patterns_reports_progress_and_verifies(hub, big_repo):
    events = []
    snapshot = pull_repo(REPO, "main", PATTERNS, on_progress=events.append)
    expected = {k: v for k, v in big_repo.items() if not k.endswith(".bin")}
    assert _snapshot_files(snapshot) == expected
    assert snapshot.parent.parent == repo_storage(REPO)
    assert not hub.gets(".bin"), "a pickle was fetched"
    total = sum(len(v) for v in expected.values())
    assert events[-1].bytes_done == events[-1].bytes_total == total
    assert (events[-1].files_done, events[-1].files_total) == (4, 4)
    assert [e.bytes_done for e in events] == sorted(e.bytes_done for e in events)
    assert {e.file for e in events if e.file} == set(expected)
    receipt = read_receipt(repo_storage(REPO), hub.repos[REPO].commit)
    assert receipt["files"][BIG]["sha256"] == hashlib.sha256(big_repo[BIG]).hexdigest() and receipt["complete"]
    assert (repo_storage(REPO) / "refs" / "main").read_text() == hub.repos[REPO].commit

    hub.log.clear()
    assert pull_repo(REPO, "main", PATTERNS) == snapshot
    assert not hub.gets(), "a complete model was fetched again"


def test_cancel_mid_file_then_resume_gives_identical_files(hub, big_repo, small_chunks, monkeypatch):
    pause = hub.pause(REPO, BIG, after=400_000)
    cancel, outcome, midway = threading.Event(), {}, threading.Event()

    def on_progress(event):
        if event.file == BIG and event.bytes_done - event.bytes_total + len(big_repo[BIG]) > 200_000:
            midway.set()  # the client has written >200 KB of the big file

    def run():
        try:
            pull_repo(REPO, "main", PATTERNS, cancel=cancel, on_progress=on_progress)
        except DownloadError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    assert pause.reached.wait(30) and midway.wait(30)
    cancel.set()
    pause.release.set()
    worker.join(30)
    assert not worker.is_alive()
    assert isinstance(outcome.get("error"), DownloadCancelled)
    assert "pull again to resume" in str(outcome["error"])
    [partial] = _partials()
    kept = partial.stat().st_size
    assert 200_000 < kept <= 400_000 + 64 * 1024  # stopped within one chunk of the cancel
    assert big_repo[BIG].startswith(partial.read_bytes())

    hub.log.clear()
    hashed = []
    real_verify = download.verify_file
    monkeypatch.setattr(
        download, "verify_file", lambda path, remote: hashed.append(remote.path) or real_verify(path, remote)
    )
    snapshot = pull_repo(REPO, "main", PATTERNS)
    assert _snapshot_files(snapshot)[BIG] == big_repo[BIG]
    assert sorted(hashed) == [BIG, "vae/diffusion_pytorch_model.safetensors"]  # finished files are not re-hashed
    [(_, _, ranged)] = hub.gets(BIG)
    assert ranged == f"bytes={kept}-"
    assert not _partials()


def test_corrupted_byte_is_detected_and_the_file_discarded(hub, big_repo):
    hub.corrupt[(REPO, BIG)] = 123_456
    with pytest.raises(DownloadError, match="failed verification .*sha256.*discarded") as info:
        pull_repo(REPO, "main", PATTERNS)
    assert BIG in str(info.value)
    storage = repo_storage(REPO)
    assert not _partials()
    assert not (storage / "blobs" / hashlib.sha256(big_repo[BIG]).hexdigest()).exists()
    assert not (storage / "snapshots" / hub.repos[REPO].commit / BIG).exists()
    receipt = read_receipt(storage, hub.repos[REPO].commit)
    assert receipt["complete"] is False and BIG not in receipt["files"] and "model_index.json" in receipt["files"]

    del hub.corrupt[(REPO, BIG)]
    snapshot = pull_repo(REPO, "main", PATTERNS)
    assert _snapshot_files(snapshot)[BIG] == big_repo[BIG]


def test_a_dropped_connection_is_resumed_with_a_range_request(hub, big_repo, small_chunks, monkeypatch):
    monkeypatch.setattr("huggingface_hub.file_download.time", types.SimpleNamespace(sleep=lambda s: None))
    hub.drop[(REPO, BIG)] = [300_000, 1]
    snapshot = pull_repo(REPO, "main", PATTERNS)
    assert _snapshot_files(snapshot)[BIG] == big_repo[BIG]
    ranges = [r for _, _, r in hub.gets(BIG)]
    assert ranges[0] is None and ranges[1] is not None and int(ranges[1][6:-1]) >= 300_000 - 64 * 1024


def test_a_connection_that_keeps_dropping_fails_cleanly_and_resumes_later(hub, big_repo, small_chunks, monkeypatch):
    monkeypatch.setattr("huggingface_hub.file_download.time", types.SimpleNamespace(sleep=lambda s: None))
    hub.drop[(REPO, BIG)] = [300_000, 100]
    with pytest.raises(DownloadError, match="pull again to resume .*kept"):
        pull_repo(REPO, "main", PATTERNS)
    [partial] = _partials()
    kept = partial.stat().st_size  # whole chunks only: huggingface_hub writes what it has handed over
    assert 300_000 - 64 * 1024 < kept <= 300_000

    hub.drop.clear()
    hub.log.clear()
    snapshot = pull_repo(REPO, "main", PATTERNS)
    assert _snapshot_files(snapshot)[BIG] == big_repo[BIG]
    assert [r for _, _, r in hub.gets(BIG)] == [f"bytes={kept}-"]


def test_not_enough_disk_space_fails_before_anything_is_written(hub, big_repo):
    free = types.SimpleNamespace(free=500_000)
    with pytest.raises(DownloadError, match=r"Not enough disk space for tiny/lcm: it needs 1\.1 MB more, 500\.0 KB"):
        pull_repo(REPO, "main", PATTERNS, disk_usage=lambda path: free)
    assert not repo_storage(REPO).exists()
    assert not hub.gets()


def test_disk_space_check_counts_only_what_is_missing(hub, big_repo):
    pull_repo(REPO, "main", PATTERNS)
    pull_repo(REPO, "main", PATTERNS, disk_usage=lambda path: types.SimpleNamespace(free=0))


@pytest.mark.parametrize(
    "repo, gated, message",
    [("nobody/nothing", False, "nobody/nothing was not found on the Hugging Face Hub"),
     ("gated/model", True, "gated/model is gated: accept its licence")],
)
def test_unknown_and_gated_repos_give_one_clear_line(hub, repo, gated, message):
    if gated:
        hub.add(repo, {"a.json": b"{}"}, gated=True)
    with pytest.raises(DownloadError, match=message) as info:
        pull_repo(repo, "main", PATTERNS)
    assert "\n" not in str(info.value)
    assert not repo_storage(repo).exists()


def test_unknown_revision_and_no_matching_files(hub, big_repo):
    with pytest.raises(DownloadError, match="Revision 'v9' of tiny/lcm does not exist"):
        pull_repo(REPO, "v9", PATTERNS)
    with pytest.raises(DownloadError, match="no files matching"):
        pull_repo(REPO, "main", ["*.gguf"])


def test_no_network_and_offline_mode(hub, monkeypatch):
    from huggingface_hub import constants

    hub.stop()
    with pytest.raises(DownloadError, match="Cannot reach the Hugging Face Hub for tiny/lcm"):
        pull_repo(REPO, "main", PATTERNS)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE=1"):
        pull_repo(REPO, "main", PATTERNS)


def test_pull_refuses_the_builtin_model():
    from lcm_desktop.models.catalog import load_catalog

    with pytest.raises(DownloadError, match="ships with LCM Desktop"):
        pull(load_catalog().get("lcm-demo"))


def test_hub_cache_dir_honours_hf_home_and_hf_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    assert hub_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    assert hub_cache_dir() == tmp_path / "elsewhere"
    assert os.environ["HF_HOME"]  # untouched


def test_lfs_files_from_a_cdn_get_no_token_and_still_resume(hub, big_repo, small_chunks, monkeypatch):
    monkeypatch.setattr("huggingface_hub.file_download.time", types.SimpleNamespace(sleep=lambda s: None))
    hub.cdn = True
    hub.drop[(REPO, BIG)] = [300_000, 100]
    with pytest.raises(DownloadError, match="pull again to resume"):
        pull_repo(REPO, "main", PATTERNS, token="hf_secret")
    hub.drop.clear()
    snapshot = pull_repo(REPO, "main", PATTERNS, token="hf_secret")
    assert _snapshot_files(snapshot)[BIG] == big_repo[BIG]
    big_sha = hashlib.sha256(big_repo[BIG]).hexdigest()
    ranges = [r for _, path, r in hub.cdn_gets() if path.endswith(big_sha)]
    assert ranges[0] is None and ranges[-1].startswith("bytes=")  # resumed from the CDN
    assert not hub.gets(BIG)  # the big file itself never came from the resolve endpoint
    tokens = {path.startswith("/cdn/"): auth for path, auth in hub.auth if auth or path.startswith("/cdn/")}
    assert tokens[False] == "Bearer hf_secret"  # the Hub's own endpoints get the token
    assert all(auth is None for path, auth in hub.auth if path.startswith("/cdn/"))  # the CDN never does
