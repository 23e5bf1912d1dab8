"""The store: installed models, sizes, status after every fault, delete."""

from __future__ import annotations

import os
import threading
import types

import pytest
from models.model_helpers import TINY_PATTERNS, hub_entry, write_catalog

from lcm_desktop.core.errors import DownloadError, ModelNotFoundError
from lcm_desktop.models.catalog import load_catalog
from lcm_desktop.models.download import DownloadCancelled, hub_cache_dir, pull
from lcm_desktop.models.store import delete_model, disk_usage, installed_models, model_rows

REPO = "tiny/lcm"
UNET = "unet/diffusion_pytorch_model.safetensors"


@pytest.fixture
def catalog(tmp_path, hub, tiny_repo_files):
    hub.add(REPO, tiny_repo_files)
    entries = [
        hub_entry("tiny-lcm", REPO, TINY_PATTERNS),
        hub_entry("tiny-lora", "tiny/lora", ["*.safetensors"], kind="lcm-lora", layout="lora", requires="tiny-base"),
        hub_entry("tiny-base", "tiny/base", TINY_PATTERNS, kind="base"),
    ]
    return load_catalog(write_catalog(tmp_path / "catalog.json", entries))


def _cache_bytes() -> int:
    """Bytes under the HF cache, walked by hand (the check on huggingface_hub's own accounting)."""
    total = 0
    for dirpath, _dirs, files in os.walk(hub_cache_dir()):
        total += sum(os.lstat(os.path.join(dirpath, f)).st_size for f in files
                     if not os.path.islink(os.path.join(dirpath, f)))
    return total


def _expected(files: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in files.items() if not k.endswith((".bin", ".md"))}


def test_a_pulled_model_is_listed_complete_with_its_size(catalog, tiny_repo_files):
    snapshot = pull(catalog.get("tiny-lcm"))
    [model] = [m for m in installed_models(catalog) if m.source == "hub"]
    assert (model.name, model.kind, model.status, model.path) == ("tiny-lcm", "lcm", "complete", snapshot)
    payload = sum(len(v) for v in _expected(tiny_repo_files).values())
    assert model.size_bytes == payload
    assert _cache_bytes() - payload < 20_000  # the rest: refs, receipt, lock files
    row = next(r for r in model_rows(catalog) if r.name == "tiny-lcm")
    assert (row.installed, row.size_bytes, row.path, row.approx) == ("yes", payload, snapshot, False)
    assert next(r for r in model_rows(catalog) if r.name == "tiny-base").installed == "no"
    assert [m.name for m in disk_usage(catalog)] == ["tiny-lcm"]


def test_delete_frees_the_bytes_and_unlists(catalog):
    pull(catalog.get("tiny-lcm"))
    before = _cache_bytes()
    size = next(m.size_bytes for m in installed_models(catalog) if m.name == "tiny-lcm")
    freed = delete_model("tiny-lcm", catalog)
    assert freed == size
    assert before - _cache_bytes() >= size
    assert not [m for m in installed_models(catalog) if m.source == "hub"]
    with pytest.raises(ModelNotFoundError, match="tiny-lcm is not installed"):
        delete_model("tiny-lcm", catalog)
    with pytest.raises(ModelNotFoundError, match="built-in"):
        delete_model("lcm-demo", load_catalog())
    with pytest.raises(ModelNotFoundError, match="No installed model named 'ghost'"):
        delete_model("ghost", catalog)


