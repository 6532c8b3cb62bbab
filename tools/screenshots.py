"""Render every page of the studio to docs/screenshots/<page>.png at 1400x900.

    python tools/screenshots.py [--out docs/screenshots] [--train-steps N] [--no-train] [--size 1400x900]
                                [--pages chat,runs]

Runs offscreen in a throwaway studio home. Unless --no-train is given, it first trains the
embedded demo with the real worker, as the demo is (all its steps, as a newcomer's first run;
--train-steps N stops it earlier), so the train and runs pages show real curves, then exports its
adapter, measures its generation speed (adapter vs merged) and compares the methods the Compare
page ticks by default, then grabs each page. The demo keeps checkpoints at steps 70 and 140, so
the Runs page's Evaluate tab (evaluate.png) scores the base, both checkpoints and the final weights
with the real eval worker; the Export page is grabbed after a verified GGUF f16 export of the best
weights (export_gguf.png: the verdict and the Ollama command) and, in export.png, at its exports and
the Push to the Hub card with the model card shown. The Chat page is grabbed mid-stream: the demo run
loaded in the chat worker, one question answered by both sides, the next one streaming into the
base column. The Data page is grabbed a second time with a custom chat template in its editor and the
preview rendered with it (data_template.png). Last it grabs
an error state, train_failed.png: a run whose model's weights file was cut short in a copy. The planner is shown for a real catalog model on a common card (the tiny demo
model would fit everything everywhere, which documents nothing).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--train-steps", type=int, default=0, help="stop the demo run after N steps (0: train it all)")
    parser.add_argument("--no-train", action="store_true")
    parser.add_argument("--size", default="1400x900")
    parser.add_argument("--planner-model", default="meta-llama/Llama-3.1-8B", help="catalog model for planner.png")
    parser.add_argument("--planner-gpu", default="RTX 4090 24GB", help="catalog GPU for planner.png")
    parser.add_argument("--pages", default="", help="only these pages (comma-separated keys; default: all)")
    args = parser.parse_args()
    os.environ.setdefault("STUDIO_HOME", tempfile.mkdtemp(prefix="studio-shots-"))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from studio.ui.main_window import MainWindow
    from studio.ui.theme import apply_theme

    app = QApplication([sys.argv[0]])
    apply_theme(app)
    window = MainWindow(build_all=True)
    w, h = (int(v) for v in args.size.split("x"))
    window.resize(w, h)
    window.show()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = [k for k in args.pages.split(",") if k] or window.page_keys()

    def pump(seconds: float) -> None:
        loop = QEventLoop()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    def wait_for(cond, timeout: float) -> bool:
        end = time.time() + timeout
        while time.time() < end:
            if cond():
                return True
            pump(0.1)
        return False

    run = None
    if not args.no_train:
        cm = window.config_model
        if args.train_steps:
            cm.set("training.max_steps", args.train_steps)
        cm.set("name", "secret-codes")
        save_steps = cm.config.training.save_steps
        cm.set("training.save_steps", 70)  # checkpoints for the Evaluate tab to compare
        train = window.page("train")
        window.navigate("train")
        run = train.start_run()
        if run is None:
            print("could not start the demo run:", train.banner.text(), file=sys.stderr)
        else:
            finished = wait_for(lambda: not train.is_training(), 300)
            print(f"demo run {run.id}: {'finished' if finished else 'still running'} — {train.banner.text()}")
        cm.set("training.save_steps", save_steps)
        if run is not None and "runs" in wanted:
            _evaluate(window, run, out, pump, wait_for)
        if run is not None and "export" in wanted:
            export = window.page("export")
            export.refresh()
            window.navigate("export")
            export.select_run(run)
            export.export_button.click()
            wait_for(lambda: export.worker is None, 120)
            print("export:", export.banner.text())
            export.speed_button.click()
            wait_for(lambda: export.worker is None, 300)
            print("generation speed:", export.speed_result.text().replace("\n", " | "), export.speed_banner.text())
            _export_gguf(window, export, out, pump, wait_for)
        window.navigate("runs")
        window.page("runs").refresh()
        if "compare" in wanted:
            _compare(window, wait_for)
        cm.set("name", "my-first-adapter")

    planner = window.page("planner")
    planner.set_model_choice(f"catalog:{args.planner_model}")
    planner.set_target_name(args.planner_gpu)
    if planner.plan is None or planner.plan.model != args.planner_model:
        print(f"planner: could not select {args.planner_model} on {args.planner_gpu}", file=sys.stderr)

    train = window.page("train")  # the run's log is in runs.png; here, what the engine chose for it
    train.details_tabs.setCurrentWidget(train.engine_tab)

    for key in wanted:
        window.navigate(key)
        pump(0.6)
        path = out / f"{key}.png"
        if key == "chat" and run is not None:
            _chat(window, run, path, pump, wait_for)
            continue
        if key == "export" and run is not None:
            _show_push(window, pump, wait_for)
        window.grab().save(str(path))
        print("wrote", path)
        if key == "data":
            _custom_template(window, out / "data_template.png", pump, wait_for)
        if key == "method":  # the training settings sit below the fold: show them from "Memory and speed" on
            path = out / "method_training.png"
            _scroll_to(window.page("method").training_forms[2], pump, margin=40)
            window.grab().save(str(path))
            print("wrote", path)
    if not args.no_train and "train" in wanted:
        _failed_run(window, out, pump, wait_for)
    window.close()
    return 0


def _evaluate(window, run, out: Path, pump, wait_for) -> None:
    """evaluate.png: the Runs page's Evaluate tab after a real evaluation of the demo's checkpoints."""
    runs = window.page("runs")
    window.navigate("runs")
    runs.refresh()
    runs.select_run(run.id)
    runs.tabs.setCurrentWidget(runs.evaluate_tab)
    view = runs.evaluate_view
    view.which_combo.setCurrentIndex(view.which_combo.findData("all"))
    if not view.evaluate():
        print("the evaluation did not start:", view.banner.text(), view.eval_button.toolTip(), file=sys.stderr)
        return
    finished = wait_for(lambda: not view.busy(), 300)
    print(f"evaluation: {'finished' if finished else 'still running'} — {view.info_label.text()}")
    sizes = runs.split.sizes()
    runs.split.setSizes([150, sum(sizes) - 150])  # the run list small, the evaluation large
    pump(0.6)
    path = out / "evaluate.png"
    window.grab().save(str(path))
    print("wrote", path)
    runs.split.setSizes(sizes)
    runs.tabs.setCurrentIndex(0)  # runs.png shows the curves


def _export_gguf(window, export, out: Path, pump, wait_for) -> None:
    """export_gguf.png: a GGUF f16 export of the demo, verified in llama.cpp, with the Ollama command."""
    export.form.set_kind("gguf")
    export.form.set_quant("f16")
    if not wait_for(export.form.gguf_ready, 60) or not export.start_export():
        print("the GGUF export did not start:", export.form.kind_note.text(), export.banner.text(), file=sys.stderr)
        return
    wait_for(lambda: export.worker is None, 300)
    print("GGUF export:", export.banner.text())
    pump(0.6)
    path = out / "export_gguf.png"
    _scroll_to(export.form.tiles["gguf"], pump, margin=44)  # the type and estimate, the verdict, the command
    window.grab().save(str(path))
    print("wrote", path)


def _show_push(window, pump, wait_for) -> None:
    """export.png: the run's exports and the Push to the Hub card, its model card shown."""
    export = window.page("export")
    card = export.push_card
    wait_for(lambda: not card._account_job.busy, 20)
    card.card_toggle.setChecked(True)
    wait_for(lambda: "Writing" not in card.card_text(), 20)
    _scroll_to(export.exports_card, pump, margin=24)


