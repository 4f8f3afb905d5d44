"""``posevid prepare --engine ray``: same manifest as the plain engine, worker deaths recovered, resumable.

One local Ray instance with 2 CPUs serves the whole module (starting Ray takes seconds). The clips are
cuts of the shared Charades clips already in tests/fixtures (0RJKT, 3IPI3, 5D3X6, and a 140-frame 5D3X6 cut that
is estimated in two pose segments: the plain engine runs them in two processes, Ray in one, and the keypoints
must be the same bits, issue 20).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from posevid.cli import main
from posevid.data.manifest import Manifest
from posevid.data.prepare import StageSpec, prepare_dataset


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> tuple[Path, Path]:
    """Three real clips, one id without a file and one clip without a caption; ``(src, captions.csv)``."""
    root = tmp_path_factory.mktemp("ray_clips")
    src = root / "src"
    src.mkdir()
    shutil.copy(fixtures_dir / "train" / "charades" / "0RJKT.mp4", src / "0RJKT.mp4")
    shutil.copy(fixtures_dir / "pose" / "charades_3IPI3_cut.mp4", src / "3IPI3.mp4")
    shutil.copy(fixtures_dir / "eval" / "charades_5D3X6_cut.mp4", src / "5D3X6.mp4")
    shutil.copy(fixtures_dir / "pose" / "charades_5D3X6_140.mp4", src / "5D3X6L.mp4")  # 140 frames: two pose segments
    shutil.copy(fixtures_dir / "train" / "charades" / "0RJKT.mp4", src / "NOCAP.mp4")
    csv = root / "captions.csv"
    csv.write_text(
        "\ufeffpart_id,clip_id,caption\n100,0RJKT,a man sits down\n300,3IPI3,a man drinks\n700,5D3X6,two people on the stairs\n"
        "1,MISSING,no such file\n1,NOCAP,\n701,5D3X6L,two people on the stairs, longer\n",
        encoding="utf-8",
    )
    return src, csv


@pytest.fixture(scope="module")
def plain(clips: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    src, csv = clips
    out = tmp_path_factory.mktemp("plain")
    # two pose workers whatever the machine: the 140-frame clip's two segments run in two processes here and in one
    # process per clip under Ray, and must give the same keypoints (issue 20)
    res = prepare_dataset(src, out, kind="charades", captions=csv, poses=True, progress=False, pose_workers=2)
    assert (res.ok, res.skipped) == (4, 2)
    return out


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def _by_id(out: Path) -> dict[str, dict]:
    entries = Manifest(out).entries()
    assert len({e["id"] for e in entries}) == len(entries), "an item was written twice"
    return {e["id"]: e for e in entries}


def _assert_same_data(ray_out: Path, plain_out: Path) -> None:
    got, want = _by_id(ray_out), _by_id(plain_out)
    assert got == want  # same entries (order aside): fields, skip reasons, relative paths
    assert json.loads((ray_out / "meta.json").read_text()) == json.loads((plain_out / "meta.json").read_text())
    for iid, entry in want.items():
        if entry["status"] != "ok":
            continue
        a, b = np.load(ray_out / entry["keypoints"]), np.load(plain_out / entry["keypoints"])
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{iid}: {key}")
        assert (ray_out / entry["skeleton"]).stat().st_size > 0


@pytest.mark.slow
def test_ray_manifest_equals_plain(local_ray, clips: tuple[Path, Path], plain: Path, tmp_path: Path) -> None:
    src, csv = clips
    res = prepare_dataset(src, tmp_path, kind="charades", captions=csv, poses=True, progress=False, engine="ray")
    assert (res.ok, res.skipped, res.reused) == (4, 2, 0)
    _assert_same_data(tmp_path, plain)


@pytest.mark.slow
def test_killed_worker_is_recovered_and_finished_clips_are_kept(local_ray, clips: tuple[Path, Path], plain: Path, tmp_path: Path) -> None:
    src, csv = clips
    out, marks = tmp_path / "data", tmp_path / "marks"
    marks.mkdir()
    # an interrupted earlier run finished 0RJKT (its files and manifest line are there)
    first = _by_id(plain)["0RJKT"]
    for key in ("keypoints", "skeleton"):
        (out / first[key]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(plain / first[key], out / first[key])
    Manifest(out).append(first)

    def crash_once(item: dict) -> dict:
        """Extra stage: note the clip, then SIGKILL this worker process the first time it runs at all."""
        (marks / f"seen_{item['id']}").touch()
        if not (marks / "killed").exists():
            (marks / "killed").touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return item

    hook = StageSpec("crash-once", crash_once, model=True)
    res = prepare_dataset(src, out, kind="charades", captions=csv, poses=True, progress=False, engine="ray", extra_stages=[hook])
    assert (marks / "killed").exists() and (res.ok, res.skipped, res.reused) == (4, 2, 1)
    assert not (marks / "seen_0RJKT").exists()  # finished clip not redone
    assert {p.name for p in marks.glob("seen_*")} == {"seen_3IPI3", "seen_5D3X6", "seen_5D3X6L", "seen_MISSING", "seen_NOCAP"}
    _assert_same_data(out, plain)
    # a rerun finds everything done and starts no Ray work
    res2 = prepare_dataset(src, out, kind="charades", captions=csv, poses=True, progress=False, engine="ray", extra_stages=[hook])
    assert res2.reused == 6 and len(Manifest(out).entries()) == 6


def test_ray_missing_gives_install_hint(clips: tuple[Path, Path], tmp_path: Path, monkeypatch, capsys) -> None:
    src, csv = clips
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as without the extra
    monkeypatch.setitem(sys.modules, "ray.data", None)
    code = main(["prepare", str(src), "--captions", str(csv), "--out", str(tmp_path / "o"), "--engine", "ray", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert err.startswith("posevid prepare: error:") and 'pip install "posevid[ray]"' in err
    assert not (tmp_path / "o").exists()  # nothing written


def test_ray_options_need_engine_ray(clips: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    src, csv = clips
    code = main(["prepare", str(src), "--captions", str(csv), "--out", str(tmp_path / "o"), "--ray-address", "auto"])
    assert code == 2 and "--ray-address need(s) --engine ray" in capsys.readouterr().err
    code = main(["prepare", str(src), "--out", str(tmp_path / "o"), "--kind", "ubc", "--engine", "ray"])
    assert code == 2 and "video clips only" in capsys.readouterr().err
    code = main(["prepare", str(src), "--captions", str(csv), "--out", str(tmp_path / "o"), "--pose-workers", "0"])
    assert code == 2 and "--pose-workers must be >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_list_of_paths_source(clips: tuple[Path, Path], tmp_path: Path) -> None:
    """SRC may be a text file of clip paths (relative to the file); same entries as the folder."""
    src, csv = clips
    listing = tmp_path / "clips.txt"
    listing.write_text("# clips\n" + "\n".join(str(p) for p in sorted(src.glob("*.mp4"))) + "\n\n")
    a = prepare_dataset(src, tmp_path / "a", kind="charades", captions=csv, poses=False, progress=False)
    b = prepare_dataset(listing, tmp_path / "b", kind="charades", captions=csv, poses=False, progress=False)
    assert (a.ok, a.skipped) == (b.ok, b.skipped) == (4, 2)
    ea, eb = _by_id(tmp_path / "a"), _by_id(tmp_path / "b")
    assert {k: v for k, v in ea.items() if k != "MISSING"} == {k: v for k, v in eb.items() if k != "MISSING"}
    assert "no path in" in eb["MISSING"]["reason"]


def test_gpu_stage_without_gpus_is_one_line_error(local_ray, clips: tuple[Path, Path], tmp_path: Path) -> None:
    from posevid.data.prepare_ray import RaySettings
    from posevid.errors import InputError

    src, csv = clips
    with pytest.raises(InputError, match=r"--ray-model-gpus 1 but the Ray cluster has 0 GPU"):
        prepare_dataset(
            src, tmp_path, kind="charades", captions=csv, poses=True, progress=False, engine="ray", ray=RaySettings(model_gpus=1)
        )
    assert Manifest(tmp_path).entries() == []


def test_engines_do_not_import_each_other() -> None:
    """Issue 20: ``prepare`` picks the engine (it imports ``prepare_ray``); the Ray engine needs only the manifest's
    public API (``Manifest.append_item`` / ``Manifest.result``), never ``prepare`` itself or a private name."""
    import ast

    import posevid.data.prepare_ray as engine

    imported = []
    for node in ast.walk(ast.parse(Path(engine.__file__).read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("posevid"):
            imported += [(node.module, alias.name) for alias in node.names]
    assert imported and not [m for m, _ in imported if m == "posevid.data.prepare"], imported
    assert not [name for _, name in imported if name.startswith("_")], imported
