"""A local stand-in for the Hugging Face Hub's upload API, served on 127.0.0.1 for upload tests.

It answers the requests huggingface_hub (2.x) makes to push a folder: ``whoami-v2``, repo
creation, README metadata validation, ``preupload`` (regular or LFS per file, and the remote oid
so unchanged files are dropped), the LFS batch API (no upload action for an object it already
holds: that is what makes a second push skip finished files), the LFS object PUT and verify, the
ndjson ``commit``, model info, the file tree and ``resolve`` downloads. It never speaks Xet:
``xet-write-token`` answers 501, so a client that tried Xet would fail loudly.

It records what arrived (``repos``, ``received`` bytes per LFS object, ``requests``) and can
misbehave on purpose: unknown tokens get 401, a token with the ``read`` role or a namespace that
is not the account's gets 403, ``cut_puts_from`` cuts the connection of LFS uploads (the first
PUT is number 0) after ``cut_after_bytes`` bytes, every retry included, ``down`` closes every
connection at once (the network is gone), and ``bytes_per_s`` makes the uploads from
``slow_puts_from`` on slow (for cancelling or killing one mid-way). Start it with ``with FakeHub() as hub:``
and point ``HF_ENDPOINT`` at ``hub.url``; ``python tests/fake_hub_server.py`` serves one until
Ctrl-C (token ``hf_fake_write`` for the account ``alice``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import parse_qs, unquote, urlparse

WRITE_TOKEN = "hf_fake_write"
READ_TOKEN = "hf_fake_read"
LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".ckpt", ".h5", ".onnx", ".msgpack", ".zip", ".png")
REGULAR_LIMIT = 10 * 1024 * 1024  # the Hub stores larger files in LFS whatever their content


@dataclass
class Account:
    name: str
    role: str = "write"  # "write" or "read"
    orgs: tuple[str, ...] = ()


@dataclass
class Repo:
    repo_id: str
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    lfs_paths: set[str] = field(default_factory=set)
    commits: list[dict[str, Any]] = field(default_factory=list)
    objects: dict[str, bytes] = field(default_factory=dict)  # LFS objects uploaded (committed or not)

    @property
    def sha(self) -> str:
        return hashlib.sha1(str(len(self.commits)).encode() + self.repo_id.encode()).hexdigest()


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _pointer(oid: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


class FakeHub:
    """The server and everything it recorded; thread-safe enough for one client at a time."""

    def __init__(self, accounts: Optional[dict[str, Account]] = None):
        self.accounts = accounts if accounts is not None else {
            WRITE_TOKEN: Account("alice", "write", ("alice-org",)), READ_TOKEN: Account("alice", "read")}
        self.repos: dict[str, Repo] = {}
        self.received: Counter[str] = Counter()  # LFS oid -> body bytes read from PUTs (whole or cut)
        self.requests: list[tuple[str, str]] = []
        self.cut_puts_from: Optional[int] = None  # LFS PUTs from this one on (0 = the first) are cut ...
        self.cut_after_bytes = 0  # ... after this many bytes of their body
        self.slow_puts_from = 0  # LFS PUTs from this one on are read at ...
        self.bytes_per_s: Optional[float] = None  # ... this speed (None: as fast as they come)
        self.down = False  # every connection is closed without an answer
        self._puts = 0
        self.lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "FakeHub":
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeHub":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake hub first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ---- what tests look at ------------------------------------------------------------------
    def repo(self, repo_id: str) -> Repo:
        return self.repos[repo_id]

    def puts(self) -> list[str]:
        """The LFS object PUTs received (request paths), in order."""
        return [path for method, path in self.requests if method == "PUT"]


class _HubError(Exception):
    def __init__(self, status: int, message: str, code: str = "", **extra: Any):
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # keep test output clean

    # ---- plumbing ----------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def _serve(self, method: str) -> None:
        url = urlparse(self.path)
        self._body_read = False  # one handler serves every request of a kept-alive connection
        with self.fake.lock:
            self.fake.requests.append((method, url.path))
        if self.fake.down:
            self._cut()
            return
        try:
            status, body, headers = self._route(method, unquote(url.path), parse_qs(url.query))
        except _HubError as e:
            self._drain()
            headers = {"X-Error-Message": e.message}
            if e.code:
                headers["X-Error-Code"] = e.code
            status, body = e.status, {"error": e.message, **e.extra}
        except ConnectionAbortedError:
            return  # the connection was cut on purpose
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if isinstance(body, bytes) else "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(payload)

    def _cut(self) -> None:
        """Close the connection without an answer, as a dropped network would."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _drain(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length and not getattr(self, "_body_read", False):
            self.rfile.read(length)

    def _body(self) -> bytes:
        self._body_read = True
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _json(self) -> Any:
        raw = self._body()
        return json.loads(raw) if raw else {}

    def _account(self, required: bool = True) -> Optional[Account]:
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        account = self.fake.accounts.get(token)
        if account is None and (required or token):
            raise _HubError(401, "Invalid credentials in Authorization header")
        return account

    def _writable(self, repo_id: str) -> tuple[Account, Repo]:
        account = self._account()
        repo = self._readable(repo_id, account)
        namespace = repo_id.split("/")[0]
        if account.role != "write" or namespace not in (account.name, *account.orgs):
            raise _HubError(403, f"You don't have the rights to write to {repo_id}")
        return account, repo

    def _readable(self, repo_id: str, account: Optional[Account]) -> Repo:
        repo = self.fake.repos.get(repo_id)
        owner = account is not None and repo_id.split("/")[0] in (account.name, *account.orgs)
        if repo is None or (repo.private and not owner):
            raise _HubError(404, "Repository not found", "RepoNotFound")
        return repo

    # ---- the API ------------------------------------------------------------------------------
    def _route(self, method: str, path: str, query: dict[str, list[str]]) -> tuple[int, Any, dict]:
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(/.*)?", path)
        if path == "/api/whoami-v2":
            return self._whoami()
        if path == "/api/repos/create" and method == "POST":
            return self._create_repo()
        if path == "/api/agent-harnesses":  # huggingface_hub labels its user agent with these; none here
            return 200, {"standardEnvVars": [], "harnesses": {}}, {}
        if path == "/api/validate-yaml" and method == "POST":
            self._body()
            return 200, {"errors": [], "warnings": []}, {}
        if m:
            return self._model_api(method, m.group(1), m.group(2) or "", query)
        m = re.fullmatch(r"/([^/]+/[^/]+)\.git/info/lfs/objects/batch", path)
        if m and method == "POST":
            return self._lfs_batch(m.group(1))
        m = re.fullmatch(r"/fake-lfs/([^/]+/[^/]+)/([0-9a-f]{64})", path)
        if m and method == "PUT":
            return self._lfs_put(m.group(1), m.group(2))
        m = re.fullmatch(r"/fake-lfs-verify/([^/]+/[^/]+)", path)
        if m and method == "POST":
            return self._lfs_verify(m.group(1))
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m and method in ("GET", "HEAD"):
            repo = self._readable(m.group(1), self._account(required=False))
            if m.group(3) not in repo.files:
                raise _HubError(404, "Entry not found", "EntryNotFound")
            return 200, repo.files[m.group(3)], {"X-Repo-Commit": repo.sha}
        raise _HubError(404, f"the fake hub has no {method} {path}")

    def _whoami(self) -> tuple[int, Any, dict]:
        account = self._account()
        return 200, {"type": "user", "name": account.name, "fullname": account.name.title(),
                     "orgs": [{"name": org, "type": "org"} for org in account.orgs],
                     "auth": {"type": "access_token",
                              "accessToken": {"displayName": f"{account.role} token", "role": account.role}}}, {}

    def _create_repo(self) -> tuple[int, Any, dict]:
        account = self._account()
        body = self._json()
        repo_id = f"{body.get('organization') or account.name}/{body['name']}"
        if body.get("type", "model") != "model":
            raise _HubError(400, "the fake hub only has model repos")
        if account.role != "write" or repo_id.split("/")[0] not in (account.name, *account.orgs):
            raise _HubError(403, f"You don't have the rights to create a model under the namespace "
                                 f"{repo_id.split('/')[0]}")
        with self.fake.lock:
            if repo_id in self.fake.repos:
                raise _HubError(409, "You already created this model repo", url=f"{self.fake.url}/{repo_id}")
            private = body.get("visibility") == "private" if "visibility" in body else bool(body.get("private"))
            self.fake.repos[repo_id] = Repo(repo_id, private)
        return 200, {"url": f"{self.fake.url}/{repo_id}", "name": repo_id}, {}

    def _model_api(self, method: str, repo_id: str, rest: str, query: dict) -> tuple[int, Any, dict]:
        if rest.startswith("/xet-write-token/") or rest.startswith("/xet-read-token/"):
            raise _HubError(501, "the fake hub does not speak Xet; upload through LFS")
        if rest.startswith("/preupload/") and method == "POST":
            return self._preupload(repo_id)
        if rest.startswith("/commit/") and method == "POST":
            return self._commit(repo_id)
        repo = self._readable(repo_id, self._account(required=False))
        if rest == "" or rest.startswith("/revision/"):
            return 200, {"id": repo_id, "modelId": repo_id, "sha": repo.sha, "private": repo.private,
                         "siblings": [{"rfilename": p} for p in sorted(repo.files)]}, {}
        if rest.startswith("/tree/"):
            return 200, [self._entry(repo, p) for p in sorted(repo.files)], {}
        if rest.startswith("/paths-info/") and method == "POST":
            wanted = parse_qs(self._body().decode()).get("paths", [])
            return 200, [self._entry(repo, p) for p in wanted if p in repo.files], {}
        raise _HubError(404, f"the fake hub has no {method} /api/models/{repo_id}{rest}")

    def _entry(self, repo: Repo, path: str) -> dict[str, Any]:
        data = repo.files[path]
        entry: dict[str, Any] = {"type": "file", "path": path, "size": len(data), "oid": git_blob_sha1(data)}
        if path in repo.lfs_paths:
            oid = hashlib.sha256(data).hexdigest()
            pointer = _pointer(oid, len(data))
            entry.update(oid=git_blob_sha1(pointer), lfs={"oid": oid, "size": len(data), "pointerSize": len(pointer)})
        return entry

    def _preupload(self, repo_id: str) -> tuple[int, Any, dict]:
        _, repo = self._writable(repo_id)
        files = []
        for f in self._json().get("files", []):
            sample = base64.b64decode(f.get("sample", ""))
            lfs = f["path"].endswith(LFS_SUFFIXES) or b"\0" in sample or f["size"] >= REGULAR_LIMIT
            old = repo.files.get(f["path"])
            oid = None
            if old is not None:
                oid = hashlib.sha256(old).hexdigest() if f["path"] in repo.lfs_paths else git_blob_sha1(old)
            files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                          "oid": oid})
        return 200, {"files": files, "commitOid": repo.sha}, {}

    def _lfs_batch(self, repo_id: str) -> tuple[int, Any, dict]:
        _, repo = self._writable(repo_id)
        objects = []
        for obj in self._json().get("objects", []):
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in repo.objects:
                entry["actions"] = {
                    "upload": {"href": f"{self.fake.url}/fake-lfs/{repo_id}/{obj['oid']}"},
                    "verify": {"href": f"{self.fake.url}/fake-lfs-verify/{repo_id}"}}
            objects.append(entry)
        return 200, {"transfer": "basic", "objects": objects}, {}

    def _lfs_put(self, repo_id: str, oid: str) -> tuple[int, Any, dict]:
        # The presigned storage URL: no Authorization header, like S3.
        fake = self.fake
        length = int(self.headers.get("Content-Length") or 0)
        with fake.lock:
            number, fake._puts = fake._puts, fake._puts + 1
        cut = fake.cut_puts_from is not None and number >= fake.cut_puts_from
        slow = fake.bytes_per_s if number >= fake.slow_puts_from else None
        limit = min(fake.cut_after_bytes if cut else length, length)
        data = bytearray()
        while len(data) < limit:
            chunk = self.rfile.read(min(4096 if slow else 64 * 1024, limit - len(data)))
            if not chunk:
                break
            data += chunk
            with fake.lock:
                fake.received[oid] += len(chunk)
            if slow:
                time.sleep(len(chunk) / slow)
            if fake.down:
                break
        self._body_read = True
        if cut or fake.down or len(data) < length:
            self._cut()
            raise ConnectionAbortedError
        if hashlib.sha256(data).hexdigest() != oid:
            raise _HubError(400, "the uploaded bytes do not match the object id")
        with fake.lock:
            fake.repos[repo_id].objects[oid] = bytes(data)
        return 200, {}, {"ETag": oid}

    def _lfs_verify(self, repo_id: str) -> tuple[int, Any, dict]:
        _, repo = self._writable(repo_id)
        body = self._json()
        if body.get("oid") not in repo.objects:
            raise _HubError(404, "object not uploaded")
        return 200, {}, {}

    def _commit(self, repo_id: str) -> tuple[int, Any, dict]:
        _, repo = self._writable(repo_id)
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        header = next(item["value"] for item in lines if item["key"] == "header")
        changed: dict[str, tuple[bytes, bool]] = {}
        for item in lines:
            value = item["value"]
            if item["key"] == "file":
                changed[value["path"]] = (base64.b64decode(value["content"]), False)
            elif item["key"] == "lfsFile":
                if value["oid"] not in repo.objects:
                    raise _HubError(400, f"LFS object {value['oid']} for {value['path']} was never uploaded")
                changed[value["path"]] = (repo.objects[value["oid"]], True)
            elif item["key"] != "header":
                raise _HubError(400, f"the fake hub cannot {item['key']}")
        with self.fake.lock:
            for path, (data, lfs) in changed.items():
                repo.files[path] = data
                (repo.lfs_paths.add if lfs else repo.lfs_paths.discard)(path)
            repo.commits.append({"summary": header.get("summary"), "files": sorted(changed)})
        return 200, {"commitUrl": f"{self.fake.url}/{repo_id}/commit/{repo.sha}", "commitOid": repo.sha,
                     "success": True}, {}


def point_huggingface_hub_at(fake: FakeHub, monkeypatch: Any) -> None:
    """Make this process and the workers it starts talk to ``fake``, online, with no token of their own.

    huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE once, at import: its constants are patched
    too, and the environment (which child processes inherit) set. tests/conftest.py turns the Hub
    off for every other test.
    """
    import huggingface_hub.constants as constants

    monkeypatch.setenv("HF_ENDPOINT", fake.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", fake.url)


if __name__ == "__main__":  # pragma: no cover - a manual aid
    with FakeHub() as hub:
        print(f"fake hub at {hub.url} (token {WRITE_TOKEN}); HF_ENDPOINT={hub.url}; Ctrl-C ends it", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