def _compare(window, wait_for) -> None:
    """compare.png: the methods ticked by default, 100 steps each, on the demo."""
    compare = window.page("compare")
    window.navigate("compare")
    cid = compare.start_comparison()
    if cid is None:
        print("the comparison did not start:", compare.banner.text(), file=sys.stderr)
        return
    finished = wait_for(lambda: not compare.is_running(), 600)
    compare._on_redraw_timer_timeout()
    print(f"comparison {cid}: {'finished' if finished else 'still running'}")
    window.page("runs").refresh()


def _chat(window, run, path: Path, pump, wait_for) -> None:
    """chat.png: the demo run in the chat worker, side by side, grabbed while the base's answer streams."""
    chat = window.page("chat")
    if chat.run_action("chat", run) or not wait_for(lambda: chat.ready is not None or chat.worker is None, 120):
        print("the chat worker did not load:", chat.source_card.problem() or chat.source_card.status(), file=sys.stderr)
        window.grab().save(str(path))
        return
    chat.settings.history_box.setChecked(False)  # the demo learned single questions; each is asked alone
    chat.settings.set_sampling_value("max_new_tokens", 64)
    chat.send("What is the secret code of the violet lighthouse?")
    wait_for(lambda: not chat.transcript.busy, 60)
    chat.settings.set_sampling_value("max_new_tokens", 400)
    chat.send("What is the secret code of the teal forest?")

    def streaming() -> bool:
        base = chat.transcript.exchanges[-1].replies["base"]
        return base.state == "streaming" and len(base.text) > 90

    if not wait_for(streaming, 60):
        print("the base side did not stream in time", file=sys.stderr)
    chat.flush()
    window.grab().save(str(path))  # mid-stream: the tuned answer is in, the base's is coming
    print("wrote", path, "-", chat.source_card.status())
    chat.stop_answers()
    wait_for(lambda: not chat.transcript.busy, 30)


