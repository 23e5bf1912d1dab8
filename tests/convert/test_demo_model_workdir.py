"""The demo model's work folder: repository-anchored paths, the training summary, resumable checkpoints."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from convert.demo_model import workdir


def test_paths_are_anchored_on_the_repository_not_the_working_directory():
    repo = Path(__file__).resolve().parents[2]
    assert workdir.REPO == repo and (repo / "pyproject.toml").is_file()
    assert workdir.WORK == repo / "work-demo"
    assert workdir.SHIPPED == repo / "resources" / "models" / "lcm-demo"
    assert workdir.DOC == repo / "docs" / "DEMO_MODEL.md"


def test_the_summary_keeps_every_stage_and_falls_back_to_the_shipped_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(workdir, "SUMMARY", tmp_path / "work" / "summary.json")
    monkeypatch.setattr(workdir, "SHIPPED", tmp_path / "shipped")
    assert workdir.load_summary() == {}
    (tmp_path / "shipped").mkdir()
    (tmp_path / "shipped" / workdir.SHIPPED_SUMMARY_NAME).write_text('{"vae": {"steps": 1}}')
    assert workdir.load_summary() == {"vae": {"steps": 1}}
    workdir.record_summary("vae", steps=600)
    workdir.record_summary("teacher", steps=7000, pure_noise="t ≥ 900")
    assert workdir.load_summary() == {"vae": {"steps": 600}, "teacher": {"steps": 7000, "pure_noise": "t ≥ 900"}}
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["summary.json"]


def test_resume_restores_every_module_the_step_and_the_random_streams(tmp_path):
    torch = pytest.importorskip("torch")
    ckpt = tmp_path / "stage" / "ckpt.pt"

    def modules():
        model, ema = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
        return {"model": model, "ema": ema, "opt": torch.optim.AdamW(model.parameters(), lr=0.1)}

    fresh = random.Random(5)
    assert workdir.resume(ckpt, modules(), fresh, "stage") == (0, fresh)  # no checkpoint: start afresh

    workdir.setup_torch(7)
    saved = modules()
    saved["model"](torch.randn(4, 3)).sum().backward()
    saved["opt"].step()
    data_rng = random.Random(1)
    data_rng.random()
    workdir.save_resumable(ckpt, saved, 42, data_rng)
    expected = (torch.rand(3), random.random(), data_rng.random())

    torch.manual_seed(0)
    random.seed(0)
    loaded = modules()
    step, rng = workdir.resume(ckpt, loaded, random.Random(99), "stage")
    assert step == 42
    assert (torch.rand(3).tolist(), random.random(), rng.random()) == (expected[0].tolist(), *expected[1:])
    for name in ("model", "ema"):
        for a, b in zip(saved[name].state_dict().values(), loaded[name].state_dict().values()):
            assert torch.equal(a, b)
    assert loaded["opt"].state_dict()["state"][0]["step"] == 1
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["ckpt.pt"]  # written atomically, no temp file left
