"""The ``sniper-otel`` command: a thin dispatcher; each subcommand lives with its feature."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# subcommand -> (module with ``main(argv) -> int``, one-line help). Imported on use only.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("pytest_sniper_otel.flow.cli", "run the reference sniper bot on simulated time"),
    "chaos": ("pytest_sniper_otel.chaos.cli", "run the chaos scenario suite and print a scorecard"),
    "rules": ("pytest_sniper_otel.alerts.cli", "export alert rules and promtool tests"),
    "load": ("pytest_sniper_otel.load.cli",
             "telemetry overhead under locust; --locustfile prints its path"),
    "exchange": ("pytest_sniper_otel.flow.exchange_cli",
                 "serve the exchange simulator as MEXC spot REST v3 on loopback"),
    "collector": ("pytest_sniper_otel.flow.collector",
                  "an OTLP/HTTP collector on loopback that counts exports and can misbehave"),
}


_SECRET_QUERY_KEYS = ("password", "pass", "pwd", "token", "secret", "key", "auth")


def redact_url(url: str) -> str:
    """``url`` with its password or token replaced by ``***``: safe to print or journal.

    ``redis://:pw@host`` -> ``redis://:***@host``, ``http://user:token@h`` ->
    ``http://user:***@h``, ``http://token@h`` -> ``http://***@h``, ``?password=x`` -> ``***``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    secret_query = any(any(w in k.lower() for w in _SECRET_QUERY_KEYS)
                       for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    if "@" not in parts.netloc and not secret_query:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if colon else f"***@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if any(w in k.lower() for w in _SECRET_QUERY_KEYS) else v)
                           for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def unwritable(path: Path, *, make_parents: bool = False) -> str | None:
    """Why ``path`` cannot be written, or None. Checked before a run, so a long run's
    journal is never lost at the end; the probe leaves no file behind. With
    ``make_parents``, missing directories are fine if the nearest existing one is writable."""
    import tempfile

    if path.is_dir():
        return f"{path} is a directory"
    if make_parents and not path.parent.exists():
        ancestor = path.parent
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            return f"cannot write {path}: {ancestor} is not a directory"
        try:
            with tempfile.TemporaryFile(dir=ancestor):
                pass
        except OSError as exc:
            return f"cannot write {path}: {exc.strerror or exc}"
        return None
    existed = path.exists()
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    if not existed:
        path.unlink(missing_ok=True)
    return None


def check_redis_url(url: str) -> str | None:
    """What is wrong with a ``--redis-url`` that can be told without connecting, or None."""
    from redis.connection import parse_url

    shown = redact_url(url)
    try:
        parse_url(url)  # type: ignore[no-untyped-call]
        parts = urlsplit(url)
        if parts.scheme.lower() in ("redis", "rediss"):
            if not parts.hostname:
                return f"{shown} names no host (use redis://host:port/db)"
            parts.port  # noqa: B018 - raises ValueError for a bad port
            db = parts.path.strip("/")
            if db and not db.isdigit():
                return f"{shown}: the database {db!r} is not a number (use redis://host:port/0)"
    except ValueError as exc:
        return f"{shown}: {exc}"
    return None


def connect_redis(url: str, **options: Any) -> Any:
    """A client for a checked ``url`` that answered PING; raises ValueError saying why not
    (unreachable, refused credentials, unknown database), with the password redacted."""
    import redis

    client = redis.Redis.from_url(url, **options)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        raise ValueError(f"Redis at {redact_url(url)} did not answer: {exc}") from None
    return client


def _usage() -> str:
    lines = ["usage: sniper-otel [--version] COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<8} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines.append("\nRun 'sniper-otel COMMAND --help' for a command's options.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from importlib.metadata import version

        print(f"sniper-otel {version('pytest-sniper-otel')}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"sniper-otel: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    from .lab_plugin import MISSING

    if MISSING:
        # every command runs the lab: one line that says what to install, not a traceback
        # (or a "could not load" per scenario) about the first missing module
        print(f"sniper-otel {name}: needs the lab: pip install 'pytest-sniper-otel[lab]' "
              f"(missing: {', '.join(MISSING)})", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    from .interrupts import handled, interrupt_status, terminable

    try:
        with terminable():
            result: int = module.main(rest)
    except KeyboardInterrupt as exc:  # a command that did not handle it itself
        name_ = handled(exc)
        print(f"sniper-otel {name}: interrupted by {name_}", file=sys.stderr)
        return interrupt_status(exc)
    except BrokenPipeError:
        # The reader went away (`sniper-otel chaos --list | head`): not a failure of ours.
        # Point stdout at devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return result


if __name__ == "__main__":
    raise SystemExit(main())
