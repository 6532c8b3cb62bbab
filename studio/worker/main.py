"""The worker's command line (what the GUI and the CLI launch as a child process).

    python -m studio --worker train RUN_DIR [--resume]
    python -m studio --worker export RUN_DIR --kind adapter|merged|gguf --out DIR [--from DIR] [--dtype auto|bf16|fp16|fp32]
                                     [--quant f16|bf16|q8_0|q4_k_m|...] [--no-verify]
    python -m studio --worker genspeed RUN_DIR [--from DIR] [--new-tokens N] [--batch B]
    python -m studio --worker push RUN_DIR --folder DIR --repo ID [--public] [--kind adapter|merged|gguf]
    python -m studio --worker chat RUN_DIR [--checkpoint N | --from DIR] [--base-path DIR] [--template T]
    python -m studio --worker chat --model PATH [--template T]     (then JSON commands on stdin)
    python -m studio --worker eval RUN_DIR [--checkpoint N|final|best|all] [--prompts FILE] [--max-prompts K]
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from studio.core.gguf_plan import QUANT_NAMES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="studio --worker", description="The studio's training/export process.")
    sub = parser.add_subparsers(dest="job", required=True)
    train = sub.add_parser("train", help="train the run whose config.yaml is in RUN_DIR")
    train.add_argument("run_dir")
    train.add_argument("--resume", action="store_true",
                       help="continue from the run's newest checkpoint (RUN_DIR/checkpoints/step-N)")
    export = sub.add_parser("export", help="export a trained run as an adapter, a merged model or a GGUF file")
    export.add_argument("run_dir")
    export.add_argument("--kind", choices=("adapter", "merged", "gguf"), required=True)
    export.add_argument("--out", required=True, help="a new (or empty) folder to write")
    export.add_argument("--from", dest="source", default=None,
                        help="trained weights to export (default RUN_DIR/adapter; e.g. a checkpoint folder)")
    export.add_argument("--dtype", choices=("auto", "bf16", "fp16", "fp32"), default="auto",
                        help="precision of a merged model (auto: bf16, or fp32 when the base is fp32)")
    export.add_argument("--quant", default="f16", type=str.lower, choices=QUANT_NAMES, help="GGUF type")
    export.add_argument("--no-verify", dest="verify", action="store_false",
                        help="skip reloading the export and comparing it with its source")
    check = sub.add_parser("llama-check", help="(internal) run a GGUF file in llama.cpp for an export's verification")
    check.add_argument("spec")
    check.add_argument("result")
    genspeed = sub.add_parser("genspeed", help="generation tokens/s of the trained result, unmerged vs merged")
    genspeed.add_argument("run_dir")
    genspeed.add_argument("--from", dest="source", default=None, help="trained weights (default RUN_DIR/adapter)")
    genspeed.add_argument("--new-tokens", type=int, default=128, help="tokens generated per measurement")
    genspeed.add_argument("--batch", type=int, default=1, help="sequences generated at once")
    genspeed.add_argument("--prompt-tokens", type=int, default=64, help="prompt length")
    genspeed.add_argument("--repeats", type=int, default=3, help="timed repeats (the median counts)")
    chat = sub.add_parser("chat", help="keep a run's tuned model and its base loaded; answer JSON commands on stdin")
    chat.add_argument("run_dir", nargs="?", help="the run folder (or --model for a plain model)")
    chat.add_argument("--checkpoint", type=int, default=None, help="the checkpoint at step N instead of the final adapter")
    chat.add_argument("--from", dest="source", default=None, help="these trained weights (a folder) instead")
    chat.add_argument("--model", default=None, help="a plain model (folder or hub id), no run")
    chat.add_argument("--base-path", default=None, help="the run's base model is in this folder now (it moved)")
    chat.add_argument("--template", default="auto",
                      help="chat template: auto (the run's), chatml, alpaca, llama3 or a Jinja template")
    evaluate = sub.add_parser("eval", help="validation loss of every checkpoint and the base; generations with metrics")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--checkpoint", default="best",
                          help="whose answers to score against the base: N (a step), final, best (lowest "
                               "validation loss) or all")
    evaluate.add_argument("--prompts", default=None,
                          help="held-out prompts: a data file (prompt/answer rows or any training format) "
                               "instead of the run's validation split")
    evaluate.add_argument("--max-prompts", type=int, default=100, help="generate for at most this many prompts")
    evaluate.add_argument("--max-new-tokens", type=int, default=None,
                          help="longest generated answer (default: a little over the longest reference)")
    evaluate.add_argument("--base-path", default=None, help="the run's base model is in this folder now (it moved)")
    push = sub.add_parser("push", help="upload an exported folder to the Hugging Face Hub with a model card")
    push.add_argument("run_dir")
    push.add_argument("--folder", required=True, help="the exported folder to upload")
    push.add_argument("--repo", required=True, help="namespace/name on the Hub (a bare name: your account's)")
    push.add_argument("--public", action="store_true", help="create the repo public (default: private)")
    push.add_argument("--kind", choices=("adapter", "merged", "gguf"), default=None,
                      help="what the folder holds (default: read from its files)")
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.job == "llama-check":  # no torch in this child: it only runs llama.cpp
        from studio.worker.llama_check import main as check_main

        return check_main(args.spec, args.result)
    from studio.worker.engine import configure_allocator

    configure_allocator()  # before torch touches the GPU
    if args.job == "push":
        from studio.worker.push import main as push_main

        return push_main(args.run_dir, args.folder, args.repo, public=args.public, kind=args.kind)
    if args.job == "train":
        from studio.worker.train import main as train_main

        return train_main(args.run_dir, resume=args.resume)
    if args.job == "chat":
        if bool(args.run_dir) == bool(args.model):
            build_parser().error("chat: give a run folder or --model PATH (one of them)")
        from studio.worker.chat import main as chat_main

        return chat_main(args.run_dir, checkpoint=args.checkpoint, source=args.source, model=args.model,
                         base_path=args.base_path, template=args.template)
    if args.job == "eval":
        from studio.worker.evaluate import main as eval_main

        return eval_main(args.run_dir, checkpoint=args.checkpoint, prompts=args.prompts,
                         max_prompts=args.max_prompts, max_new_tokens=args.max_new_tokens, base_path=args.base_path)
    if args.job == "genspeed":
        from studio.worker.gen_speed import main as genspeed_main

        return genspeed_main(args.run_dir, source=args.source, new_tokens=args.new_tokens, batch=args.batch,
                             prompt_tokens=args.prompt_tokens, repeats=args.repeats)
    from studio.worker.export import main as export_main

    return export_main(args.run_dir, args.kind, args.out, source=args.source, dtype=args.dtype, quant=args.quant,
                       verify=args.verify)
