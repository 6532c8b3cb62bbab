"""`studio methods [NAME] [--model PATH_OR_ID]`: the fine-tuning methods, what they cost, whether they run here.

Without NAME: one line per method (availability on this machine and, with --model, the trainable
parameters on that model). With NAME: the method's description and every setting with its range.
"""

from __future__ import annotations

import sys
import typing
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("methods", help="list the fine-tuning methods (or describe one)",
                              description="List the fine-tuning methods, or describe one with its settings.")
    p.add_argument("name", nargs="?", help="a method name, e.g. lora, dora, ia3")
    p.add_argument("--model", help="a model folder or hub id: show trainable parameters on it")
    p.set_defaults(func=run)


def run(args: Any) -> int:
    from studio.core import gpu
    from studio.core.methods import METHOD_CLASSES, method_class
    from studio.core.methods.params import trainable_params, trainable_share
    from studio.core.models import ModelError, resolve_facts

    facts = None
    if args.model:
        try:
            facts = resolve_facts("local" if args.model and _is_dir(args.model) else "hub", args.model)
        except ModelError as e:
            print(f"studio methods: {e}", file=sys.stderr)
            return 2
    has_cuda, has_bnb = gpu.has_cuda_gpu(), gpu.has_bitsandbytes()
    if args.name:
        try:
            cls = method_class(args.name)
        except KeyError as e:
            print(f"studio methods: {e.args[0]}", file=sys.stderr)
            return 2
        _describe(cls, facts, has_cuda, has_bnb)
        return 0
    for cls in METHOD_CLASSES:
        name = cls.model_fields["name"].default
        avail = cls.availability(has_cuda=has_cuda, has_bitsandbytes=has_bnb, facts=facts)
        line = f"{name:<14} {cls.info.title:<40} {'merge' if cls.info.mergeable else 'adapter only':<13}"
        if facts is not None:
            m = cls()
            line += f" {_count(trainable_params(m, facts)):>8} ({trainable_share(m, facts) * 100:.3g}%)"
        line += "" if avail.ok else f"  unavailable: {avail.reason}"
        print(line.rstrip())
    return 0


def _describe(cls: Any, facts: Any, has_cuda: bool, has_bnb: bool) -> None:
    from studio.core.methods.params import trainable_params

    info = cls.info
    print(f"{info.title} ({cls.model_fields['name'].default}) - {info.family}")
    print(f"  {info.summary}\n  When: {info.when_to_pick}\n  Costs: {info.costs}")
    print(f"  Merge: {'yes' if info.mergeable else 'no'}. {info.merge_note}")
    print(f"  Recommended learning rate: {cls.recommended_lr:g}")
    avail = cls.availability(has_cuda=has_cuda, has_bitsandbytes=has_bnb, facts=facts)
    if not avail.ok:
        print(f"  Unavailable here: {avail.reason}")
    if facts is not None:
        m = cls()
        print(f"  Trainable parameters on {facts.name}: {trainable_params(m, facts):,} (default settings)")
        for p in m.problems(facts):
            print(f"  Problem with the defaults on this model: {p}")
    print("  Settings:")
    for name, field in cls.model_fields.items():
        if name == "name":
            continue
        print(f"    {name} = {field.default!r}  [{_range(field)}]  {field.title}: {field.description}")


def _range(field: Any) -> str:
    lo = hi = None
    for m in field.metadata:
        lo = getattr(m, "ge", None) if getattr(m, "ge", None) is not None else (getattr(m, "gt", None) if lo is None else lo)
        hi = getattr(m, "le", None) if getattr(m, "le", None) is not None else (getattr(m, "lt", None) if hi is None else hi)
    if lo is None and hi is None:
        return _type_words(field.annotation)
    return f"{'' if lo is None else lo}..{'' if hi is None else hi}"


def _type_words(ann: Any) -> str:
    """A type as a reader wants it: 'all-linear' | list of str, not [Union]."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Literal:
        return " | ".join(str(a) for a in args)
    if origin is typing.Union or type(ann).__name__ == "UnionType":
        words = [_type_words(a) for a in args if a is not type(None)]
        return " | ".join(words) + (" | none" if type(None) in args else "")
    if origin in (list, tuple, set, frozenset):
        return f"list of {_type_words(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {_type_words(args[0])} to {_type_words(args[1])}" if len(args) == 2 else "mapping"
    if origin is typing.Annotated:
        return _type_words(args[0])
    return getattr(ann, "__name__", str(ann)).replace("typing.", "")


def _is_dir(path: str) -> bool:
    from pathlib import Path

    return Path(path).expanduser().is_dir()


def _count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)
