"""``python -m mlops <command> ...``: one entry point for every command of the package."""

from __future__ import annotations

import importlib
import sys

# command -> (module under mlops.cli, what it does). ``init`` and ``check`` share one parser.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("onboard", "draft a pipeline YAML from a sample file"),
    "check": ("onboard", "check a pipeline's config, suite and one landed partition"),
    "suites": ("suites", "write or check the generated Great Expectations suites"),
    "scenario": ("scenario", "write the demo scenarios' landing files"),
    "signing": ("signing", "sign, re-sign or fetch a verified model version"),
    "registry": ("registry", "read the registry (the champion's version)"),
    "serve": ("serve", "serve the champions over HTTP, following the registry"),
    "report": ("report", "a replay's outcome, day by day"),
    "index": ("index", "rebuild the lake's index (what the Models view reads)"),
    "quarantine": ("quarantine", "show, export, fix and replay quarantined rows"),
    "preflight": ("preflight", "check that every service is reachable"),
    "stack-tools": ("stack_tools", "what the local stacks' scripts share"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {what}" for name, (_, what) in COMMANDS.items()]
    return "usage: python -m mlops <command> [...]\n\ncommands:\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        print(f"unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"mlops.cli.{COMMANDS[argv[0]][0]}")
    return module.main(argv if COMMANDS[argv[0]][0] == "onboard" else argv[1:])