def test_an_interrupted_pull_is_listed_incomplete_then_deleted_whole(catalog, hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 8 * 1024)
    size = len(hub.repos[REPO].files[UNET])
    pause = hub.pause(REPO, UNET, after=size // 2)
    cancel, outcome = threading.Event(), {}

    def run():
        try:
            pull(catalog.get("tiny-lcm"), cancel=cancel)
        except DownloadCancelled as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    assert pause.reached.wait(30)
    cancel.set()
    pause.release.set()
    worker.join(30)
    assert "error" in outcome
    [model] = [m for m in installed_models(catalog) if m.source == "hub"]
    assert model.status == "incomplete" and "pull tiny-lcm" in model.detail
    assert next(r for r in model_rows(catalog) if r.name == "tiny-lcm").installed == "incomplete"
    assert delete_model("tiny-lcm", catalog) == model.size_bytes > 0
    assert _cache_bytes() < 1000  # only lock files remain


def test_store_stays_consistent_after_each_fault(catalog, hub, monkeypatch):
    # not enough space: nothing listed at all
    with pytest.raises(DownloadError, match="Not enough disk space"):
        pull(catalog.get("tiny-lcm"), disk_usage=lambda p: types.SimpleNamespace(free=1))
    assert not [m for m in installed_models(catalog) if m.source == "hub"]
    # a connection that keeps dropping: one line, the partial kept, listed incomplete
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 8 * 1024)
    monkeypatch.setattr("huggingface_hub.file_download.time", types.SimpleNamespace(sleep=lambda s: None))
    hub.drop[(REPO, UNET)] = [20_000, 100]
    with pytest.raises(DownloadError, match=r"pull again to resume \(.* of the current file kept\)"):
        pull(catalog.get("tiny-lcm"))
    [model] = [m for m in installed_models(catalog) if m.source == "hub"]
    assert model.status == "incomplete" and "of a file kept" in model.detail
    hub.drop.clear()
    # a corrupted file: listed incomplete, nothing damaged on disk
    hub.corrupt[(REPO, UNET)] = len(hub.repos[REPO].files[UNET]) - 100  # past the partial kept above
    with pytest.raises(DownloadError, match="failed verification"):
        pull(catalog.get("tiny-lcm"))
    [model] = [m for m in installed_models(catalog) if m.source == "hub"]
    assert model.status == "incomplete"
    # unknown repo: nothing listed for it
    with pytest.raises(DownloadError, match="not found"):
        pull(catalog.get("tiny-base"))
    assert [m.name for m in installed_models(catalog) if m.source == "hub"] == ["tiny-lcm"]
    # fixed server: complete; then a truncated blob is reported corrupt, a deleted one incomplete
    del hub.corrupt[(REPO, UNET)]
    snapshot = pull(catalog.get("tiny-lcm"))
    blob = (snapshot / UNET).resolve()
    os.truncate(blob, blob.stat().st_size - 10)
    [model] = [m for m in installed_models(catalog) if m.source == "hub"]
    assert model.status == "corrupt" and "models rm tiny-lcm" in model.detail
    pull(catalog.get("tiny-lcm"))  # the damaged blob is found, discarded and fetched again
    assert [m.status for m in installed_models(catalog) if m.source == "hub"] == ["complete"]
    (snapshot / "vae" / "config.json").unlink()
    assert [m.status for m in installed_models(catalog) if m.source == "hub"] == ["incomplete"]


def test_a_lora_is_usable_only_with_its_base(catalog, hub, tiny_repo_files):
    lora = {"pytorch_lora_weights.safetensors": tiny_repo_files["vae/diffusion_pytorch_model.safetensors"]}
    hub.add("tiny/lora", lora)
    hub.add("tiny/base", tiny_repo_files)
    pull(catalog.get("tiny-lora"))
    row = next(r for r in model_rows(catalog) if r.name == "tiny-lora")
    assert row.installed == "needs tiny-base"
    pull(catalog.get("tiny-base"))
    rows = {r.name: r for r in model_rows(catalog)}
    assert rows["tiny-lora"].installed == "yes" and rows["tiny-lora"].display == "tiny-lora + tiny-base"
    assert rows["tiny-lora"].size_bytes == len(lora["pytorch_lora_weights.safetensors"]) + rows["tiny-base"].size_bytes


def test_listing_works_offline_and_without_a_cache(catalog, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert [r.installed for r in model_rows(catalog)] == ["no", "no", "no"]


def test_other_repos_in_the_shared_cache_count_in_du_but_are_not_models(catalog, hub):
    from lcm_desktop.models.download import pull_repo

    hub.add("someone/else", {"weights.safetensors": b"\x01" * 5000, "config.json": b"{}"})
    pull_repo("someone/else", "main", ["*"])
    pull(catalog.get("tiny-lcm"))
    usage = {m.name: m for m in disk_usage(catalog)}
    assert (usage["someone/else"].source, usage["someone/else"].kind, usage["someone/else"].size_bytes) == (
        "cache", "other", 5002)
    assert list(usage)[0] == "tiny-lcm"  # largest first
    assert "someone/else" not in {r.name for r in model_rows(catalog)}
    with pytest.raises(ModelNotFoundError):
        delete_model("someone/else", catalog)  # not ours to delete


def test_a_cache_folder_huggingface_hub_cannot_read_is_listed_corrupt_and_removable(catalog):
    from lcm_desktop.models.download import repo_storage

    storage = repo_storage(REPO)
    (storage / "blobs").mkdir(parents=True)
    (storage / "blobs" / "abc").write_bytes(b"x" * 777)  # no snapshots/: scan_cache_dir reports a warning
    [model] = [m for m in installed_models(catalog) if m.source == "hub"]
    assert (model.name, model.status, model.size_bytes) == ("tiny-lcm", "corrupt", 777)
    assert "models rm tiny-lcm" in model.detail
    assert delete_model("tiny-lcm", catalog) == 777
    assert not storage.exists()
