"""Data fuzz benchmark: the whole fuzz corpus, and lines tens of MB long, through the studio's readers.

    python benchmarks/data_fuzz.py [--work DIR] [--per-category 20] [--big-mb 50] [--jobs 2] [--src DIR]
                                   [--ways inspect,preflight,datasets] [--no-big] [--no-corpus]

Writes the corpus of tests/core/data_fuzz.py (every category, ``--per-category`` files each) and runs
each file three ways, in child processes (a crash costs only the case it was on): ``studio data
inspect`` (files under 8 MB tokenize in memory), preflight's data check (the first 2,000 rows), and
inspect through the datasets path that files over 8 MB take. A traceback is any exception other than
DataError that escapes; an unplaced message is one that doesn't name the file (or a skipped row's
line). A file holding binary data or NaN (data_fuzz.MUST_FLAG) that inspect reads without a problem
is garbage unflagged: it would train on the value's repr. Then each big case (a ``--big-mb`` line in
JSONL, CSV or .txt; a file of nothing but bad lines) runs alone in a fresh process whose peak RSS is
measured; a process over 6 GiB is killed and counted as such.

``--src DIR`` imports the studio from another checkout (e.g. ``git archive COMMIT studio``
unpacked there), to measure the code before a change. Prints tables and writes results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests" / "core"
WAYS = ("inspect", "preflight", "datasets")
MEMORY_LIMIT = 6 << 30
BIG_CASES = (("jsonl_long_line_only", "JSONL, one line"), ("jsonl_long_line", "JSONL, long line among rows"),
             ("jsonl_long_tiny_values", "JSONL, line of [] values"), ("csv_long_line", "CSV, long field"),
             ("txt_long_line", "TXT, long paragraph"), ("jsonl_huge_string_escapes", "JSONL, \\u escapes"),
             ("jsonl_many_bad_lines", "JSONL, every line bad"), ("csv_many_ragged_lines", "CSV, every row ragged"))
BIG_WAYS = ("inspect", "preflight")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--per-category", type=int, default=20)
    ap.add_argument("--big-mb", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--src", type=Path, default=ROOT, help="checkout whose studio package is measured")
    ap.add_argument("--ways", default=",".join(WAYS))
    ap.add_argument("--no-big", action="store_true")
    ap.add_argument("--no-corpus", action="store_true")
    ap.add_argument("--chunk", type=Path, help=argparse.SUPPRESS)  # child mode: run the cases listed there
    ap.add_argument("--big", nargs=3, metavar=("CATEGORY", "WAY", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each table row shows when measured, also in a log file
    setup_paths(args.src)
    if args.chunk:
        return run_chunk(args.chunk, args.ways.split(","))
    if args.big:
        return run_big_child(*args.big)
    work = args.work or Path(tempfile.mkdtemp(prefix="data-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    results = {"src": str(args.src), "corpus": {} if args.no_corpus else run_corpus(work, args),
               "big": [] if args.no_big else run_bigs(work, args)}
    (work / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\nresults: {work / 'results.json'}")


def setup_paths(src: Path) -> None:
    for p in (str(TESTS), str(src)):
        if p not in sys.path:
            sys.path.insert(0, p)


def child_env(src: Path, home: Path) -> dict:
    return dict(os.environ, STUDIO_HOME=str(home), PYTHONPATH=str(src), HF_HUB_OFFLINE="1",
                TOKENIZERS_PARALLELISM="false", QT_QPA_PLATFORM="offscreen")


# ---- the corpus -------------------------------------------------------------------------------

def run_corpus(work: Path, args) -> dict:
    from data_fuzz import CATEGORIES, write_corpus

    t = time.perf_counter()
    cases = write_corpus(work / "corpus", per_category=args.per_category)
    print(f"corpus: {len(cases):,} files in {len(CATEGORIES)} categories, written in {time.perf_counter() - t:.0f} s")
    chunks = [cases[i::max(1, args.jobs * 8)] for i in range(max(1, args.jobs * 8))]
    lines = run_chunks(work, chunks, args)
    summary = summarise(lines, cases, args.ways.split(","))
    print_corpus(summary, len(cases), len(CATEGORIES), time.perf_counter() - t)
    return summary


def run_chunks(work: Path, chunks: list, args) -> list[dict]:
    running: list[tuple[subprocess.Popen, Path]] = []
    out: list[dict] = []
    pending = [[[c.category, c.index, str(c.path)] for c in chunk] for chunk in chunks]
    n = 0
    while pending or running:
        while pending and len(running) < args.jobs:
            listing = work / f"chunk-{n}.json"
            n += 1
            listing.write_text(json.dumps(pending.pop(0)))
            home = Path(tempfile.mkdtemp(prefix="home-", dir=work))
            cmd = [sys.executable, __file__, "--chunk", str(listing), "--src", str(args.src), "--ways", args.ways]
            running.append((subprocess.Popen(cmd, env=child_env(args.src, home), stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL), listing))
        time.sleep(0.2)
        for proc, listing in list(running):
            if proc.poll() is not None:
                running.remove((proc, listing))
                lines, rest = read_chunk(listing, proc.returncode, args.ways.split(","))
                out.extend(lines)
                if rest:
                    pending.append(rest)
    return out


def read_chunk(listing: Path, code: int, ways: list[str]) -> tuple[list[dict], list]:
    """The chunk's results; when the child died, its case in progress counts as a traceback and the rest rerun."""
    done = listing.with_suffix(".out")
    lines = [json.loads(ln) for ln in done.read_text().splitlines()] if done.exists() else []
    if code == 0:
        return lines, []
    listed = json.loads(listing.read_text())
    seen = {(d["category"], d["index"], d["way"]) for d in lines}
    for i, (category, index, _) in enumerate(listed):
        way = next((w for w in ways if (category, index, w) not in seen), None)
        if way is not None:
            lines.append({"category": category, "index": index, "way": way,
                          "error": f"the process died (exit {code})", "unplaced": []})
            return lines, listed[i + 1:]
    return lines, []


