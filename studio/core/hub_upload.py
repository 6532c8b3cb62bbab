"""Push an exported folder (adapter, merged model, GGUF) to a Hugging Face Hub repo: private by
default, resumable, with byte progress and a cancel that stops mid-file.

``push`` works through huggingface_hub's HfApi, in this order:

1. ``whoami``: the token works, and whose it is (a read-only token is refused before anything is
   sent); a repo id without a namespace goes to the account's own;
2. ``create_repo(private=..., exist_ok=True)``: an existing repo keeps its visibility (a warning
   says so when it is public and private was asked for);
3. the repo's file tree: a file already there with the same size and hash (sha256 for LFS files,
   the git blob sha1 for the others) is kept and not sent again. That, and the LFS batch API,
   which answers "already stored" for objects a cut-short push finished uploading, is what makes
   a second push resume instead of starting over;
4. each file to send is pre-uploaded, largest first (``preupload_lfs_files``: LFS objects go to
   storage now; small text files travel inside the commit), through a reader that reports the
   bytes read and raises ``PushCancelled`` as soon as ``cancel()`` says so;
5. one commit with every file that changed, the model card (``card``: README.md and curves.png
   from studio.core.model_card, replacing the folder's own) among them, so the repo page shows
   a card only together with the weights it describes.

Xet or LFS: huggingface_hub 2.x decides on the client alone, and the server is not asked: Xet
whenever ``hf_xet`` is importable and ``HF_HUB_DISABLE_XET`` is not set, except for file objects,
which always take the LFS/regular HTTP path (``_commit_api._upload_files``). The studio always
hands it file objects: one upload path, the one tested against the local fake hub (which cannot
speak Xet's storage protocol and answers its token endpoint with 501), byte progress from our own
reader, and a prompt cancel. The cost: no Xet chunk deduplication, so a large file cut off
half-way is sent again from its start on the next push (files that finished are not).
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional

from studio.core.hub import endpoint
from studio.core.hub_auth import TOKENS_URL, Account, HubError, check_online, explain, saved_token, whoami

KINDS = ("adapter", "merged", "gguf")
CHECKING = "checking what the Hub already has"
PROGRESS_EVERY_S = 0.25  # progress callbacks while a file streams (file boundaries always report)
CANCELLED = "Upload cancelled. Nothing is lost: push again to resume; files already on the Hub are not sent again."

ProgressFn = Callable[[int, int, str], None]  # (bytes done, bytes in all, what is happening)


class PushCancelled(Exception):
    """``cancel()`` said stop; raised from inside the upload."""

    def __init__(self, message: str = CANCELLED):
        super().__init__(message)
        self.message = message


@dataclass
class PushResult:
    repo_id: str
    url: str
    private: bool
    sent: list[str] = field(default_factory=list)  # files uploaded by this push
    kept: list[str] = field(default_factory=list)  # files the repo already had, byte for byte
    sent_bytes: int = 0
    commit: Optional[str] = None  # None when nothing had changed


@dataclass(frozen=True)
class UploadFile:
    path: str  # in the repo
    source: Path | bytes
    size: int


def push(folder: Path | str, repo_id: str, *, token: Optional[str] = None, private: bool = True,
         kind: Optional[str] = None, card: Optional[Mapping[str, bytes]] = None,
         progress: Optional[ProgressFn] = None, cancel: Optional[Callable[[], bool]] = None,
         warn: Optional[Callable[[str], None]] = None, commit_message: Optional[str] = None,
         account: Optional[Account] = None) -> PushResult:
    """Upload ``folder`` (plus ``card``'s files) to ``repo_id``; raises HubError or PushCancelled.

    ``account``: the token's, when the caller asked ``whoami`` already (the Hub limits that call).
    """
    folder = Path(folder).expanduser()
    kind = kind or export_kind(folder)
    problem = folder_problem(folder, kind)
    if problem:
        raise HubError(problem, "config")
    files = local_files(folder, card or {})
    check_online()
    account = account or whoami(token)
    token = token or saved_token()
    repo_id = full_repo_id(repo_id, account)
    if account.can_write is False:
        raise HubError(f"You cannot write to {repo_id} with a read-only token ({account.describe()}). Create a "
                       f"token with write access at {TOKENS_URL}, then `studio hub login`.", "auth")
    report = _Reporter(progress, sum(f.size for f in files))
    cancelled = cancel or (lambda: False)
    try:
        return _push(folder, files, repo_id, token, private, kind, account, report, cancelled, warn or _ignore,
                     commit_message or f"Upload the {kind} from the studio")
    except PushCancelled:
        raise
    except Exception as e:  # huggingface_hub and httpx raise many types; explain() keeps the unknown ones
        cancel_error = next((c for c in _causes(e) if isinstance(c, PushCancelled)), None)
        if cancel_error is not None:
            raise cancel_error from None
        raise explain(e, repo_id, account) from e


def _push(folder: Path, files: list[UploadFile], repo_id: str, token: Optional[str], private: bool, kind: str,
          account: Account, report: "_Reporter", cancel: Callable[[], bool], warn: Callable[[str], None],
          message: str) -> PushResult:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint(), token=token)
    report.update(0, f"creating {repo_id}", force=True)
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.model_info(repo_id)
    is_private = bool(getattr(info, "private", private))
    if private and not is_private:
        warn(f"{repo_id} already exists and is public; the studio does not change a repo's visibility "
             "(its settings page on the Hub does).")
    remote = {f.path: f for f in api.list_repo_tree(repo_id, recursive=True) if hasattr(f, "blob_id")}
    result = PushResult(repo_id, f"{endpoint()}/{repo_id}", is_private)
    to_send: list[UploadFile] = []
    for f in files:
        if cancel():
            raise PushCancelled()
        if f.path in remote and _same(f, remote[f.path], report):
            result.kept.append(f.path)
            report.finished(f.size, CHECKING)
        else:
            to_send.append(f)
    extra = sorted(set(remote) - {f.path for f in files} - {".gitattributes"})
    if extra:
        warn(f"{repo_id} also holds {len(extra)} file(s) this export does not have ({', '.join(extra[:5])}"
             f"{', ...' if len(extra) > 5 else ''}); they stay as they are.")
    if not to_send:
        report.update(0, "everything is already on the Hub", force=True)
        return result
    operations: list[Any] = []
    logging.getLogger("huggingface_hub._commit_api").addFilter(_xet_fallback_note)
    try:
        with _quiet_library():
            for f in sorted(to_send, key=lambda f: (f.path == "README.md", -f.size)):
                if cancel():
                    raise PushCancelled()
                operation, streamed = _upload(api, repo_id, f, report, cancel)
                operations.append(operation)
                result.sent_bytes += streamed
            if cancel():
                raise PushCancelled()
            report.update(0, f"committing {len(operations)} file(s)", force=True)
            commit = api.create_commit(repo_id, operations, commit_message=message)
    finally:
        for operation in operations:
            operation.path_or_fileobj.close()
    result.sent = [f.path for f in to_send]
    result.commit = getattr(commit, "oid", None)
    report.update(0, f"pushed to {repo_id}", force=True)
    return result


def _upload(api: Any, repo_id: str, f: UploadFile, report: "_Reporter",
            cancel: Callable[[], bool]) -> tuple[Any, int]:
    """A commit operation for ``f`` whose content (when LFS) is in the Hub's storage now, and the bytes
    that took: 0 for an object the storage already had, the file's size for a small file the commit carries."""
    from huggingface_hub import CommitOperationAdd

    reader: _Counting = _BytesReader(f.source) if isinstance(f.source, bytes) else _FileReader(f.source)
    operation = CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=reader)  # hashes it (not counted)
    label = f"uploading {f.path}"
    streamed = [0]

    def on_read(position: int) -> None:
        if cancel():
            raise PushCancelled()
        streamed[0] = max(streamed[0], position)
        report.update(position, label)

    reader.on_read = on_read
    report.update(0, label, force=True)
    try:
        api.preupload_lfs_files(repo_id, additions=[operation], free_memory=False)
    except BaseException:
        reader.close()
        raise
    reader.on_read = None
    report.finished(f.size, label)
    in_commit = getattr(operation, "_upload_mode", "regular") == "regular"
    return operation, f.size if in_commit else streamed[0]


