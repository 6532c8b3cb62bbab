"""A stand-in for ``--worker chat`` that speaks its protocol without a model (fast GUI tests).

Argv as the launcher builds it: ``--worker chat [RUN_DIR] [args...]``. It answers each side with the
question's words, one token event per word. A question containing OOM fails with the worker's
out-of-memory error for that request (the worker stays alive); CRASH kills the process mid-answer.
FAKE_CHAT_LOAD_FAIL=model makes loading fail as a missing base model does.
"""

from __future__ import annotations

import json
import os
import sys
import time

PREFIX = "@@studio/1 "
OOM = ("Out of memory while answering. Lower Max new tokens, shorten the conversation (or start a new one), or "
       "load the model 4-bit (a QLoRA run); the model stays loaded and the chat goes on.")


def emit(type_: str, **payload) -> None:
    sys.stdout.write(PREFIX + json.dumps({"type": type_, "t": time.time(), **payload}) + "\n")
    sys.stdout.flush()


def main() -> int:
    args = sys.argv[1:]
    emit("hello", pid=os.getpid(), version="test", argv=args)
    print("loading the base model (fake)", flush=True)
    if os.environ.get("FAKE_CHAT_LOAD_FAIL") == "model":
        emit("error", message="The base model is not at /gone any more (moved or deleted).", kind="model",
             path="/gone")
        emit("done", status="failed", message="The base model is not at /gone any more.")
        return 1
    plain = "--model" in args
    emit("ready", model="fake", device="cpu", load_s=0.01, precision="fp32", quantized="", mode="plain" if plain
         else "adapter", method=None if plain else "lora", adapter=None if plain else "final",
         adapters=[] if plain else ["final"], template="tokenizer", notes=[],
         sides={"base": {"available": True, "note": "the same model with the adapter switched off"},
                "tuned": {"available": not plain, "note": "no trained weights" if plain else "final on the base"}})
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "quit":
            break
        if command["cmd"] == "generate":
            messages = command["messages"]
            for side in command.get("sides") or ["base"]:
                conv = messages[side] if isinstance(messages, dict) else messages
                question = conv[-1]["content"]
                if "CRASH" in question:
                    os._exit(3)
                if "OOM" in question:
                    emit("error", message=OOM, kind="oom", id=command["id"], side=side)
                    emit("reply", id=command["id"], side=side, text="", tokens=0, first_token_s=0.0,
                         tokens_per_s=0.0, stop_reason="error")
                    continue
                words = [f"{w} " for w in question.split()]
                for w in words:
                    emit("token", id=command["id"], side=side, text=w)
                    time.sleep(0.01)
                emit("reply", id=command["id"], side=side, text="".join(words), tokens=len(words),
                     first_token_s=0.01, tokens_per_s=100.0, stop_reason="end",
                     adapter="final" if side == "tuned" else None)
        elif command["cmd"] in ("set_adapter", "load_adapter"):
            emit("switched", adapter=command["name"], ms=1.5, adapters=["final", command["name"]])
    emit("done", status="completed", message="chat ended")
    return 0


if __name__ == "__main__":
    sys.exit(main())