def run_chunk(listing: Path, ways: list[str]) -> None:
    """Child: every listed case, every way, one JSON line each (flushed, so a crash keeps the rest)."""
    from data_fuzz import Case
    from data_fuzz_run import inspect, preflight
    from data_support import make_tokenizer_dir

    import studio.core.data.pipeline as pipeline

    model = make_tokenizer_dir(Path(os.environ["STUDIO_HOME"]) / "tok")
    small = pipeline.SMALL_BYTES
    with listing.with_suffix(".out").open("w") as out:
        for category, index, path in json.loads(listing.read_text()):
            case = Case(category, index, Path(path))
            for way in ways:
                pipeline.SMALL_BYTES = 0 if way == "datasets" else small
                o = preflight(case) if way == "preflight" else inspect(case, model)
                out.write(json.dumps({"category": category, "index": index, "way": way, "error": o.error,
                                      "unplaced": o.unplaced[:3], "silent": o.silent}) + "\n")
                out.flush()


def summarise(lines: list[dict], cases: list, ways: list[str]) -> dict:
    per_way = {}
    for way in ways:
        mine = [d for d in lines if d["way"] == way]
        errors = [d for d in mine if d["error"]]
        unplaced = [d for d in mine if d["unplaced"] and not d["error"]]
        kinds = Counter(re.sub(r"\d+", "N", last_line(d["error"])) for d in errors)
        cats = defaultdict(int)
        for d in errors:
            cats[d["category"]] += 1
        silent = sorted({d["category"] for d in mine if d.get("silent")})
        per_way[way] = {"tried": len(mine), "tracebacks": len(errors), "unplaced": len(unplaced),
                        "silent": sum(1 for d in mine if d.get("silent")), "silent_categories": silent,
                        "categories_with_tracebacks": dict(sorted(cats.items())),
                        "errors": dict(kinds.most_common()),
                        "unplaced_examples": [f"{d['category']}: {d['unplaced'][0][:160]}" for d in unplaced[:10]]}
    return {"files": len(cases), "categories": len({c.category for c in cases}), "ways": per_way}