def export_kind(folder: Path) -> str:
    """What an exported folder holds: gguf (a .gguf file), adapter (adapter_config.json), merged (config.json)."""
    folder = Path(folder)
    if any(folder.glob("*.gguf")):
        return "gguf"
    if (folder / "adapter_config.json").exists() or not (folder / "config.json").exists():
        return "adapter"
    return "merged"


def folder_problem(folder: Path, kind: str) -> Optional[str]:
    """Why ``folder`` cannot be pushed as ``kind``, or None."""
    if kind not in KINDS:
        return f"Unknown kind {kind!r}: use adapter, merged or gguf."
    if not folder.is_dir() or not any(p.is_file() for p in folder.iterdir()):
        return f"{folder} does not exist or is empty: export the run first (studio export RUN --kind {kind})."
    if kind == "gguf" and not any(folder.glob("*.gguf")):
        return f"{folder} holds no .gguf file: export a GGUF first (studio export RUN --kind gguf)."
    if kind == "merged" and not (folder / "config.json").exists():
        return f"{folder} is not a merged model (no config.json): export one with studio export RUN --kind merged."
    if kind == "adapter" and not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        return f"{folder} holds no trained weights (.safetensors): export the adapter with studio export RUN."
    return None


def full_repo_id(repo_id: str, account: Account) -> str:
    """``name`` means the account's own ``name``; the id is checked the way the Hub checks it."""
    from huggingface_hub.utils import validate_repo_id

    repo_id = repo_id.strip().strip("/")
    if repo_id and "/" not in repo_id:
        repo_id = f"{account.name}/{repo_id}"
    try:
        validate_repo_id(repo_id)
    except Exception as e:
        raise explain(e, repo_id) from e
    if repo_id.count("/") != 1:
        raise HubError(f"'{repo_id}' is not a valid repo id: use namespace/name (e.g. {account.name}/my-model).",
                       "config")
    return repo_id


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def local_files(folder: Path, card: Mapping[str, bytes]) -> list[UploadFile]:
    """The folder's files (hidden ones and hidden folders such as .cache left out), the card's replacing its own."""
    files = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            files[rel.as_posix()] = UploadFile(rel.as_posix(), p, p.stat().st_size)
    for name, data in card.items():
        files[name] = UploadFile(name, data, len(data))
    return list(files.values())


