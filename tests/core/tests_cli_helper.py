"""Run a `studio` subcommand in-process, as tests of the CLI do."""

from __future__ import annotations


def run_cli(argv: list[str]) -> int:
    import argparse

    from studio.cli import estimate as est_cmd, plan as plan_cmd

    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    est_cmd.register(sub)
    plan_cmd.register(sub)
    args = p.parse_args(argv)
    return args.func(args)
