"""`dvc repro` in a fresh copy of the project regenerates the dataset from params.yaml."""

import os
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

pytestmark = pytest.mark.slow


def project_files():
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.split()
    return [f for f in out if (REPO / f).is_file()]


def test_dvc_repro_in_a_fresh_copy(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    clone = tmp_path / "clone"
    for name in project_files():
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, clone / name)
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["synthetic"]["splits"] = {"train": 3, "val": 1, "test": 1}
    params["synthetic"]["width"], params["synthetic"]["height"] = 256, 128
    (clone / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(clone)}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=clone, check=True, env=env)
    result = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=clone, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    images = sorted((clone / "data" / "synthetic" / "leftImg8bit").rglob("*.png"))
    assert len(images) == 5
    assert (clone / "dvc.lock").is_file()
    status = subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=clone, env=env, capture_output=True,
                            text=True, timeout=120)
    assert "up to date" in status.stdout, status.stdout
