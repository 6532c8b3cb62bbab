"""One small tokenizer interface for the data pipeline, with or without transformers.

The GUI must never import torch, and importing transformers does. So the preview and the
statistics read a model's ``tokenizer.json`` with the ``tokenizers`` library and render its chat
template with jinja2 exactly as transformers does. The worker wraps the transformers tokenizer it
already has (``wrap_tokenizer``) and goes through the same code, so the preview and training
produce the same tokens.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Optional

from studio.core.data.errors import DataError


class TokenizerAdapter:
    """Batch encoding without special tokens, the special tokens themselves, and the chat template."""

    def __init__(self, *, backend: Any = None, encode: Optional[Callable[[str], list[int]]] = None,
                 decode: Optional[Callable[[list[int]], str]] = None,
                 eos_token: Optional[str] = None, bos_token: Optional[str] = None,
                 bos_token_id: Optional[int] = None, adds_bos: bool = False,
                 chat_template: Optional[str] = None, special_tokens: Optional[dict[str, str]] = None,
                 name: str = "", identity: str = ""):
        self._backend = backend  # a tokenizers.Tokenizer, when there is one (fast path)
        self._encode = encode
        self._decode = decode
        self.eos_token = eos_token or None
        self.bos_token = bos_token or None
        self.bos_token_id = bos_token_id
        self.adds_bos = adds_bos  # the tokenizer puts BOS in front of plain text by itself
        self.chat_template = chat_template or None
        self.special_tokens = special_tokens or {}
        self.name = name
        self._identity = identity
        self._compiled = None

    # ---- encoding ------------------------------------------------------------------------
    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        if self._backend is not None:
            fast = getattr(self._backend, "encode_batch_fast", None) or self._backend.encode_batch
            return [e.ids for e in fast(texts, add_special_tokens=False)]
        return [list(self._encode(t)) for t in texts]

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0]

    def token_texts(self, ids: list[int]) -> list[str]:
        """Each id decoded on its own, for the per-token view."""
        if self._backend is not None:
            return [self._backend.decode([i], skip_special_tokens=False) for i in ids]
        if self._decode is not None:
            return [self._decode([i]) for i in ids]
        return [str(i) for i in ids]

    @property
    def fingerprint(self) -> str:
        """Changes whenever the tokens or the template could change (keys the tokenized cache)."""
        h = hashlib.sha256()
        if self._identity:
            h.update(self._identity.encode())
        elif self._backend is not None:
            h.update(self._backend.to_str().encode())
        else:
            h.update(self.name.encode())
        for part in (self.chat_template, self.eos_token, self.bos_token, str(self.adds_bos)):
            h.update(b"\0" + (part or "").encode())
        return h.hexdigest()[:16]

    # ---- chat template -------------------------------------------------------------------
    def with_chat_template(self, source: str) -> "TokenizerAdapter":
        """The same tokenizer with another chat template (a user's, for a base model that has none)."""
        other = copy.copy(self)
        other.chat_template = source or None
        other._compiled = None
        return other

    def apply_chat_template(self, messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
        """The template rendered to text, with the same jinja settings transformers uses."""
        if not self.chat_template:
            raise DataError("this tokenizer has no chat template; choose a template (chatml, alpaca, llama3).")
        if self._compiled is None:
            self._compiled = _compile_template(self.chat_template)
        try:
            return self._compiled.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                         bos_token=self.bos_token or "", eos_token=self.eos_token or "",
                                         **{k: v for k, v in self.special_tokens.items()
                                            if k not in ("bos_token", "eos_token")})
        except DataError:
            raise
        except Exception as e:  # a template's own raise_exception() or a jinja error
            raise DataError(f"the model's chat template rejected this conversation: {e}") from e


def _compile_template(source: str):
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise DataError(f"the model's chat template rejected this conversation: {message}")

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return env.from_string(source)
    except Exception as e:
        raise DataError(f"the model's chat template is not valid jinja ({e}); choose a named template instead.") from e


def _token_text(value: Any) -> Optional[str]:
    if isinstance(value, dict):  # older configs store AddedToken dicts
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def _detect_adds_bos(encode_with_special: Callable[[str], list[int]], bos_id: Optional[int]) -> bool:
    if bos_id is None:
        return False
    try:
        ids = encode_with_special("a")
    except Exception:
        return False
    return bool(ids) and ids[0] == bos_id


def load_tokenizer(model_dir: str | Path) -> TokenizerAdapter:
    """Read ``tokenizer.json`` (+ config and chat template) from a model folder, without transformers."""
    d = Path(model_dir).expanduser()
    tj = d / "tokenizer.json"
    if not tj.is_file():
        raise DataError(f"{d}: no tokenizer.json in this folder. The preview needs a model with a fast "
                        "tokenizer; pick the model folder that holds tokenizer.json.")
    from tokenizers import Tokenizer

    try:
        backend = Tokenizer.from_file(str(tj))
    except Exception as e:
        raise DataError(f"{tj}: cannot read the tokenizer ({e}).") from e
    config: dict[str, Any] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        f = d / name
        if f.is_file():
            try:
                loaded = json.loads(f.read_text(encoding="utf-8"))
                if isinstance(loaded, dict):
                    config.update(loaded)
            except (OSError, ValueError):
                pass
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: take the default one
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default") or next(iter(named.values()), None)
    jinja = d / "chat_template.jinja"
    if jinja.is_file():
        template = jinja.read_text(encoding="utf-8")
    elif (d / "chat_template.json").is_file():
        try:
            template = json.loads((d / "chat_template.json").read_text(encoding="utf-8")).get("chat_template", template)
        except (OSError, ValueError, AttributeError):
            pass
    special = {k: t for k in ("bos_token", "eos_token", "pad_token", "unk_token")
               if (t := _token_text(config.get(k)))}
    bos = special.get("bos_token")
    bos_id = backend.token_to_id(bos) if bos else None
    adds_bos = _detect_adds_bos(lambda s: backend.encode(s, add_special_tokens=True).ids, bos_id)
    return TokenizerAdapter(backend=backend, eos_token=special.get("eos_token"), bos_token=bos,
                            bos_token_id=bos_id, adds_bos=adds_bos, chat_template=template,
                            special_tokens=special, name=str(d))


def wrap_tokenizer(tok: Any) -> TokenizerAdapter:
    """Adapt a transformers tokenizer, a tokenizers.Tokenizer or any object with ``encode``."""
    if isinstance(tok, TokenizerAdapter):
        return tok
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None and type(tok).__module__.startswith("tokenizers"):
        backend = tok
        tok = None
    if tok is None:
        return TokenizerAdapter(backend=backend, name="tokenizers.Tokenizer")
    bos_id = getattr(tok, "bos_token_id", None)
    if backend is not None:
        adds_bos = _detect_adds_bos(lambda s: backend.encode(s, add_special_tokens=True).ids, bos_id)
        encode = None
    else:
        adds_bos = bool(getattr(tok, "add_bos_token", False)) and bos_id is not None
        encode = lambda s: tok.encode(s, add_special_tokens=False)  # noqa: E731
    template = getattr(tok, "chat_template", None)
    if isinstance(template, dict):
        template = template.get("default") or next(iter(template.values()), None)
    special = {k: v for k in ("bos_token", "eos_token", "pad_token", "unk_token")
               if isinstance(v := getattr(tok, k, None), str) and v}
    decode = getattr(tok, "decode", None)
    identity = ""
    if backend is None:
        identity = f"{type(tok).__module__}.{type(tok).__name__}:{getattr(tok, 'name_or_path', '')}:{getattr(tok, 'vocab_size', '')}"
    return TokenizerAdapter(backend=backend, encode=encode, decode=decode, eos_token=special.get("eos_token"),
                            bos_token=special.get("bos_token"), bos_token_id=bos_id, adds_bos=adds_bos,
                            chat_template=template if isinstance(template, str) else None,
                            special_tokens=special, name=str(getattr(tok, "name_or_path", "")), identity=identity)


def tokenizer_dir_for(model_spec: Any) -> Path:
    """The folder holding a ModelSpec's tokenizer: the demo, a local folder, or a hub id in the HF cache."""
    from studio.core.paths import demo_model_dir

    source = getattr(model_spec, "source", "demo")
    path = getattr(model_spec, "path", "")
    if source == "demo":
        return demo_model_dir()
    p = Path(path).expanduser()
    if source == "local" or p.exists():
        return p
    from studio.core.models import find_in_hf_cache

    snap = find_in_hf_cache(path)
    if snap is None:
        raise DataError(f"{path}: the model isn't downloaded yet, so its tokenizer can't count tokens. "
                        "Download it on the Model page first.")
    return Path(snap)
