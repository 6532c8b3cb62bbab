"""`studio hub login|whoami`: the Hugging Face token the studio pushes with.

``login`` asks for the token without echoing it (or reads one line from stdin when that is not a
terminal: ``studio hub login < token.txt``), checks it against the Hub and saves it where
huggingface_hub reads it; a refused token is not saved. ``whoami`` says which account the current
token belongs to and whether it can write. Neither ever prints the token. Exit status 0 when the
token works, 1 when the Hub refused it or could not be reached, 2 when there is no token.
"""

from __future__ import annotations

import getpass
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("hub", help="log in to the Hugging Face Hub, or show the account in use",
                              description="The Hugging Face token the studio uses to push models.")
    sub = p.add_subparsers(dest="hub_command", metavar="SUBCOMMAND", required=True)
    login = sub.add_parser("login", help="check a token and save it where huggingface_hub reads it",
                           description="Create a token with write access at https://huggingface.co/settings/tokens, "
                                       "then paste it here (it is not shown). From a script: studio hub login < FILE.")
    login.set_defaults(func=run_login)
    whoami = sub.add_parser("whoami", help="the account of the token in use, and whether it can write")
    whoami.set_defaults(func=run_whoami)


def run_login(_args: Any) -> int:
    from huggingface_hub import constants

    from studio.core.hub_auth import HubError, login

    token = getpass.getpass("Hugging Face token (not shown): ") if sys.stdin.isatty() else sys.stdin.readline()
    try:
        account = login(token)
    except HubError as e:
        print(f"studio hub login: {e.message}", file=sys.stderr)
        return 2 if e.kind == "auth" and not token.strip() else 1
    print(f"Saved the token of {account.name} ({_role(account.role)}) in {constants.HF_TOKEN_PATH}.")
    from studio.core.hub_auth import token_source

    if token_source() != "the saved login":
        print("Note: HF_TOKEN is set in this environment and is used instead of the saved token.")
    if account.can_write is False:
        print("This token is read-only: pushing needs one with write access (https://huggingface.co/settings/tokens).")
    return 0


def run_whoami(_args: Any) -> int:
    from studio.core.hub_auth import HubError, saved_token, whoami

    if not saved_token():
        print("Not logged in: run `studio hub login` (or set HF_TOKEN).", file=sys.stderr)
        return 2
    try:
        account = whoami()
    except HubError as e:
        print(f"studio hub whoami: {e.message}", file=sys.stderr)
        return 1
    orgs = f"; organizations: {', '.join(account.orgs)}" if account.orgs else ""
    print(f"{account.name}: {_role(account.role)} from {account.source}{orgs}")
    if account.can_write is False:
        print("This token is read-only: pushing needs one with write access (https://huggingface.co/settings/tokens).")
    return 0


def _role(role: Any) -> str:
    return {"write": "a write token", "read": "a read-only token",
            "fineGrained": "a fine-grained token (it can write where its scopes allow)"}.get(role, "a token")
