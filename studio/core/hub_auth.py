"""The user's Hugging Face token: is there one, whose is it, can it write, saving a new one.

The token is the one huggingface_hub itself uses: the ``HF_TOKEN`` environment variable, else the
file that ``hf auth login`` (and ``studio hub login``, through huggingface_hub's ``login``) saves
in the Hugging Face home folder. The studio never writes it anywhere else, never into a run folder,
a log or an event, and never prints it. Hub failures become a ``HubError`` whose message says what
to do (``explain``); being offline is one of them. No Qt, no torch; huggingface_hub is imported
inside functions.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlparse

from studio.core.disk import disk_full_message, is_disk_full
from studio.core.hub import endpoint, offline_mode

TOKENS_URL = "https://huggingface.co/settings/tokens"
REFUSED = f"the token was refused (401): create a token with write access at {TOKENS_URL}"
RESUME_HINT = "Nothing is lost: push again to resume; files already on the Hub are not sent again."


class HubError(Exception):
    """Why a Hub request could not be done, in words; ``kind``: auth, network, config, disk."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.message, self.kind = message, kind


@dataclass(frozen=True)
class Account:
    """Who a token belongs to and what it may do (``role``: write, read, fineGrained, or None)."""

    name: str
    role: Optional[str]
    orgs: tuple[str, ...]
    source: str  # where the token came from, in words

    @property
    def can_write(self) -> Optional[bool]:
        """True for a write token, False for a read token, None when its scopes decide (fine-grained)."""
        return {"write": True, "read": False}.get(self.role or "")

    def describe(self) -> str:
        """'account alice, a write token from the saved login'"""
        role = {"write": "a write token", "read": "a read-only token",
                "fineGrained": "a fine-grained token"}.get(self.role or "", "a token")
        return f"account {self.name}, {role} from {self.source}"


def saved_token() -> Optional[str]:
    """The token huggingface_hub would use now (HF_TOKEN, else the saved one), or None."""
    from huggingface_hub import get_token

    return get_token()


def token_source() -> str:
    if os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"):
        return "the HF_TOKEN environment variable"
    return "the saved login"


def whoami(token: Optional[str] = None) -> Account:
    """The account of ``token`` (default: the saved one). HubError when there is none or it is refused."""
    token = token or saved_token()
    if not token:
        raise HubError("No Hugging Face token: run `studio hub login` (or set HF_TOKEN) with a token that has "
                       f"write access, from {TOKENS_URL}.", "auth")
    source = "the token given" if token != saved_token() else token_source()
    check_online()
    from huggingface_hub import HfApi

    try:
        info = HfApi(endpoint=endpoint()).whoami(token=token)
    except Exception as e:  # huggingface_hub raises many types; explain() keeps the unknown ones
        raise explain(e) from e
    access = (info.get("auth") or {}).get("accessToken") or {}
    orgs = tuple(o.get("name", "") for o in info.get("orgs") or [] if isinstance(o, dict))
    return Account(info.get("name", "?"), access.get("role"), orgs, source)


def login(token: str) -> Account:
    """Check ``token`` against the Hub, then save it where huggingface_hub reads it; its Account.

    A refused token is never saved. HF_TOKEN, when set, still wins over the saved token (the
    returned account says which one is in use).
    """
    token = token.strip()
    if not token:
        raise HubError(f"No token given: create one with write access at {TOKENS_URL}.", "auth")
    account = whoami(token)
    import huggingface_hub

    try:
        huggingface_hub.login(token=token, add_to_git_credential=False)
    except OSError as e:
        raise explain(e) from e
    return account


def check_online() -> None:
    var = offline_mode()
    if var:
        raise HubError(f"Offline mode is on ({var}=1), so nothing can be sent to the Hugging Face Hub; "
                       f"unset {var} and try again.", "network")


def explain(error: BaseException, repo_id: str = "", account: Optional[Account] = None) -> BaseException:
    """A HubError saying what went wrong and what to do, or ``error`` itself when it is not a Hub problem."""
    if isinstance(error, HubError):
        return error
    status = _http_status(error)
    host = urlparse(endpoint()).hostname or "huggingface.co"
    repo = f" {repo_id}" if repo_id else ""
    if status == 401:
        return HubError(REFUSED[0].upper() + REFUSED[1:] + ", then `studio hub login`.", "auth")
    if status in (403, 404) and _repo_error(error, status):
        who = f" ({account.describe()})" if account else ""
        own = f", or push to your own namespace ({account.name}/...)" if account else ""
        return HubError(f"You cannot write to{repo} with this token{who}. Use a token with write access to it "
                        f"(create one at {TOKENS_URL}){own}.", "auth")
    if status == 429 or (status is not None and status >= 500):
        return HubError(f"The Hugging Face Hub ({host}) answered {status}; try again in a few minutes. "
                        + RESUME_HINT, "network")
    if status is not None and status >= 400:
        return HubError(f"The Hugging Face Hub ({host}) refused the request ({status}): {_server_message(error)}",
                        "config")
    if _offline(error):
        return HubError(f"Offline mode is on, so nothing can be sent to the Hugging Face Hub ({host}).", "network")
    if _network(error):
        return HubError(f"The connection to the Hugging Face Hub ({host}) dropped ({_root(error)}). "
                        + RESUME_HINT, "network")
    if _validation(error):
        return HubError(f"'{repo_id}' is not a valid repo id: use namespace/name with letters, digits, '-', '_' "
                        "and '.' (e.g. alice/my-model).", "config")
    if is_disk_full(error):
        path = next((e.filename for e in _chain(error) if getattr(e, "filename", None)), None)
        return HubError(disk_full_message(path) if path else "The disk is full.", "disk")
    return error


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    e: Optional[BaseException] = error
    while e is not None and e not in seen:
        seen.append(e)
        e = e.__cause__ or e.__context__
    return seen


def _http_status(error: BaseException) -> Optional[int]:
    for e in _chain(error):
        response = getattr(e, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            return status
    return None


def _server_message(error: BaseException) -> str:
    for e in _chain(error):
        response = getattr(e, "response", None)
        if response is not None:
            return response.headers.get("X-Error-Message") or str(e).strip().splitlines()[0]
    return str(error)


def _repo_error(error: BaseException, status: int) -> bool:
    """A 403 is always about rights; a 404 only when it is the repo that is missing (not some endpoint)."""
    return status == 403 or any(type(e).__name__ == "RepositoryNotFoundError" for e in _chain(error))


def _offline(error: BaseException) -> bool:
    return any(type(e).__name__ == "OfflineModeIsEnabled" for e in _chain(error))


def _network(error: BaseException) -> bool:
    for e in _chain(error):
        module = type(e).__module__ or ""
        if module.startswith(("httpx", "httpcore", "h11", "requests", "urllib3")) or \
                isinstance(e, (ConnectionError, TimeoutError)):
            return True
        if isinstance(e, OSError) and e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNRESET,
                                                  errno.ECONNREFUSED, errno.EPIPE, errno.ETIMEDOUT):
            return True
    return False


def _validation(error: BaseException) -> bool:
    return any(type(e).__name__ == "HFValidationError" for e in _chain(error))


def _root(error: BaseException) -> str:
    last = _chain(error)[-1]
    text = str(last).strip().splitlines()[0] if str(last).strip() else ""
    return text or type(last).__name__