def last_line(error: str) -> str:
    tail = error.strip().splitlines()[-1] if error.strip() else ""
    return tail[:140]


def print_corpus(s: dict, files: int, categories: int, seconds: float) -> None:
    print(f"\nFuzz corpus: {files:,} files, {categories} categories ({seconds:.0f} s)")
    print(f"{'way':<11}{'files tried':>12}{'tracebacks':>12}{'categories hit':>16}{'unplaced msgs':>15}"
          f"{'garbage unflagged':>19}")
    for way, w in s["ways"].items():
        silent = f"{w['silent']:,}" if way != "preflight" else "-"
        print(f"{way:<11}{w['tried']:>12,}{w['tracebacks']:>12,}{len(w['categories_with_tracebacks']):>16}"
              f"{w['unplaced']:>15,}{silent:>19}")
    for way, w in s["ways"].items():
        for err, n in list(w["errors"].items())[:12]:
            print(f"  {way}: {n:4d} x {err}")
        for ex in w["unplaced_examples"][:5]:
            print(f"  {way} unplaced: {ex}")
        if w["silent_categories"]:
            print(f"  {way} garbage read without a word: {', '.join(w['silent_categories'])}")


# ---- the big pathological lines ---------------------------------------------------------------

def run_bigs(work: Path, args) -> list[dict]:
    from data_fuzz import Knobs, write_case

    folder = work / "big"
    folder.mkdir(exist_ok=True)
    knobs = Knobs(long_line=args.big_mb << 20)
    rows = []
    print(f"\nPathological lines of {args.big_mb} MB (each alone in a fresh process; killed over "
          f"{MEMORY_LIMIT >> 30} GiB)")
    print(f"{'case':<34}{'file MB':>8}  {'way':<10}{'result':<44}{'peak RSS':>10}{'wall':>8}")
    for category, title in BIG_CASES:
        case = write_case(folder, category, 0, knobs=knobs)
        for way in BIG_WAYS:
            r = run_big(case.path, category, way, args.src, work)
            r.update(case=title, category=category, way=way, mb=case.path.stat().st_size / 2**20)
            rows.append(r)
            print(f"{title:<34}{r['mb']:>8.0f}  {way:<10}{r['result'][:43]:<44}"
                  f"{r['peak_mb']:>8,.0f}MB{r['wall']:>7.1f}s")
        case.path.unlink()
    return rows


def run_big(path: Path, category: str, way: str, src: Path, work: Path) -> dict:
    import psutil

    home = Path(tempfile.mkdtemp(prefix="home-big-", dir=work))
    cmd = [sys.executable, __file__, "--big", category, way, str(path), "--src", str(src)]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=child_env(src, home), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    watched, killed = psutil.Process(proc.pid), False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # wait4, not poll(): it gives the child's peak RSS
        if pid:
            break
        try:
            if watched.memory_info().rss > MEMORY_LIMIT:
                proc.kill()
                killed = True
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.05)
    code = os.waitstatus_to_exitcode(status)
    out = proc.stdout.read() if proc.stdout else ""
    result = next((json.loads(ln[7:]) for ln in out.splitlines() if ln.startswith("RESULT ")), None)
    peak = usage.ru_maxrss / 1024
    if killed:
        text = f"killed: over {MEMORY_LIMIT >> 30} GiB"
    elif result is None:
        text = f"process died (exit {code})"
    else:
        text = result["result"]
    return {"result": text, "peak_mb": peak, "wall": time.perf_counter() - t}


def run_big_child(category: str, way: str, path: str) -> None:
    import resource

    from data_fuzz import Case
    from data_fuzz_run import inspect, preflight
    from data_support import make_tokenizer_dir

    case = Case(category, 0, Path(path))
    model = make_tokenizer_dir(Path(os.environ["STUDIO_HOME"]) / "tok")
    o = preflight(case) if way == "preflight" else inspect(case, model)
    if o.error:
        result = "traceback: " + last_line(o.error)
    else:
        result = "reported: " + (o.messages[0].replace(str(case.path), "FILE") if o.messages else "no problems")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"result": result, "peak_mb": peak}))


if __name__ == "__main__":
    main()
