"""A seeded corpus of broken and odd dataset files, shared by test_data_fuzz.py and benchmarks/data_fuzz.py.

``write_corpus(folder)`` writes ``per_category`` files for each of the named ``CATEGORIES``: clean
files of every shape and suffix, and the pathologies users' files really have (a bare CR, a
131,073-character CSV field, JSON nested 3,000 deep, a 5,000-digit integer, a line longer than the
readers' cap, a BOM, UTF-16, NUL bytes, binary junk, truncated or oddly typed Parquet, ...). The
same seed gives the same bytes. ``long_line`` sets how long the "long line" cases are: small for
CI (the test lowers the readers' cap to match), tens of MB in the benchmark.
"""

from __future__ import annotations

import gzip
import json
import random
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

WORDS = ("the model learns what to say from each example and when to stop question answer explain "
         "summarise translate code python function returns list value error file line row").split()
LATE_ROWS = 2100  # a bad row after this many good ones lies beyond preflight's 2,000-row read
DEEP = 3000  # nesting deeper than Python's json can take (its limit is near 1,000)
HUGE_INT = 5000  # digits; Python refuses to turn more than 4,300 into an int


@dataclass(frozen=True)
class Case:
    category: str
    index: int
    path: Path  # a file, or a folder for the folder categories


@dataclass(frozen=True)
class Knobs:
    long_line: int = 300_000  # bytes of a "long line"
    late_rows: int = LATE_ROWS


Writer = Callable[[Path, random.Random, Knobs], Path]
CATEGORIES: dict[str, Writer] = {}
# Every file of these holds a value that must never become training text (binary data, NaN, infinity, a
# date): reading one must say so, in a problem or an error, rather than train its repr.
MUST_FLAG = frozenset({
    "parquet_binary_column", "parquet_binary_utf8ish", "parquet_fixed_binary", "parquet_float_nan",
    "parquet_float_inf", "parquet_nan_text_column", "parquet_timestamp_column", "parquet_map_column",
    "jsonl_nan_literal", "jsonl_infinity_literal", "jsonl_huge_float", "json_nan_values", "arrow_binary_column",
})


def category(name: str) -> Callable[[Writer], Writer]:
    def register(fn: Writer) -> Writer:
        CATEGORIES[name] = fn
        return fn
    return register


def write_corpus(folder: Path, per_category: int = 20, seed: int = 0, knobs: Knobs = Knobs(),
                 names: tuple[str, ...] = ()) -> list[Case]:
    """Every category's files under ``folder`` (``names`` picks categories; empty means all)."""
    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    for name in names or tuple(CATEGORIES):
        for i in range(per_category):
            cases.append(write_case(folder, name, i, seed, knobs))
    return cases


def write_case(folder: Path, name: str, index: int, seed: int = 0, knobs: Knobs = Knobs()) -> Case:
    rng = random.Random(f"{seed}:{name}:{index}")
    return Case(name, index, CATEGORIES[name](folder / f"{name}-{index:03d}", rng, knobs))


def write_sample(folder: Path, per_category: int = 20, seed: int = 0, knobs: Knobs = Knobs()) -> list[Case]:
    """One file per category, a different variant in each (the index is fixed by the category's name)."""
    folder.mkdir(parents=True, exist_ok=True)
    return [write_case(folder, name, zlib.crc32(name.encode()) % per_category, seed, knobs) for name in CATEGORIES]


# ---- building blocks -------------------------------------------------------------------------------

def words(rng: random.Random, lo: int = 1, hi: int = 12) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def alpaca(rng: random.Random, n: int) -> list[dict]:
    return [{"instruction": words(rng), "input": "", "output": words(rng)} for _ in range(n)]


def messages(rng: random.Random, n: int) -> list[dict]:
    return [{"messages": [{"role": "user", "content": words(rng)}, {"role": "assistant", "content": words(rng)}]}
            for _ in range(n)]


def rows_n(rng: random.Random) -> int:
    return rng.randint(3, 40)


def jsonl(rows: list) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def json_lines(rows: list) -> list[bytes]:
    return [json.dumps(r, ensure_ascii=False).encode() for r in rows]


def with_bad(rng: random.Random, lines: list[bytes], bad: bytes, at: int | None = None) -> bytes:
    """The lines with ``bad`` put in at a random place (or at ``at``), newline-terminated."""
    at = rng.randint(0, len(lines)) if at is None else at
    return b"\n".join(lines[:at] + [bad] + lines[at:]) + b"\n"


def deep(depth: int, opener: str = "[") -> str:
    if opener == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def huge_int(rng: random.Random) -> str:
    return "9" + "".join(rng.choice("0123456789") for _ in range(HUGE_INT + rng.randint(0, 500)))


def junk(rng: random.Random, n: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))


def put(stem: Path, suffix: str, data: bytes) -> Path:
    path = stem.with_suffix(suffix)
    path.write_bytes(data)
    return path