def _same(f: UploadFile, remote: Any, report: "_Reporter") -> bool:
    """Does the repo's file hold exactly ``f``'s bytes? Hashes only files of the same size."""
    if remote.size != f.size:
        return False
    report.update(0, CHECKING)
    lfs = getattr(remote, "lfs", None)
    if lfs is not None:
        return _digest(f, hashlib.sha256()) == getattr(lfs, "sha256", None)
    if isinstance(f.source, bytes):
        return git_blob_sha1(f.source) == remote.blob_id
    return _digest(f, hashlib.sha1(b"blob %d\0" % f.size)) == remote.blob_id


def _digest(f: UploadFile, h: Any) -> str:
    if isinstance(f.source, bytes):
        h.update(f.source)
    else:
        with open(f.source, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _causes(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    e: Optional[BaseException] = error
    while e is not None and e not in seen:
        seen.append(e)
        e = e.__cause__ or e.__context__
    return seen


@contextmanager
def _quiet_library() -> Iterator[None]:
    """huggingface_hub's own progress bars off while pushing (the studio reports progress itself), and
    httpx's deprecation note about how huggingface_hub hands it a file to PUT (not ours to change)."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Use 'content=<...>'", category=DeprecationWarning)
            yield
    finally:
        if not was_disabled:
            enable_progress_bars()


def _xet_fallback_note(record: logging.LogRecord) -> bool:
    """Drop huggingface_hub's note that file objects skip Xet: the studio chose that (see the docstring)."""
    return "not supported by Xet Storage" not in record.getMessage()


def _ignore(_message: str) -> None:
    pass


class _Reporter:
    """Bytes done across the whole push, passed to ``progress`` at most every PROGRESS_EVERY_S."""

    def __init__(self, progress: Optional[ProgressFn], total: int):
        self.progress, self.total = progress, total
        self.done = 0  # bytes of finished files
        self._last = 0.0

    def update(self, in_file: int, label: str, force: bool = False) -> None:
        now = time.monotonic()
        if self.progress is not None and (force or now - self._last >= PROGRESS_EVERY_S):
            self._last = now
            self.progress(min(self.done + in_file, self.total), self.total, label)

    def finished(self, size: int, label: str) -> None:
        self.done += size
        self.update(0, label, force=True)


class _Counting:
    """A binary stream that tells ``on_read`` its position after every read (None: silent)."""

    on_read: Optional[Callable[[int], None]] = None

    def read(self, size: Optional[int] = -1) -> bytes:
        data = super().read(size)  # type: ignore[misc]
        if self.on_read is not None:
            self.on_read(self.tell())  # type: ignore[attr-defined]
        return data


class _FileReader(_Counting, io.BufferedReader):
    def __init__(self, path: Path):
        super().__init__(io.FileIO(str(path), "rb"))


class _BytesReader(_Counting, io.BytesIO):
    pass
