"""Fault injection: SIGKILLs at random moments and disks that fill mid-run, against the real studio.

    python benchmarks/fault_injection.py kills [--n 40] [--seed 0]
    python benchmarks/fault_injection.py cli-kills [--n 6]
    python benchmarks/fault_injection.py diskfull [--n 12] [--seed 0]      # needs root (mounts a tmpfs)
    python benchmarks/fault_injection.py all

kills      Trains the demo (400 steps, a checkpoint every 20) in a worker, SIGKILLs the worker after
           a random delay (a third of the kills wait for a checkpoint being written: a step-N.tmp
           folder), resumes, and repeats until the run completes; then compares the adapter with an
           uninterrupted run's, tensor by tensor. Counts: kills, kills mid-checkpoint, resumes,
           restarts (killed before the first checkpoint), tracebacks in any message, final equality.
cli-kills  SIGKILLs `studio train` itself (not its worker): the worker must finish the run alone,
           and `studio runs` must list it as completed.
diskfull   Runs `studio train` (and `studio export`) with the output on a 1.2 GB tmpfs, fills the
           tmpfs to a random few KB of free space at a random moment (during loading, training,
           a checkpoint or the final save), and checks: no traceback on screen, status.json
           truthful, `studio runs` still lists every run, the message says the disk is full, and
           after freeing the space Resume (when offered) completes the run.

Prints one table per mode. Not a test: it takes minutes (CI runs the fast versions in tests/).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from studio.core.checkpoints import latest_checkpoint, resume_problem  # noqa: E402
from studio.core.config import demo_config  # noqa: E402
from studio.core.launcher import spawn_worker, worker_env  # noqa: E402
from studio.core.runs import Run, RunStore  # noqa: E402


def _config(steps: int = 400, save_steps: int = 20):
    cfg = demo_config()
    for key, value in {"max_steps": steps, "save_steps": save_steps, "save_minutes": 0, "logging_steps": 1,
                       "eval_steps": 0}.items():
        cfg = cfg.replace(f"training.{key}", value)
    return cfg


def _drain(proc: subprocess.Popen) -> str:
    out = proc.stdout.read() if proc.stdout else b""
    proc.wait()
    return out.decode("utf-8", errors="replace")


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    out = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def _tracebacks(*texts: str) -> int:
    return sum(t.count("Traceback (most recent call last)") for t in texts)


def _messages(run: Run) -> list[str]:
    return [e.get("message", "") for e in run.events() if e.get("type") in ("error", "warning", "done")]


def _writing_checkpoint(folder: Path) -> bool:
    try:
        return any(name.endswith(".tmp") for name in os.listdir(folder))
    except FileNotFoundError:
        return False


# ---- kills ------------------------------------------------------------------------------------------
def kills(n: int, seed: int, home: Path) -> dict:
    rng = random.Random(seed)
    store = RunStore(home / "runs")
    straight = store.create(_config().model_copy(update={"name": "straight"}))
    _drain(spawn_worker(straight, "train"))
    assert straight.state == "completed", straight.log_tail(20)
    reference = _weights(straight.adapter_dir)

    stats = dict(kills=0, mid_checkpoint=0, resumes=0, restarts=0, tracebacks=0, runs=0, equal=0, unequal=0,
                 worst_diff=0.0)
    while stats["kills"] < n:
        run = store.create(_config().model_copy(update={"name": f"killed-{stats['runs']}"}))
        stats["runs"] += 1
        resume = False
        while True:
            proc = spawn_worker(run, "train", *(("--resume",) if resume else ()))
            if stats["kills"] >= n:
                _drain(proc)
                break
            draw = rng.random()
            mid_ckpt, while_loading = draw < 0.35, draw > 0.9
            steps_before = sum(e["type"] == "step" for e in run.events())
            deadline = time.time() + rng.uniform(0.5, 4.0) if while_loading else None
            tmp_seen = False
            while proc.poll() is None:
                if mid_ckpt and _writing_checkpoint(run.path / "checkpoints"):
                    tmp_seen = True
                    break
                if deadline is None and not mid_ckpt and \
                        sum(e["type"] == "step" for e in run.events()) > steps_before:
                    deadline = time.time() + rng.uniform(0.0, 4.0)  # training has started: kill within it
                if deadline is not None and time.time() >= deadline:
                    break
                if not mid_ckpt:
                    time.sleep(0.05)  # (a checkpoint is written in ~20 ms: that wait is a busy one)
            if proc.poll() is not None:  # finished before the kill came
                _drain(proc)
                break
            os.killpg(proc.pid, signal.SIGKILL)
            _drain(proc)
            stats["kills"] += 1
            stats["mid_checkpoint"] += tmp_seen
            state = run.reconcile()
            stats["tracebacks"] += _tracebacks(*_messages(run))
            if state == "completed":  # the kill came as the run ended: its record says so truthfully
                break
            assert state == "failed", state
            if latest_checkpoint(run.path) is None:
                stats["restarts"] += 1
                shutil.rmtree(run.path)
                run = store.create(_config().model_copy(update={"name": f"killed-{stats['runs']}"}))
                stats["runs"] += 1
                resume = False
            else:
                problem = resume_problem(run)
                assert problem == "", problem
                stats["resumes"] += 1
                resume = True
        if run.state == "completed":
            got = _weights(run.adapter_dir)
            diff = max((got[k].float() - reference[k].float()).abs().max().item() for k in reference)
            stats["worst_diff"] = max(stats["worst_diff"], diff)
            stats["equal" if diff == 0.0 else "unequal"] += 1
    return stats


# ---- CLI kills ----------------------------------------------------------------------------------------
def cli_kills(n: int, seed: int, home: Path) -> dict:
    rng = random.Random(seed)
    env = dict(worker_env(), STUDIO_HOME=str(home))
    stats = dict(kills=0, completed_alone=0, listed=0, tracebacks=0)
    cfg_path = home / "cli.yaml"
    _config(steps=300).save(cfg_path)
    for _ in range(n):
        proc = subprocess.Popen([sys.executable, "-m", "studio", "train", str(cfg_path)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        time.sleep(rng.uniform(1.0, 8.0))
        proc.kill()
        out = _drain(proc)
        stats["kills"] += 1
        stats["tracebacks"] += _tracebacks(out)
        run_id = next((line.split()[1] for line in out.splitlines() if line.startswith("run ")), None)
        if run_id is None:
            continue  # killed before the run folder existed: nothing to check
        run = Run(home / "runs" / run_id)
        deadline = time.time() + 180
        while run.reconcile() in ("created", "running", "stopping") and time.time() < deadline:
            time.sleep(0.5)
        stats["completed_alone"] += run.state == "completed"
        listed = subprocess.run([sys.executable, "-m", "studio", "runs", "--json"], env=env, capture_output=True,
                                text=True)
        stats["tracebacks"] += _tracebacks(listed.stdout, listed.stderr)
        stats["listed"] += any(r["id"] == run_id for r in json.loads(listed.stdout or "[]"))
    return stats


# ---- disk full ----------------------------------------------------------------------------------------
PHASES = ("loading", "training", "checkpoint", "final-save", "export")


def _mount(size: str) -> Path:
    mnt = Path(tempfile.mkdtemp(prefix="studio-full-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], check=True)
    return mnt


def _fill(mnt: Path, leave: int) -> Path:
    """Leave about ``leave`` bytes free on ``mnt`` (a filler file takes the rest)."""
    filler = mnt / "filler.bin"
    with open(filler, "ab") as f:
        for margin in (1 << 20, 0):  # the bulk at once, then the last megabyte a page at a time
            want = shutil.disk_usage(mnt).free - leave - margin
            while want > 0:
                try:
                    os.posix_fallocate(f.fileno(), f.seek(0, os.SEEK_END), want)
                    f.seek(0, os.SEEK_END)
                    break
                except OSError:
                    want -= 4096
    return filler


def diskfull(n: int, seed: int, home: Path) -> dict:
    rng = random.Random(seed)
    env = dict(worker_env(), STUDIO_HOME=str(home))
    stats = dict(tried=0, tracebacks=0, runs_listed_ok=0, truthful=0, said_disk_full=0, resumed_ok=0,
                 resume_offered=0, export_tried=0, export_clean=0, export_named_dest=0)
    for i in range(n):
        phase = PHASES[i % len(PHASES)]
        # what is left decides what fails: nothing at all, every event, only checkpoints, the final save
        leave = {"loading": 0, "training": rng.choice([0, 4096]), "checkpoint": 256 << 10,
                 "final-save": 96 << 10, "export": rng.choice([0, 64 << 10, 256 << 10])}[phase]
        mnt = _mount("1200m")
        try:
            cfg = _config(steps=300, save_steps=25)
            cfg_path = home / f"full-{i}.yaml"
            cfg.save(cfg_path)
            if phase == "export":
                stats["export_tried"] += 1
                done = subprocess.run([sys.executable, "-m", "studio", "train", str(cfg_path), "--set",
                                       "training.max_steps=20"], env=env, capture_output=True, text=True)
                run_id = next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("run "))
                _fill(mnt, leave)
                out = subprocess.run([sys.executable, "-m", "studio", "export", str(home / "runs" / run_id),
                                      "--kind", "merged", "--out", str(mnt / "merged")], env=env, capture_output=True,
                                     text=True)
                text = out.stdout + out.stderr
                stats["tracebacks"] += _tracebacks(text)
                stats["export_clean"] += not (mnt / "merged").exists() and not (mnt / "merged.tmp").exists()
                stats["export_named_dest"] += str(mnt / "merged") in text and "disk is full" in text
                stats["tried"] += 1
                continue
            proc = subprocess.Popen([sys.executable, "-m", "studio", "train", str(cfg_path), "--output-dir", str(mnt)],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            run_dir = None
            deadline = time.time() + 120
            while time.time() < deadline and proc.poll() is None:
                runs = [p for p in mnt.iterdir() if p.is_dir()]
                if runs:
                    run_dir = runs[0]
                    events = Run(run_dir).events()
                    steps = sum(e["type"] == "step" for e in events)
                    if phase == "loading" or (phase == "training" and steps >= 40) \
                            or (phase == "checkpoint" and steps >= 20) or (phase == "final-save" and steps >= 150):
                        break
                time.sleep(0.01)
            filler = _fill(mnt, leave)
            steps_at_fill = sum(e["type"] == "step" for e in Run(run_dir).events()) if run_dir else 0
            free_after = shutil.disk_usage(mnt).free
            out = _drain(proc)
            stats["tried"] += 1
            stats["tracebacks"] += _tracebacks(out)
            listed = subprocess.run([sys.executable, "-m", "studio", "runs", "--dir", str(mnt), "--json"], env=env,
                                    capture_output=True, text=True)
            stats["tracebacks"] += _tracebacks(listed.stdout, listed.stderr)
            rows = json.loads(listed.stdout or "[]") if listed.returncode == 0 else []
            stats["runs_listed_ok"] += listed.returncode == 0 and len(rows) == 1
            if run_dir is None:
                continue
            run = Run(run_dir)
            state = run.reconcile()
            last = next((line for line in reversed(out.splitlines()) if line.strip()), "")
            warned = sum("disk is full" in m for m in _messages(run))
            print(f"  diskfull #{i} phase={phase} filled at step {steps_at_fill}, {free_after} B left: state={state}, "
                  f"{warned} disk-full messages; {last[:200]}", flush=True)
            stats["failed" if state == "failed" else "completed"] = \
                stats.get("failed" if state == "failed" else "completed", 0) + 1
            ok_states = {"completed", "failed"}
            stats["truthful"] += state in ok_states and (state == "completed") == ("completed:" in out)
            if state == "completed":
                stats["said_disk_full"] += 1  # nothing failed: the run fit in what was left
                stats["resumed_ok"] += 1
                continue
            stats["said_disk_full"] += "disk is full" in out.lower()
            filler.unlink()
            if resume_problem(run) == "":
                stats["resume_offered"] += 1
                res = subprocess.run([sys.executable, "-m", "studio", "train", "--resume", str(run_dir)], env=env,
                                     capture_output=True, text=True)
                stats["tracebacks"] += _tracebacks(res.stdout, res.stderr)
                stats["resumed_ok"] += res.returncode == 0 and Run(run_dir).state == "completed"
            else:
                res = subprocess.run([sys.executable, "-m", "studio", "train", str(cfg_path), "--output-dir", str(mnt)],
                                     env=env, capture_output=True, text=True)
                stats["resumed_ok"] += res.returncode == 0
        finally:
            subprocess.run(["umount", "-l", str(mnt)], check=False)
            shutil.rmtree(mnt, ignore_errors=True)
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=("kills", "cli-kills", "diskfull", "all"))
    parser.add_argument("--n", type=int, default=0, help="how many faults (default per mode: 40, 6, 15)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="studio-faults-"))
    os.environ["STUDIO_HOME"] = str(home)
    results = {}
    try:
        if args.mode in ("kills", "all"):
            results["kills"] = kills(args.n or 40, args.seed, home)
        if args.mode in ("cli-kills", "all"):
            results["cli-kills"] = cli_kills(args.n or 6, args.seed, home)
        if args.mode in ("diskfull", "all"):
            results["diskfull"] = diskfull(args.n or 15, args.seed, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    for mode, stats in results.items():
        print(f"\n### {mode}\n\n| " + " | ".join(stats) + " |\n|" + "---|" * len(stats))
        print("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in stats.values()) + " |")
    print("\n" + json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
