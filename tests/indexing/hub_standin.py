"""A local, folder-backed stand-in for `huggingface_hub.HfApi`: the calls latesearch makes
(create_repo, upload_folder, repo_info, snapshot_download) over commits kept on disk, with
the Hub's semantics where latesearch relies on them: `delete_patterns`, revisions by
branch or commit hash, and downloads into `local_dir` that skip the files already there
(huggingface_hub's resume) and can be cut off after some files."""

from __future__ import annotations

import fnmatch
import hashlib
import shutil
from pathlib import Path
from types import SimpleNamespace


class Interrupted(ConnectionError):
    """The stand-in's network failure."""


class LocalHub:
    def __init__(self, root: Path):
        self.root = root
        self.fail_after: int | None = None  # files a download delivers before failing
        self.downloaded: list[tuple[str, str]] = []  # (repo, file) of every file copied

    # -- repositories
    def _repo(self, repo_id: str, repo_type: str | None) -> Path:
        return self.root / (repo_type or "model") / repo_id

    def create_repo(self, repo_id, *, repo_type=None, private=None, exist_ok=False):
        repo = self._repo(repo_id, repo_type)
        if repo.exists() and not exist_ok:
            raise FileExistsError(repo_id)
        (repo / "commits").mkdir(parents=True, exist_ok=True)
        return SimpleNamespace(repo_id=repo_id)

    def _commit(self, repo_id, repo_type, revision) -> Path:
        repo = self._repo(repo_id, repo_type)
        revision = revision or "main"
        ref = repo / "refs" / revision
        sha = ref.read_text() if ref.is_file() else revision
        folder = repo / "commits" / sha
        if not folder.is_dir():
            raise FileNotFoundError(f"{repo_id}: no revision {revision}")
        return folder

    def repo_info(self, repo_id, *, repo_type=None, revision=None):
        return SimpleNamespace(sha=self._commit(repo_id, repo_type, revision).name)

    def upload_folder(self, *, repo_id, folder_path, repo_type=None, revision=None,
                      commit_message=None, delete_patterns=None, **_):  # fmt: skip
        repo = self._repo(repo_id, repo_type)
        if not repo.is_dir():
            raise FileNotFoundError(f"{repo_id}: create the repository first")
        files = {p.relative_to(folder_path).as_posix(): p.read_bytes()
                 for p in Path(folder_path).rglob("*") if p.is_file()}  # fmt: skip
        try:
            parent = self._commit(repo_id, repo_type, revision)
            kept = {p.relative_to(parent).as_posix(): p.read_bytes()
                    for p in parent.rglob("*") if p.is_file()}  # fmt: skip
        except FileNotFoundError:
            kept = {}
        patterns = [delete_patterns] if isinstance(delete_patterns, str) else delete_patterns
        kept = {n: b for n, b in kept.items()
                if not any(fnmatch.fnmatch(n, p) for p in patterns or [])}  # fmt: skip
        kept.update(files)
        digest = hashlib.sha1()
        for name in sorted(kept):
            digest.update(name.encode() + hashlib.sha1(kept[name]).digest())
        sha = digest.hexdigest()
        for name, data in kept.items():
            (repo / "commits" / sha / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / "commits" / sha / name).write_bytes(data)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / (revision or "main")).write_text(sha)
        return SimpleNamespace(commit_url=f"https://hub.local/{repo_id}/commit/{sha}", oid=sha)

    def snapshot_download(self, repo_id, *, repo_type=None, revision=None, local_dir=None,
                          **_):  # fmt: skip
        commit = self._commit(repo_id, repo_type, revision)
        target = Path(local_dir) if local_dir else self.root / "cache" / repo_id / commit.name
        (target / ".cache" / "huggingface").mkdir(parents=True, exist_ok=True)
        for i, source in enumerate(sorted(p for p in commit.rglob("*") if p.is_file())):
            name = source.relative_to(commit).as_posix()
            dest = target / name
            if dest.is_file() and dest.stat().st_size == source.stat().st_size:
                continue  # already downloaded: resumed
            if self.fail_after is not None and i >= self.fail_after:
                self.fail_after = None
                raise Interrupted(f"connection lost while downloading {name}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
            self.downloaded.append((repo_id, name))
        return str(target)

    # -- the tests' hands on the remote side
    def files(self, repo_id, repo_type="dataset", revision=None) -> Path:
        """The folder of a commit (to read or tamper with)."""
        return self._commit(repo_id, repo_type, revision)
