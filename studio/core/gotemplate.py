"""A small renderer for the part of Go's text/template that Ollama chat templates use.

The studio writes Ollama templates (studio.core.chat_formats) and checks each one by rendering a
sample conversation with this renderer and with the run's Jinja template: the Modelfile says
whether the two agree. Supported: text, ``{{ .Field }}``, ``$.Field``, ``$var``, string literals,
``{{- ... -}}`` whitespace trimming, ``range``, ``if`` / ``else if`` / ``else`` / ``end``,
``$v := x`` and ``$v = x``, and the functions ``eq``, ``ne``, ``not``, ``and``, ``or``, ``len``,
with parentheses. Anything else raises ``TemplateError``, so a template the studio writes can
only use what it can check.
"""

from __future__ import annotations

import re
from typing import Any

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r'\s*(\(|\)|"(?:[^"\\]|\\.)*"|[^\s()]+)')


class TemplateError(ValueError):
    pass


def render(template: str, data: dict[str, Any]) -> str:
    """``template`` rendered with ``data`` as the dot (``.Messages``, ``.System`` ...)."""
    nodes, _ = _parse(_lex(template), 0, ())
    out: list[str] = []
    _run(nodes, data, {"$": data}, out)
    return "".join(out)


def _lex(template: str) -> list[tuple[str, str]]:
    """('text', s) and ('action', s) items, with the trim markers applied to the neighbouring text."""
    items: list[tuple[str, str]] = []
    pos = 0
    trim_next = False
    for m in _ACTION.finditer(template):
        text = template[pos:m.start()]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if m.group(1):
            text = text.rstrip(" \t\r\n")
        items.append(("text", text))
        body = m.group(2).strip()
        if not body.startswith("/*"):
            items.append(("action", body))
        trim_next = bool(m.group(3))
        pos = m.end()
    tail = template[pos:]
    items.append(("text", tail.lstrip(" \t\r\n") if trim_next else tail))
    return items


def _parse(items: list[tuple[str, str]], i: int, stop: tuple[str, ...]) -> tuple[list[Any], int]:
    nodes: list[Any] = []
    while i < len(items):
        kind, body = items[i]
        if kind == "text":
            if body:
                nodes.append(("text", body))
            i += 1
            continue
        word = body.split(None, 1)[0] if body else ""
        if word in ("end", "else") and stop:
            return nodes, i
        if word in ("end", "else"):
            raise TemplateError(f"unexpected {{{{ {body} }}}}")
        if word in ("if", "range"):
            node, i = _block(items, i, word, body[len(word):].strip())
            nodes.append(node)
            continue
        nodes.append(("expr", body))
        i += 1
    if stop:
        raise TemplateError("missing {{ end }}")
    return nodes, i


def _block(items: list[tuple[str, str]], i: int, word: str, cond: str) -> tuple[Any, int]:
    """An if (with its else-if chain) or range block starting at items[i]."""
    branches: list[tuple[str, list[Any]]] = []
    otherwise: list[Any] = []
    i += 1
    while True:
        body, i = _parse(items, i, ("end", "else"))
        branches.append((cond, body))
        action = items[i][1]
        if action == "end":
            return (word, branches, otherwise), i + 1
        rest = action[len("else"):].strip()
        if word == "if" and rest.startswith("if "):
            cond = rest[3:].strip()
            i += 1
            continue
        if rest:
            raise TemplateError(f"unsupported {{{{ {action} }}}}")
        otherwise, i = _parse(items, i + 1, ("end",))
        if items[i][1] != "end":
            raise TemplateError("missing {{ end }} after {{ else }}")
        return (word, branches, otherwise), i + 1


def _run(nodes: list[Any], dot: Any, env: dict[str, Any], out: list[str]) -> None:
    for node in nodes:
        kind = node[0]
        if kind == "text":
            out.append(node[1])
        elif kind == "expr":
            body = node[1]
            m = re.fullmatch(r"(\$\w+)\s*(:=|=)\s*(.+)", body, re.S)
            if m:
                env[m.group(1)] = _eval(_tokens(m.group(3)), dot, env)
            else:
                out.append(_text(_eval(_tokens(body), dot, env)))
        elif kind == "if":
            for cond, body in node[1]:
                if _truthy(_eval(_tokens(cond), dot, env)):
                    _run(body, dot, env, out)
                    break
            else:
                _run(node[2], dot, env, out)
        elif kind == "range":
            cond, body = node[1][0]
            seq = _eval(_tokens(cond), dot, env) or []
            if not seq:
                _run(node[2], dot, env, out)
            for item in seq:
                _run(body, item, env, out)


def _tokens(expr: str) -> list[str]:
    toks = _TOKEN.findall(expr)
    if "".join(toks).replace(" ", "") != expr.replace(" ", "").replace("\n", "").replace("\t", ""):
        raise TemplateError(f"cannot read {expr!r}")
    return toks


def _eval(toks: list[str], dot: Any, env: dict[str, Any]) -> Any:
    value, rest = _call(toks, dot, env)
    if rest:
        raise TemplateError(f"unexpected {' '.join(rest)!r}")
    return value


_FUNCS = {
    "eq": lambda a, *b: any(a == x for x in b),
    "ne": lambda a, b: a != b,
    "not": lambda a: not _truthy(a),
    "and": lambda *a: next((x for x in a if not _truthy(x)), a[-1]),
    "or": lambda *a: next((x for x in a if _truthy(x)), a[-1]),
    "len": lambda a: len(a),
}


def _call(toks: list[str], dot: Any, env: dict[str, Any]) -> tuple[Any, list[str]]:
    """A function applied to the operands that follow it, or a single operand."""
    if toks and toks[0] in _FUNCS:
        args = []
        rest = toks[1:]
        while rest and rest[0] != ")":
            arg, rest = _operand(rest, dot, env)
            args.append(arg)
        return _FUNCS[toks[0]](*args), rest
    return _operand(toks, dot, env)


def _operand(toks: list[str], dot: Any, env: dict[str, Any]) -> tuple[Any, list[str]]:
    if not toks:
        raise TemplateError("missing operand")
    tok, rest = toks[0], toks[1:]
    if tok == "(":
        value, rest = _call(rest, dot, env)
        if not rest or rest[0] != ")":
            raise TemplateError("missing )")
        return value, rest[1:]
    if tok.startswith('"'):
        return _unquote(tok), rest
    if tok == ".":
        return dot, rest
    if tok.startswith("$."):
        return _field(env["$"], tok[2:]), rest
    if tok.startswith("$"):
        if tok not in env:
            raise TemplateError(f"undefined variable {tok}")
        return env[tok], rest
    if tok.startswith("."):
        return _field(dot, tok[1:]), rest
    raise TemplateError(f"unsupported {tok!r}")


def _field(obj: Any, name: str) -> Any:
    for part in name.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else getattr(obj, part, None)
    return obj


def _unquote(tok: str) -> str:
    return tok[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape") if "\\" in tok else tok[1:-1]


def _truthy(value: Any) -> bool:
    return bool(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)
