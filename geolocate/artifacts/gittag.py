"""The annotated git tag of a release: created when the project is a git repository, never pushed.

A missing git, a directory outside any repository, an existing tag or a git that refuses (no
commit yet, no identity configured) are reported, not fatal: the release on disk is what counts.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GitTag:
    """Outcome of tagging: status is created, exists, skipped or failed."""

    status: str
    detail: str


def _git(args: list[str], repo_dir: Path | None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=repo_dir, capture_output=True, text=True, timeout=60)


def _in_repository(repo_dir: Path | None) -> bool:
    if shutil.which("git") is None:
        return False
    inside = _git(["rev-parse", "--is-inside-work-tree"], repo_dir)
    return inside.returncode == 0 and inside.stdout.strip() == "true"


def head_commit(repo_dir: Path | None = None) -> str | None:
    """The commit HEAD points at, or None outside a repository (or before the first commit)."""
    if not _in_repository(repo_dir):
        return None
    head = _git(["rev-parse", "--verify", "-q", "HEAD"], repo_dir)
    return head.stdout.strip() or None if head.returncode == 0 else None


def tag_release(tag: str, message: str, repo_dir: Path | None = None) -> GitTag:
    """`git tag -a <tag> -m <message>` at HEAD, unless git is absent or the tag exists."""
    if shutil.which("git") is None:
        return GitTag("skipped", "git is not installed")
    if not _in_repository(repo_dir):
        return GitTag("skipped", "not inside a git repository")
    if _git(["rev-parse", "-q", "--verify", f"refs/tags/{tag}"], repo_dir).returncode == 0:
        return GitTag("exists", f"git tag {tag} already exists; left as it is")
    made = _git(["tag", "-a", tag, "-m", message], repo_dir)
    if made.returncode != 0:
        reason = (made.stderr.strip().splitlines() or ["unknown error"])[-1]
        return GitTag("failed", f"git tag {tag} was not created: {reason}")
    return GitTag("created", f"annotated git tag {tag} created (not pushed: `git push origin {tag}` publishes it)")