def csv_text(header: list[str], rows: list[list[str]], sep: str = ",", eol: str = "\n") -> str:
    def cell(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if any(c in v for c in (sep, '"', "\n", "\r")) else v
    return "".join(sep.join(cell(v) for v in r) + eol for r in [header] + rows)


def qa_rows(rng: random.Random, n: int) -> list[list[str]]:
    return [[words(rng), words(rng)] for _ in range(n)]


def long_text(rng: random.Random, n: int) -> str:
    unit = words(rng, 8, 8) + " "
    return (unit * (n // len(unit) + 1))[:n]


def parquet(stem: Path, columns: dict, schema=None) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = stem.with_suffix(".parquet")
    table = pa.table(columns, schema=schema) if schema is not None else pa.table(columns)
    pq.write_table(table, path)
    return path


def parquet_bytes(rng: random.Random, n: int) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(alpaca(rng, n)), buf)
    return buf.getvalue()


# ---- JSON Lines ------------------------------------------------------------------------------------

@category("jsonl_alpaca")
def _(stem, rng, k):
    return put(stem, ".jsonl", jsonl(alpaca(rng, rows_n(rng))))


@category("jsonl_messages")
def _(stem, rng, k):
    return put(stem, ".jsonl", jsonl(messages(rng, rows_n(rng))))


@category("jsonl_sharegpt")
def _(stem, rng, k):
    rows = [{"conversations": [{"from": "human", "value": words(rng)}, {"from": "gpt", "value": words(rng)}]}
            for _ in range(rows_n(rng))]
    return put(stem, ".jsonl", jsonl(rows))


@category("jsonl_prompt_completion")
def _(stem, rng, k):
    return put(stem, ".jsonl", jsonl([{"prompt": words(rng), "completion": words(rng)} for _ in range(rows_n(rng))]))


@category("jsonl_text")
def _(stem, rng, k):
    return put(stem, ".jsonl", jsonl([{"text": words(rng, 5, 40)} for _ in range(rows_n(rng))]))


@category("jsonl_bom")
def _(stem, rng, k):
    return put(stem, ".jsonl", b"\xef\xbb\xbf" + jsonl(alpaca(rng, rows_n(rng))))


@category("jsonl_bom_every_line")
def _(stem, rng, k):
    lines = json_lines(alpaca(rng, rows_n(rng)))
    return put(stem, ".jsonl", b"".join(b"\xef\xbb\xbf" + line + b"\n" for line in lines))


@category("jsonl_utf16le")
def _(stem, rng, k):
    return put(stem, ".jsonl", jsonl(alpaca(rng, rows_n(rng))).decode().encode("utf-16"))


@category("jsonl_utf16be_no_bom")
def _(stem, rng, k):
    return put(stem, ".jsonl", jsonl(alpaca(rng, rows_n(rng))).decode().encode("utf-16-be"))


@category("jsonl_latin1_line")
def _(stem, rng, k):
    return put(stem, ".jsonl", with_bad(rng, json_lines(alpaca(rng, rows_n(rng))),
                                        '{"instruction": "café", "output": "x"}'.encode("latin-1")))


@category("jsonl_nul_bytes")
def _(stem, rng, k):
    return put(stem, ".jsonl", with_bad(rng, json_lines(alpaca(rng, rows_n(rng))), b'{"instruction": "a\x00b", \x00}'))


@category("jsonl_nul_escaped")
def _(stem, rng, k):
    return put(stem, ".jsonl", jsonl([{"instruction": "a\u0000b" + words(rng), "output": "\u0000"} for _ in range(5)]
                                     + alpaca(rng, 3)))


@category("jsonl_binary_junk")
def _(stem, rng, k):
    return put(stem, ".jsonl", junk(rng, rng.randint(1, 4000)))


@category("jsonl_junk_between")
def _(stem, rng, k):
    return put(stem, ".jsonl", with_bad(rng, json_lines(alpaca(rng, rows_n(rng))), junk(rng, 300).replace(b"\n", b"")))


@category("jsonl_bare_cr")
def _(stem, rng, k):
    return put(stem, ".jsonl", b"\r".join(json_lines(alpaca(rng, rows_n(rng)))) + b"\r")


@category("jsonl_crlf")
def _(stem, rng, k):
    return put(stem, ".jsonl", b"\r\n".join(json_lines(alpaca(rng, rows_n(rng)))) + b"\r\n")


@category("jsonl_raw_cr_in_line")
def _(stem, rng, k):
    lines = json_lines(alpaca(rng, rows_n(rng)))
    return put(stem, ".jsonl", with_bad(rng, lines, b'{"instruction": "a\rb", "output": "c"}'))


@category("jsonl_deep_array")
def _(stem, rng, k):
    bad = ('{"instruction": "x", "output": ' + deep(rng.randint(990, DEEP)) + "}").encode()
    return put(stem, ".jsonl", with_bad(rng, json_lines(alpaca(rng, rows_n(rng))), bad))


@category("jsonl_deep_object")
def _(stem, rng, k):
    lines = json_lines(alpaca(rng, rows_n(rng)))
    return put(stem, ".jsonl", with_bad(rng, lines, deep(rng.randint(990, DEEP), "{").encode()))


@category("jsonl_deep_bare")
def _(stem, rng, k):
    lines = json_lines(alpaca(rng, rows_n(rng)))
    return put(stem, ".jsonl", with_bad(rng, lines, deep(rng.randint(1000, DEEP)).encode()))


@category("jsonl_deep_every_line")
def _(stem, rng, k):
    return put(stem, ".jsonl", b"\n".join(deep(DEEP).encode() for _ in range(rng.randint(1, 5))) + b"\n")


@category("jsonl_deep_late")
def _(stem, rng, k):
    lines = json_lines(alpaca(rng, k.late_rows + 5))
    return put(stem, ".jsonl", with_bad(rng, lines, deep(DEEP).encode(), at=k.late_rows + rng.randint(0, 4)))


@category("jsonl_huge_int")
def _(stem, rng, k):
    bad = ('{"instruction": "x", "output": ' + huge_int(rng) + "}").encode()
    return put(stem, ".jsonl", with_bad(rng, json_lines(alpaca(rng, rows_n(rng))), bad))


@category("jsonl_huge_int_late")
def _(stem, rng, k):
    lines = json_lines(alpaca(rng, k.late_rows + 5))
    bad = ('{"instruction": ' + huge_int(rng) + ', "output": "y"}').encode()
    return put(stem, ".jsonl", with_bad(rng, lines, bad, at=k.late_rows + rng.randint(0, 4)))


@category("jsonl_huge_float")
def _(stem, rng, k):
    bad = b'{"instruction": "x", "output": 1e' + str(rng.randint(400, 99999)).encode() + b"}"
    return put(stem, ".jsonl", with_bad(rng, json_lines(alpaca(rng, rows_n(rng))), bad))


@category("jsonl_nan_literal")
def _(stem, rng, k):
    bad = rng.choice([b'{"instruction": "x", "output": NaN}', b'{"instruction": NaN, "output": "y"}'])
    return put(stem, ".jsonl", with_bad(rng, json_lines(alpaca(rng, rows_n(rng))), bad))


@category("jsonl_infinity_literal")
def _(stem, rng, k):
    bad = rng.choice([b'{"instruction": "x", "output": Infinity}', b'{"text": -Infinity}'])
    return put(stem, ".jsonl", with_bad(rng, json_lines(alpaca(rng, rows_n(rng))), bad))


@category("jsonl_long_line")
def _(stem, rng, k):
    bad = json.dumps({"instruction": "x", "output": long_text(rng, k.long_line)}).encode()
    return put(stem, ".jsonl", with_bad(rng, json_lines(alpaca(rng, rows_n(rng))), bad))


@category("jsonl_long_line_only")
def _(stem, rng, k):
    return put(stem, ".jsonl", json.dumps({"text": long_text(rng, k.long_line)}).encode() + b"\n")


@category("jsonl_long_line_no_newline")
def _(stem, rng, k):
    return put(stem, ".jsonl", jsonl(alpaca(rng, 3)) + b'{"text": "' + long_text(rng, k.long_line).encode())


@category("jsonl_long_tiny_values")
def _(stem, rng, k):
    return put(stem, ".jsonl", jsonl(alpaca(rng, 3)) + b"[" + b"[]," * (k.long_line // 3) + b"[]]\n")


@category("jsonl_many_bad_lines")
def _(stem, rng, k):
    """A file that isn't JSON Lines at all, long: every line a problem (millions of them at 50 MB)."""
    return put(stem, ".jsonl", jsonl(alpaca(rng, 1)) + rng.choice([b"[]\n", b"x\n", b"1\n"]) * (k.long_line // 2))


@category("jsonl_truncated_tail")
def _(stem, rng, k):
    data = jsonl(alpaca(rng, rows_n(rng)))
    return put(stem, ".jsonl", data[: len(data) - rng.randint(2, 20)])


@category("jsonl_malformed_lines")
def _(stem, rng, k):
    lines = json_lines(alpaca(rng, rows_n(rng)))
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(lines))
        cut = rng.randrange(1, len(lines[i]))
        lines[i] = lines[i][:cut] + rng.choice([b"", b",", b"}", b'"', b"\\"]) + lines[i][cut + 1:]
    return put(stem, ".jsonl", b"\n".join(lines) + b"\n")


@category("jsonl_non_objects")
def _(stem, rng, k):
    bad = rng.choice([b"[1, 2]", b'"just text"', b"42", b"null", b"true", b"[]", b'[{"instruction": "a"}]'])
    return put(stem, ".jsonl", with_bad(rng, json_lines(alpaca(rng, rows_n(rng))), bad))


@category("jsonl_only_non_objects")
def _(stem, rng, k):
    n = rows_n(rng)
    return put(stem, ".jsonl", b"\n".join(rng.choice([b"1", b'"x"', b"[]", b"null"]) for _ in range(n)) + b"\n")


@category("jsonl_empty")
def _(stem, rng, k):
    return put(stem, ".jsonl", b"")


@category("jsonl_whitespace")
def _(stem, rng, k):
    return put(stem, ".jsonl", bytes(rng.choice(b" \t\r\n") for _ in range(rng.randint(1, 200))))


@category("jsonl_blank_lines")
def _(stem, rng, k):
    return put(stem, ".jsonl", b"\n\n  \n".join(json_lines(alpaca(rng, rows_n(rng)))) + b"\n\n")


@category("jsonl_lone_surrogate")
def _(stem, rng, k):
    bad = rng.choice([b'{"instruction": "a\\ud800b", "output": "x"}', b'{"instruction": "a", "output": "\\udfff"}'])
    return put(stem, ".jsonl", with_bad(rng, json_lines(alpaca(rng, rows_n(rng))), bad))


@category("jsonl_mixed_types")
def _(stem, rng, k):
    rows = alpaca(rng, rows_n(rng))
    for r in rng.sample(rows, min(3, len(rows))):
        r["output"] = rng.choice([17, 2.5, True, None, ["a"], {"b": 1}])
    return put(stem, ".jsonl", jsonl(rows))


@category("jsonl_wrong_shape")
def _(stem, rng, k):
    return put(stem, ".jsonl", jsonl([{"foo": words(rng), "bar": words(rng)} for _ in range(rows_n(rng))]))


@category("jsonl_empty_objects")
def _(stem, rng, k):
    return put(stem, ".jsonl", b"{}\n" * rows_n(rng))


@category("jsonl_nulls")
def _(stem, rng, k):
    return put(stem, ".jsonl", jsonl([{"instruction": None, "output": None}] * 3 + alpaca(rng, 2)))


@category("jsonl_empty_strings")
def _(stem, rng, k):
    return put(stem, ".jsonl", jsonl([{"instruction": "", "output": ""}] * rows_n(rng)))


@category("jsonl_bad_roles")
def _(stem, rng, k):
    rows = messages(rng, rows_n(rng))
    rows[0]["messages"][0]["role"] = rng.choice(["wizard", 7, None, ["user"], "ASSISTANT"])
    return put(stem, ".jsonl", jsonl(rows))


@category("jsonl_messages_not_list")
def _(stem, rng, k):
    return put(stem, ".jsonl", jsonl([{"messages": rng.choice(["hi", 3, {"role": "user"}, None])}
                                      for _ in range(rows_n(rng))] + messages(rng, 1)))


@category("jsonl_turns_not_objects")
def _(stem, rng, k):
    return put(stem, ".jsonl", jsonl([{"messages": ["hi", 3, None, ["user", "x"]]}] + messages(rng, 2)))


@category("jsonl_content_not_text")
def _(stem, rng, k):
    rows = messages(rng, rows_n(rng))
    rows[-1]["messages"][1]["content"] = rng.choice([{"text": "x"}, [{"type": "text", "text": "x"}], 5, None])
    return put(stem, ".jsonl", jsonl(rows))


@category("jsonl_control_escapes")
def _(stem, rng, k):
    return put(stem, ".jsonl", jsonl([{"instruction": "".join(chr(rng.randrange(32)) for _ in range(20)),
                                       "output": "\x1b[31mred\x7f"} for _ in range(rows_n(rng))]))


@category("jsonl_unicode_odd")
def _(stem, rng, k):
    odd = ["\u202eRTL", "\ufeffBOM", "emoji \U0001f600", "\u2028sep", "combining e\u0301", "\U0010ffff", "\ufffe"]
    return put(stem, ".jsonl", jsonl([{"instruction": rng.choice(odd), "output": rng.choice(odd)}
                                      for _ in range(rows_n(rng))]))


@category("jsonl_many_keys")
def _(stem, rng, k):
    rows = alpaca(rng, 3)
    for r in rows:
        r.update({f"k{i}": i for i in range(rng.randint(100, 3000))})
    return put(stem, ".jsonl", jsonl(rows))


@category("jsonl_long_key")
def _(stem, rng, k):
    return put(stem, ".jsonl", jsonl([{"k" * rng.randint(1000, 50000): "v", "text": "t"}] * 2))


@category("jsonl_duplicate_keys")
def _(stem, rng, k):
    return put(stem, ".jsonl", b'{"instruction": "a", "instruction": 5, "output": "b", "output": null}\n' * rows_n(rng))


@category("jsonl_text_numbers")
def _(stem, rng, k):
    return put(stem, ".jsonl", jsonl([{"text": rng.choice([1, 2.5, -0.0, True])} for _ in range(rows_n(rng))]))


@category("jsonl_trailing_commas")
def _(stem, rng, k):
    return put(stem, ".jsonl", b'{"instruction": "a", "output": "b",}\n// comment\n' * rows_n(rng))


@category("jsonl_two_objects_per_line")
def _(stem, rng, k):
    return put(stem, ".jsonl", b"".join(a + b" " + b + b"\n" for a, b in zip(json_lines(alpaca(rng, 4)),
                                                                            json_lines(alpaca(rng, 4)))))


@category("jsonl_pretty_printed")
def _(stem, rng, k):
    return put(stem, ".jsonl", "\n".join(json.dumps(r, indent=2) for r in alpaca(rng, rows_n(rng))).encode())


@category("jsonl_gzip")
def _(stem, rng, k):
    return put(stem, ".jsonl", gzip.compress(jsonl(alpaca(rng, rows_n(rng))), mtime=0))


@category("jsonl_random_text")
def _(stem, rng, k):
    return put(stem, ".jsonl", "\n".join(words(rng, 1, 30) for _ in range(rows_n(rng))).encode())


@category("jsonl_huge_string_escapes")
def _(stem, rng, k):
    return put(stem, ".jsonl", b'{"text": "' + b"\\u00e9" * (k.long_line // 6) + b'"}\n' + jsonl(alpaca(rng, 2)))


@category("jsonl_array_values")
def _(stem, rng, k):
    n = rows_n(rng)
    return put(stem, ".jsonl", jsonl([{"instruction": [words(rng)], "output": [words(rng)]} for _ in range(n)]))


# ---- JSON (one document) ----------------------------------------------------------------------------

def json_doc(value) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


@category("json_array")
def _(stem, rng, k):
    return put(stem, ".json", json.dumps(alpaca(rng, rows_n(rng)), indent=rng.choice([None, 2])).encode())


@category("json_data_wrapper")
def _(stem, rng, k):
    return put(stem, ".json", json_doc({"data": alpaca(rng, rows_n(rng)), "version": 1}))


@category("json_data_not_list")
def _(stem, rng, k):
    return put(stem, ".json", json_doc({"data": {"instruction": "a", "output": "b"}}))


@category("json_single_object")
def _(stem, rng, k):
    return put(stem, ".json", json_doc(alpaca(rng, 1)[0]))


@category("json_strings")
def _(stem, rng, k):
    return put(stem, ".json", json_doc([words(rng) for _ in range(rows_n(rng))]))


@category("json_numbers")
def _(stem, rng, k):
    return put(stem, ".json", json_doc([rng.random() for _ in range(rows_n(rng))]))


@category("json_mixed_items")
def _(stem, rng, k):
    items = alpaca(rng, 4) + [1, "x", None, [], [alpaca(rng, 1)[0]], True]
    rng.shuffle(items)
    return put(stem, ".json", json_doc(items))


@category("json_deep_document")
def _(stem, rng, k):
    return put(stem, ".json", deep(rng.randint(1000, DEEP), rng.choice("[{")).encode())


@category("json_deep_item")
def _(stem, rng, k):
    items = [json.dumps(r) for r in alpaca(rng, rows_n(rng))]
    items.insert(rng.randrange(len(items)), '{"instruction": "x", "output": ' + deep(rng.randint(1000, DEEP)) + "}")
    return put(stem, ".json", ("[\n" + ",\n".join(items) + "\n]").encode())


@category("json_huge_int")
def _(stem, rng, k):
    items = [json.dumps(r) for r in alpaca(rng, rows_n(rng))]
    items.insert(rng.randrange(len(items)), '{"instruction": "x", "output": ' + huge_int(rng) + "}")
    return put(stem, ".json", ("[\n" + ",\n".join(items) + "\n]").encode())


@category("json_nan_values")
def _(stem, rng, k):
    return put(stem, ".json", b'[{"instruction": "a", "output": NaN}, {"instruction": Infinity, "output": "b"},'
                              b' {"instruction": "c", "output": "d"}]')


@category("json_malformed")
def _(stem, rng, k):
    data = json.dumps(alpaca(rng, rows_n(rng)), indent=2).encode()
    i = rng.randrange(1, len(data) - 1)
    return put(stem, ".json", data[:i] + rng.choice([b"}", b",,", b'"', b"\\"]) + data[i:])


@category("json_truncated")
def _(stem, rng, k):
    data = json.dumps(alpaca(rng, rows_n(rng)), indent=2).encode()
    return put(stem, ".json", data[: rng.randrange(1, len(data) - 1)])


@category("json_bom")
def _(stem, rng, k):
    return put(stem, ".json", b"\xef\xbb\xbf" + json_doc(alpaca(rng, rows_n(rng))))


@category("json_utf16")
def _(stem, rng, k):
    return put(stem, ".json", json.dumps(alpaca(rng, rows_n(rng))).encode(rng.choice(["utf-16", "utf-16-le"])))


@category("json_latin1")
def _(stem, rng, k):
    return put(stem, ".json", '[{"instruction": "café", "output": "x"}]'.encode("latin-1"))


@category("json_empty_array")
def _(stem, rng, k):
    return put(stem, ".json", rng.choice([b"[]", b"{}", b'{"data": []}']))


@category("json_whitespace")
def _(stem, rng, k):
    return put(stem, ".json", bytes(rng.choice(b" \t\r\n") for _ in range(rng.randint(1, 50))))


@category("json_empty")
def _(stem, rng, k):
    return put(stem, ".json", b"")


@category("json_scalar")
def _(stem, rng, k):
    return put(stem, ".json", rng.choice([b"42", b"null", b'"text"', b"true", b"1e999", b"NaN"]))


@category("json_lines_inside")
def _(stem, rng, k):
    return put(stem, ".json", jsonl(alpaca(rng, rows_n(rng))))


@category("json_lines_deep_first")
def _(stem, rng, k):
    return put(stem, ".json", deep(DEEP).encode() + b"\n" + jsonl(alpaca(rng, 3)))


@category("json_lines_huge_int_first")
def _(stem, rng, k):
    return put(stem, ".json", ('{"instruction": ' + huge_int(rng) + "}\n").encode() + jsonl(alpaca(rng, 3)))


@category("json_binary_junk")
def _(stem, rng, k):
    return put(stem, ".json", junk(rng, rng.randint(1, 4000)))


@category("json_nul_bytes")
def _(stem, rng, k):
    return put(stem, ".json", b'[{"instruction": "a\x00", "output": "b"}]\x00\x00')


@category("json_minified_long")
def _(stem, rng, k):
    rows = [{"instruction": words(rng), "output": words(rng)} for _ in range(max(1, k.long_line // 60))]
    return put(stem, ".json", json.dumps(rows).encode())


# ---- CSV and TSV -----------------------------------------------------------------------------------

def csv_file(stem: Path, text: str, suffix: str = ".csv", encoding: str = "utf-8") -> Path:
    return put(stem, suffix, text.encode(encoding))


@category("csv_alpaca")
def _(stem, rng, k):
    return csv_file(stem, csv_text(["instruction", "output"], qa_rows(rng, rows_n(rng))))


@category("csv_question_answer")
def _(stem, rng, k):
    return csv_file(stem, csv_text(["question", "answer"], qa_rows(rng, rows_n(rng)), eol="\r\n"))


@category("csv_bare_cr_header")
def _(stem, rng, k):
    return csv_file(stem, "instruc\rtion,output\n" + csv_text(["a", "b"], qa_rows(rng, 3)).split("\n", 1)[1])


@category("csv_bare_cr_rows")
def _(stem, rng, k):
    rows = qa_rows(rng, rows_n(rng))
    text = csv_text(["instruction", "output"], rows)
    lines = text.split("\n")
    i = rng.randrange(1, len(lines) - 1)
    lines[i] = lines[i][: len(lines[i]) // 2] + "\r" + lines[i][len(lines[i]) // 2:]
    return csv_file(stem, "\n".join(lines))


@category("csv_cr_only_lines")
def _(stem, rng, k):
    return csv_file(stem, csv_text(["instruction", "output"], qa_rows(rng, rows_n(rng)), eol="\r"))


@category("csv_huge_header_field")
def _(stem, rng, k):
    return csv_file(stem, "x" * (131_072 + rng.randint(1, 5000)) + ",output\nq,a\n")


@category("csv_huge_quoted_header")
def _(stem, rng, k):
    return csv_file(stem, '"' + "h" * (131_072 + rng.randint(1, 5000)) + '",output\nq,a\n')


@category("csv_huge_field")
def _(stem, rng, k):
    rows = qa_rows(rng, rows_n(rng))
    rows.insert(rng.randrange(len(rows)), ["q", "y" * (131_072 + rng.randint(1, 5000))])
    return csv_file(stem, csv_text(["instruction", "output"], rows))


@category("csv_huge_field_late")
def _(stem, rng, k):
    rows = qa_rows(rng, k.late_rows + 5)
    rows.insert(k.late_rows + rng.randint(0, 4), ["q", "y" * 140_000])
    return csv_file(stem, csv_text(["instruction", "output"], rows))


@category("csv_bare_cr_late")
def _(stem, rng, k):
    text = csv_text(["instruction", "output"], qa_rows(rng, k.late_rows + 5))
    lines = text.split("\n")
    i = k.late_rows + rng.randint(1, 4)
    lines[i] = "a\rb," + lines[i]
    return csv_file(stem, "\n".join(lines))


@category("csv_ragged")
def _(stem, rng, k):
    rows = qa_rows(rng, rows_n(rng))
    for r in rng.sample(rows, min(3, len(rows))):
        r.extend(["extra"] * rng.randint(1, 3)) if rng.random() < .5 else r.pop()
    return csv_file(stem, csv_text(["instruction", "output"], rows))


@category("csv_unclosed_quote")
def _(stem, rng, k):
    text = csv_text(["instruction", "output"], qa_rows(rng, rows_n(rng)))
    lines = text.split("\n")
    i = rng.randrange(1, len(lines) - 1)
    lines[i] = '"' + lines[i]
    return csv_file(stem, "\n".join(lines))


@category("csv_stray_quotes")
def _(stem, rng, k):
    return csv_file(stem, 'instruction,output\nsay "hi",ok\n"a"b,c\n"x""y",z\n')


@category("csv_nul_bytes")
def _(stem, rng, k):
    return put(stem, ".csv", b"instruction,output\na\x00b,c\n\x00,\x00\nd,e\n")


@category("csv_latin1")
def _(stem, rng, k):
    rows = qa_rows(rng, rows_n(rng))
    rows.insert(rng.randrange(len(rows)), ["café", "naïve"])
    return csv_file(stem, csv_text(["instruction", "output"], rows), encoding="latin-1")


@category("csv_utf16")
def _(stem, rng, k):
    return csv_file(stem, csv_text(["instruction", "output"], qa_rows(rng, rows_n(rng))), encoding="utf-16")


@category("csv_bom")
def _(stem, rng, k):
    return csv_file(stem, "\ufeff" + csv_text(["instruction", "output"], qa_rows(rng, rows_n(rng))))


@category("csv_empty_header")
def _(stem, rng, k):
    return csv_file(stem, rng.choice([",\n", "\n", " , \n"]) + "a,b\nc,d\n")


@category("csv_header_only")
def _(stem, rng, k):
    return csv_file(stem, "instruction,output\n")


@category("csv_empty")
def _(stem, rng, k):
    return put(stem, ".csv", b"")


@category("csv_whitespace")
def _(stem, rng, k):
    return put(stem, ".csv", bytes(rng.choice(b" \t\r\n") for _ in range(rng.randint(1, 80))))


@category("csv_duplicate_headers")
def _(stem, rng, k):
    return csv_file(stem, csv_text(["instruction", "output", "output"], [r + ["dup"] for r in qa_rows(rng, 4)]))


@category("csv_many_columns")
def _(stem, rng, k):
    n = rng.randint(100, 3000)
    return csv_file(stem, csv_text(["instruction", "output"] + [f"c{i}" for i in range(n)],
                                   [r + ["v"] * n for r in qa_rows(rng, 3)]))


@category("csv_binary_junk")
def _(stem, rng, k):
    return put(stem, ".csv", junk(rng, rng.randint(1, 4000)))


@category("csv_long_line")
def _(stem, rng, k):
    rows = qa_rows(rng, rows_n(rng))
    rows.insert(rng.randrange(len(rows)), ["q", long_text(rng, k.long_line)])
    return csv_file(stem, csv_text(["instruction", "output"], rows))


@category("csv_many_ragged_lines")
def _(stem, rng, k):
    return csv_file(stem, "instruction,output\nq,a\n" + "x\n" * (k.long_line // 2))


@category("csv_semicolons")
def _(stem, rng, k):
    return csv_file(stem, csv_text(["instruction", "output"], qa_rows(rng, rows_n(rng)), sep=";"))


@category("csv_multiline_quoted")
def _(stem, rng, k):
    return csv_file(stem, csv_text(["instruction", "output"], [[words(rng) + "\n" + words(rng), words(rng) + "\r\n"]
                                                                for _ in range(rows_n(rng))]))


@category("csv_wrong_shape")
def _(stem, rng, k):
    return csv_file(stem, csv_text(["foo", "bar", "baz"], [r + ["z"] for r in qa_rows(rng, rows_n(rng))]))


@category("csv_numeric_cells")
def _(stem, rng, k):
    return csv_file(stem, csv_text(["instruction", "output"], [[str(rng.random()),
                                                                 rng.choice(["NaN", "nan", "inf", ""])]
                                                                for _ in range(rows_n(rng))]))


@category("tsv_alpaca")
def _(stem, rng, k):
    return csv_file(stem, csv_text(["instruction", "output"], qa_rows(rng, rows_n(rng)), sep="\t"), ".tsv")


@category("tsv_quotes_and_commas")
def _(stem, rng, k):
    return csv_file(stem, 'instruction\toutput\na, "b"\tc,d\n"e\tf"\t"g\n"\n', ".tsv")


@category("tsv_bare_cr")
def _(stem, rng, k):
    return csv_file(stem, "instruction\toutput\nx\ry\tz\n" + csv_text(["a", "b"], qa_rows(rng, 3), sep="\t"), ".tsv")


@category("tsv_huge_field")
def _(stem, rng, k):
    return csv_file(stem, "instruction\toutput\nq\t" + "z" * (131_072 + rng.randint(1, 999)) + "\n", ".tsv")


@category("tsv_ragged")
def _(stem, rng, k):
    return csv_file(stem, "instruction\toutput\na\tb\tc\nd\ne\tf\n", ".tsv")


@category("tsv_that_is_csv")
def _(stem, rng, k):
    return csv_file(stem, csv_text(["instruction", "output"], qa_rows(rng, rows_n(rng))), ".tsv")


# ---- Parquet ---------------------------------------------------------------------------------------

def texts(rng: random.Random, n: int) -> list[str]:
    return [words(rng) for _ in range(n)]


@category("parquet_alpaca")
def _(stem, rng, k):
    n = rows_n(rng)
    return parquet(stem, {"instruction": texts(rng, n), "output": texts(rng, n)})


@category("parquet_messages")
def _(stem, rng, k):
    import pyarrow as pa

    return parquet(stem, {"messages": pa.array([m["messages"] for m in messages(rng, 5)])})


@category("parquet_binary_column")
def _(stem, rng, k):
    import pyarrow as pa

    n = rows_n(rng)
    return parquet(stem, {"instruction": texts(rng, n),
                          "output": pa.array([junk(rng, 5) for _ in range(n)], pa.binary())})


@category("parquet_binary_utf8ish")
def _(stem, rng, k):
    import pyarrow as pa

    n = rows_n(rng)
    return parquet(stem, {"text": pa.array([w.encode() for w in texts(rng, n)], pa.large_binary())})


@category("parquet_fixed_binary")
def _(stem, rng, k):
    import pyarrow as pa

    n = rows_n(rng)
    return parquet(stem, {"instruction": texts(rng, n), "output": pa.array([junk(rng, 4) for _ in range(n)],
                                                                           pa.binary(4))})


@category("parquet_float_nan")
def _(stem, rng, k):
    n = rows_n(rng)
    every = rng.choice([1, 3])  # all NaN, or NaN among numbers
    return parquet(stem, {"instruction": texts(rng, n), "output": [float("nan") if i % every == 0 else 1.5
                                                                   for i in range(n)]})


@category("parquet_float_inf")
def _(stem, rng, k):
    n = rows_n(rng)
    return parquet(stem, {"instruction": texts(rng, n), "output": [float("inf")] + [
        rng.choice([float("inf"), -float("inf"), 2.0]) for _ in range(n - 1)]})


@category("parquet_struct_column")
def _(stem, rng, k):
    n = rows_n(rng)
    return parquet(stem, {"instruction": [{"a": words(rng), "b": i} for i in range(n)], "output": texts(rng, n)})


@category("parquet_list_column")
def _(stem, rng, k):
    n = rows_n(rng)
    return parquet(stem, {"instruction": texts(rng, n), "output": [texts(rng, 2) for _ in range(n)]})


@category("parquet_map_column")
def _(stem, rng, k):
    import pyarrow as pa

    n = rows_n(rng)
    return parquet(stem, {"text": pa.array([[("k", words(rng))] for _ in range(n)], pa.map_(pa.string(), pa.string()))})


@category("parquet_truncated")
def _(stem, rng, k):
    data = parquet_bytes(rng, rows_n(rng) * 10)
    return put(stem, ".parquet", data[: rng.randrange(1, len(data) - 1)])


@category("parquet_garbage")
def _(stem, rng, k):
    return put(stem, ".parquet", junk(rng, rng.randint(1, 4000)))


@category("parquet_magic_only")
def _(stem, rng, k):
    return put(stem, ".parquet", b"PAR1" + junk(rng, rng.randint(0, 200)) + b"PAR1")


@category("parquet_flipped_bytes")
def _(stem, rng, k):
    data = bytearray(parquet_bytes(rng, rows_n(rng) * 5))
    for _ in range(rng.randint(1, 20)):
        data[rng.randrange(4, len(data) - 8)] = rng.getrandbits(8)
    return put(stem, ".parquet", bytes(data))


@category("parquet_zero_rows")
def _(stem, rng, k):
    import pyarrow as pa

    return parquet(stem, {"instruction": pa.array([], pa.string()), "output": pa.array([], pa.string())})


@category("parquet_null_column")
def _(stem, rng, k):
    import pyarrow as pa

    n = rows_n(rng)
    return parquet(stem, {"instruction": texts(rng, n), "output": pa.nulls(n)})


@category("parquet_int_column")
def _(stem, rng, k):
    n = rows_n(rng)
    return parquet(stem, {"instruction": texts(rng, n), "output": [rng.randint(-9, 2**62) for _ in range(n)]})


@category("parquet_bool_column")
def _(stem, rng, k):
    n = rows_n(rng)
    return parquet(stem, {"prompt": texts(rng, n), "completion": [rng.random() < .5 for _ in range(n)]})


@category("parquet_timestamp_column")
def _(stem, rng, k):
    import datetime

    n = rows_n(rng)
    return parquet(stem, {"instruction": texts(rng, n),
                          "output": [datetime.datetime(2020, 1, 1) + datetime.timedelta(days=i) for i in range(n)]})


@category("parquet_timestamp_overflow")
def _(stem, rng, k):
    import pyarrow as pa

    n = rows_n(rng)
    return parquet(stem, {"instruction": texts(rng, n),
                          "output": pa.array([2**62] * n, pa.int64()).cast(pa.timestamp("us"))})


@category("parquet_date_overflow")
def _(stem, rng, k):
    import pyarrow as pa

    n = rows_n(rng)
    return parquet(stem, {"text": pa.array([2**30] * n, pa.int32()).cast(pa.date32())})


@category("parquet_decimal_column")
def _(stem, rng, k):
    import decimal

    n = rows_n(rng)
    return parquet(stem, {"instruction": texts(rng, n), "output": [decimal.Decimal(f"{i}.50") for i in range(n)]})


@category("parquet_dictionary_column")
def _(stem, rng, k):
    import pyarrow as pa

    n = rows_n(rng)
    return parquet(stem, {"instruction": pa.array(texts(rng, n)).dictionary_encode(), "output": texts(rng, n)})


@category("parquet_large_string")
def _(stem, rng, k):
    import pyarrow as pa

    n = rows_n(rng)
    return parquet(stem, {"text": pa.array([words(rng, 5, 50) for _ in range(n)], pa.large_string())})


@category("parquet_mixed_nulls")
def _(stem, rng, k):
    n = rows_n(rng)
    return parquet(stem, {"instruction": [None if rng.random() < .3 else words(rng) for _ in range(n)],
                          "output": [None if rng.random() < .3 else words(rng) for _ in range(n)]})


@category("parquet_wrong_shape")
def _(stem, rng, k):
    n = rows_n(rng)
    return parquet(stem, {"colA": texts(rng, n), "colB": list(range(n))})


@category("parquet_nan_text_column")
def _(stem, rng, k):
    """What pandas writes for a text column with missing values when it typed the column as float."""
    n = rows_n(rng)
    return parquet(stem, {"prompt": texts(rng, n), "completion": [float("nan")] * n})


# ---- plain text ------------------------------------------------------------------------------------

@category("txt_paragraphs")
def _(stem, rng, k):
    return put(stem, ".txt", "\n\n".join(words(rng, 5, 60) for _ in range(rows_n(rng))).encode())


@category("txt_empty")
def _(stem, rng, k):
    return put(stem, ".txt", b"")


@category("txt_whitespace")
def _(stem, rng, k):
    return put(stem, ".txt", bytes(rng.choice(b" \t\r\n\x0b\x0c") for _ in range(rng.randint(1, 200))))


@category("txt_latin1")
def _(stem, rng, k):
    return put(stem, ".txt", ("café " + words(rng)).encode("latin-1") + b"\n\n" + words(rng).encode())


@category("txt_utf16")
def _(stem, rng, k):
    return put(stem, ".txt", "\n\n".join(words(rng) for _ in range(5)).encode("utf-16"))


@category("txt_nul_bytes")
def _(stem, rng, k):
    return put(stem, ".txt", b"abc\x00def\n\n\x00\x00\nghi")


@category("txt_binary_junk")
def _(stem, rng, k):
    return put(stem, ".txt", junk(rng, rng.randint(1, 4000)))


@category("txt_long_line")
def _(stem, rng, k):
    return put(stem, ".txt", words(rng).encode() + b"\n\n" + long_text(rng, k.long_line).encode() + b"\n\nend\n")


@category("txt_cr_only")
def _(stem, rng, k):
    return put(stem, ".txt", "\r\r".join(words(rng) for _ in range(rows_n(rng))).encode())


@category("txt_bom")
def _(stem, rng, k):
    return put(stem, ".txt", b"\xef\xbb\xbf" + words(rng).encode())


@category("txt_control_chars")
def _(stem, rng, k):
    return put(stem, ".txt", "".join(chr(rng.randrange(32)) for _ in range(300)).encode())


# ---- folders -----------------------------------------------------------------------------------------

def folder(stem: Path) -> Path:
    stem.mkdir(parents=True, exist_ok=True)
    return stem


@category("folder_mixed")
def _(stem, rng, k):
    d = folder(stem)
    (d / "a.jsonl").write_bytes(jsonl(alpaca(rng, 3)))
    (d / "b.csv").write_text(csv_text(["instruction", "output"], qa_rows(rng, 3)))
    (d / "c.txt").write_text(words(rng))
    return d


@category("folder_bad_members")
def _(stem, rng, k):
    d = folder(stem)
    (d / "good.jsonl").write_bytes(jsonl(alpaca(rng, 3)))
    (d / "empty.jsonl").write_bytes(b"")
    (d / "junk.parquet").write_bytes(junk(rng, 100))
    (d / "deep.jsonl").write_bytes(deep(DEEP).encode() + b"\n")
    return d


@category("folder_all_bad")
def _(stem, rng, k):
    d = folder(stem)
    (d / "a.jsonl").write_bytes(b"\n")
    (d / "b.csv").write_bytes(b"x" * 140_000 + b"\n")
    (d / "c.json").write_bytes(huge_int(rng).encode())
    return d


@category("folder_no_data")
def _(stem, rng, k):
    d = folder(stem)
    (d / "notes.md").write_text("hi")
    return d


@category("folder_hidden_only")
def _(stem, rng, k):
    d = folder(stem)
    (d / ".cache").mkdir(exist_ok=True)
    (d / ".cache" / "a.jsonl").write_bytes(jsonl(alpaca(rng, 2)))
    return d


@category("folder_nested_txt")
def _(stem, rng, k):
    d = folder(stem)
    for i in range(3):
        (d / f"sub{i}").mkdir(exist_ok=True)
        (d / f"sub{i}" / "doc.txt").write_text(words(rng, 5, 40))
    return d


def save_to_disk(stem: Path, rows: list[dict]) -> Path:
    import datasets

    datasets.disable_progress_bars()
    datasets.Dataset.from_list(rows).save_to_disk(str(stem))
    return stem


@category("arrow_alpaca")
def _(stem, rng, k):
    return save_to_disk(stem, alpaca(rng, rows_n(rng)))


@category("arrow_binary_column")
def _(stem, rng, k):
    return save_to_disk(stem, [{"instruction": words(rng), "output": junk(rng, 5)} for _ in range(rows_n(rng))])


@category("arrow_corrupt_info")
def _(stem, rng, k):
    d = folder(stem)
    (d / "dataset_info.json").write_bytes(junk(rng, 50))
    (d / "state.json").write_text("{}")
    return d


@category("arrow_corrupt_data")
def _(stem, rng, k):
    d = save_to_disk(stem, alpaca(rng, 50))
    for f in d.glob("*.arrow"):
        f.write_bytes(f.read_bytes()[: rng.randrange(1, max(2, f.stat().st_size - 1))])
    return d


@category("arrow_dict_wrong_split")
def _(stem, rng, k):
    import datasets

    datasets.disable_progress_bars()
    datasets.DatasetDict({"test": datasets.Dataset.from_list(alpaca(rng, 3))}).save_to_disk(str(stem))
    return stem
