"""scripts/setup_paddleocr.sh on an offline machine: from a checkout folder and from a tarball."""
from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

SCRIPT = "scripts/setup_paddleocr.sh"
COMMIT = "f31980266a73f80b09c693f2d626c004252a0a7a"


def setup(route, *args, commit=None):
    env = route.env()
    env.pop("PADDLEOCR_SRC", None)
    env.pop("PADDLEOCR_COMMIT", None)
    if commit:
        env["PADDLEOCR_COMMIT"] = commit
    return subprocess.run(["bash", SCRIPT, "--no-install", *map(str, args)], env=env, cwd=str(route.root),
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def source(given_checkout, tmp_path) -> Path:
    """A plain copy of the given checkout (no git, no stamp), like an unpacked source release."""
    src = tmp_path / "src" / "PaddleOCR-release-2.5"
    shutil.copytree(given_checkout, src, ignore=shutil.ignore_patterns(".git", "__pycache__", "output",
                                                                       ".ppocr_patches.json"))
    return src


def test_setup_from_a_folder_is_idempotent_and_revertible(route, source, tmp_path):
    dest = tmp_path / "third_party" / "PaddleOCR"
    first = setup(route, "--dest", dest, source, commit=COMMIT)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (dest.parent / "PaddleOCR.commit").read_text().strip() == COMMIT
    assert (dest / ".ppocr_patches.json").is_file() and (dest / "tools" / "train.py").is_file()

    again = setup(route, "--dest", dest, source, commit=COMMIT)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already holds commit" in again.stdout

    reverted = setup(route, "--dest", dest, "--revert")
    assert reverted.returncode == 0 and not (dest / ".ppocr_patches.json").exists()


def test_setup_from_a_tarball_records_unknown_commit_and_refuses_to_overwrite(route, source, tmp_path):
    archive = tmp_path / "PaddleOCR-release-2.5.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname=source.name)
    dest = tmp_path / "tp" / "PaddleOCR"
    proc = setup(route, "--dest", dest, archive)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (dest.parent / "PaddleOCR.commit").read_text().strip() == "unknown (tarball)"
    assert (dest / ".ppocr_patches.json").is_file()

    # a different source into the same place needs --force
    (source / "ppocr" / "extra_file.py").write_text("# differs\n")
    clash = setup(route, "--dest", dest, source, commit=COMMIT)
    assert clash.returncode == 1 and str(dest) in clash.stderr and "--force" in clash.stderr
    forced = setup(route, "--dest", dest, "--force", source, commit=COMMIT)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert (dest / "ppocr" / "extra_file.py").is_file()
    assert (dest.parent / "PaddleOCR.commit").read_text().strip() == COMMIT


def test_setup_names_a_source_that_is_not_paddleocr(route, tmp_path):
    bogus = tmp_path / "not_paddleocr"
    bogus.mkdir()
    proc = setup(route, "--dest", tmp_path / "x" / "PaddleOCR", bogus)
    assert proc.returncode == 1 and str(bogus) in proc.stderr
