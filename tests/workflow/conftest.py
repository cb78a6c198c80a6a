"""Shared by the workflow tests: a throw-away copy of the repository's working tree."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Never copied: outputs and caches of earlier runs. The rendered reports (results/table2.*) are
# tracked, but a copy that holds them would find its target up to date and plan nothing.
SKIP_TOP = {".git", ".snakemake", ".pytest_cache", ".benchmarks", "data", "logs", "results"}
SKIP_ANY = {"__pycache__"}


def worktree_files(root: Path = ROOT) -> list[str]:
    """Relative paths of the files a commit would hold: tracked or untracked but not ignored.

    Outside a git checkout (e.g. an unpacked source archive) every file is listed except the
    run outputs and caches above.
    """
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root, capture_output=True, check=True,
        ).stdout.decode()
        files = [f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]
    keep = []
    for f in files:
        parts = Path(f).parts
        if parts[0] in SKIP_TOP or SKIP_ANY & set(parts) or parts[0].endswith(".egg-info"):
            continue
        if (root / f).is_file():  # a tracked file deleted in the working tree is skipped
            keep.append(f)
    return sorted(set(keep))


def copy_worktree(dest: Path, root: Path = ROOT) -> Path:
    """Copy the working tree's files (see worktree_files) to dest; return dest."""
    dest.mkdir(parents=True)
    for f in worktree_files(root):
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / f, dest / f)
    return dest


@pytest.fixture()
def worktree_copy(tmp_path) -> Path:
    """A copy of the repository's working tree (tracked + untracked-not-ignored files)."""
    return copy_worktree(tmp_path / "repo")

