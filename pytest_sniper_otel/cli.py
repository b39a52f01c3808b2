"""The ``sniper-otel`` command: a thin dispatcher; each subcommand lives with its feature."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

# subcommand -> (module with ``main(argv) -> int``, one-line help). Imported on use only.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("pytest_sniper_otel.flow.cli", "run the reference sniper bot on simulated time"),
    "chaos": ("pytest_sniper_otel.chaos.cli", "run the chaos scenario suite and print a scorecard"),
    "rules": ("pytest_sniper_otel.alerts.cli", "export alert rules and promtool tests"),
}


def _usage() -> str:
    lines = ["usage: sniper-otel COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<8} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines.append("\nRun 'sniper-otel COMMAND --help' for a command's options.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"sniper-otel: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        result: int = module.main(rest)
    except BrokenPipeError:
        # The reader went away (`sniper-otel chaos --list | head`): not a failure of ours.
        # Point stdout at devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return result


if __name__ == "__main__":
    raise SystemExit(main())