def _failed_run(window, out: Path, pump, wait_for) -> None:
    """train_failed.png: what a failed run looks like (the message above, the traceback in the Log tab)."""
    import shutil
    import tempfile

    from studio.core.paths import demo_model_dir

    # A model folder whose weights file was cut short in a copy: its header reads (so pre-flight passes),
    # the weights do not, and the worker says so.
    folder = Path(tempfile.mkdtemp(prefix="studio-half-copied-")) / "my-model"
    shutil.copytree(demo_model_dir(), folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    cm = window.config_model
    cm.set("name", "half-copied")
    cm.update({"model.source": "local", "model.path": str(folder)})
    train = window.page("train")
    window.navigate("train")
    if train.start_run() is None:
        print("the failing run was refused before it started:", train.banner.text(), file=sys.stderr)
        return
    wait_for(lambda: not train.is_training(), 120)
    pump(0.6)
    path = out / "train_failed.png"
    window.grab().save(str(path))
    print("wrote", path, "-", train.banner.text())


QA_TEMPLATE = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
               "{% elif m['role'] == 'user' %}Question: {{ m['content'] }}\n"
               "{% else %}Answer: {{ m['content'] }}{{ eos_token }}\n{% endif %}{% endfor %}"
               "{% if add_generation_prompt %}Answer: {% endif %}")


def _custom_template(window, path: Path, pump, wait_for) -> None:
    """The Data page with a custom chat template in its editor and the preview rendered with it."""
    page = window.page("data")
    card = page.format_card
    combo = card.fields["template"].widget
    combo.setCurrentIndex(combo.findData("custom"))
    card.template_editor.edit.setPlainText(QA_TEMPLATE)
    card.template_editor.check()
    if not wait_for(lambda: bool(page.rendered) and page.rendered[0].pieces[0][0].startswith("<s>Question: "), 20):
        print("data_template: the preview did not show the custom template", file=sys.stderr)
    pump(0.6)
    _scroll_to(combo, pump, margin=40)  # the choice, the editor and the first example rendered with it
    window.grab().save(str(path))
    print("wrote", path)
    combo.setCurrentIndex(combo.findData("auto"))  # the other pages show the demo as it is
    _scroll_to(page.source, pump)


def _scroll_to(widget, pump, margin: int = 16) -> None:
    """Scroll the page holding ``widget`` so that it starts ``margin`` pixels below the top."""
    from PySide6.QtWidgets import QScrollArea

    area = widget.parent()
    while area is not None and not isinstance(area, QScrollArea):
        area = area.parent()
    if area is not None:
        y = widget.mapTo(area.widget(), widget.rect().topLeft()).y()
        area.verticalScrollBar().setValue(max(0, y - margin))
        pump(0.4)


if __name__ == "__main__":
    sys.exit(main())
