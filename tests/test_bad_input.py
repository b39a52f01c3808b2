"""Bad input to `sniper-otel`: a clear error naming the problem, exit 2, before any work.

No traceback, no silent acceptance, and no password or token from a URL in what is printed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_sniper_otel.cli import main, redact_url

SCENARIOS = str(Path(__file__).resolve().parents[1] / "scenarios")

RUN_AND_CHAOS: list[tuple[list[str], str]] = [
    (["--redis-url", "garbage"], "--redis-url: garbage: Redis URL must specify one of the "
                                 "following schemes (redis://, rediss://, unix://)"),
    (["--redis-url", "http://x"], "Redis URL must specify one of the following schemes"),
    (["--redis-url", "redis://"], "--redis-url: redis:// names no host"),
    (["--redis-url", "redis://127.0.0.1:notaport/0"],
     "--redis-url: redis://127.0.0.1:notaport/0: Port could not be cast to integer value"),
    (["--redis-url", "redis://127.0.0.1:99999/0"],
     "--redis-url: redis://127.0.0.1:99999/0: Port out of range 0-65535"),
    (["--redis-url", "redis://127.0.0.1:6379/abc"],
     "the database 'abc' is not a number (use redis://host:port/0)"),
    (["--redis-url", "redis://:hunter2@127.0.0.1:notaport/0"],
     "--redis-url: redis://:***@127.0.0.1:notaport/0: Port could not be cast"),
    (["--redis-url", "redis://127.0.0.1:1/0"],
     "--redis-url: Redis at redis://127.0.0.1:1/0 did not answer: Error 111 connecting to "
     "127.0.0.1:1. Connection refused."),
    (["--redis-url", "redis://:hunter2@127.0.0.1:1/0?password=hunter2"],
     "--redis-url: Redis at redis://:***@127.0.0.1:1/0?password=*** did not answer"),
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--seed", "x"], "invalid int value: 'x'"),
    (["--json", "{tmp}/missing/dir/out.json"],
     "--json: cannot write {tmp}/missing/dir/out.json: No such file or directory"),
    (["--json", "{tmp}"], "--json: {tmp} is a directory"),
    (["--json", "/proc/sniper-otel.json"], "--json: cannot write /proc/sniper-otel.json: "),
]
NOT_A_DURATION = "--duration must be a number of seconds or a string like '2m', got"
RUN_ONLY: list[tuple[list[str], str]] = [
    (["--duration", "ten minutes"], f"{NOT_A_DURATION} 'ten minutes' (units ms, s, m, h, d: "),
    (["--duration", "0s"], "--duration must be positive, got '0s'"),
    (["--duration", "inf"], f"{NOT_A_DURATION} 'inf'"),
    (["--duration", "nan"], f"{NOT_A_DURATION} 'nan'"),
    (["--duration", "1e400"], f"{NOT_A_DURATION} '1e400'"),
    (["--duration", "25h"], "--duration: at most 24h of simulated time, got '25h'"),
    (["--duration", "9" * 400], "--duration must be a finite number of seconds, got '999"),
    (["--otlp-endpoint", "localhost:4318"], "--otlp-endpoint: must be an http(s) URL, got "
                                            "'localhost:4318'"),
    (["--otlp-endpoint", "http://"], "--otlp-endpoint: 'http://' names no host (use e.g. "
                                     "http://127.0.0.1:4318)"),
    (["--otlp-endpoint", "http://127.0.0.1:99999"],
     "--otlp-endpoint: http://127.0.0.1:99999: Port out of range 0-65535"),
    (["--otlp-endpoint", "http://127.0.0.1:port"],
     "--otlp-endpoint: http://127.0.0.1:port: Port could not be cast to integer value"),
    (["--otlp-endpoint", "http://127.0.0.1:0"], "port 0 is not a port a collector listens on"),
    (["--otlp-endpoint", "http://user:t0ken@127.0.0.1:0"],
     "--otlp-endpoint: http://user:***@127.0.0.1:0: port 0"),
]


def _fill(args: list[str], tmp: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp)) for a in args]


def _assert_clear_error(code: int, out: str, err: str, message: str, *, command: str) -> None:
    assert code == 2, (out, err)
    assert message in err, err
    assert "Traceback" not in out + err
    assert "hunter2" not in out + err and "t0ken" not in out + err
    assert f"sniper-otel {command}" in err
    assert "scorecard" not in out and "orders:" not in out  # nothing ran


@pytest.mark.parametrize(("args", "message"), RUN_AND_CHAOS + RUN_ONLY,
                         ids=lambda v: " ".join(v)[:60] if isinstance(v, list) else "")
def test_run_refuses_bad_input_before_the_run(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", *_fill(args, tmp_path)])
    out, err = capsys.readouterr()
    _assert_clear_error(code, out, err, message.replace("{tmp}", str(tmp_path)), command="run")


CHAOS_ONLY: list[tuple[list[str], str]] = [
    (["--html", "{tmp}"], "--html: {tmp} is a directory"),
    (["--html", "/proc/sniper-otel/report.html"], "--html: cannot write /proc/sniper-otel/"),
]


@pytest.mark.parametrize(("args", "message"), RUN_AND_CHAOS + CHAOS_ONLY,
                         ids=lambda v: " ".join(v)[:60] if isinstance(v, list) else "")
def test_chaos_refuses_bad_input_before_the_suite(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["chaos", "--path", SCENARIOS, "--no-progress", *_fill(args, tmp_path)])
    out, err = capsys.readouterr()
    _assert_clear_error(code, out, err, message.replace("{tmp}", str(tmp_path)),
                        command="chaos")
    assert out == ""


@pytest.mark.sniper_otel_real_redis
@pytest.mark.parametrize("command", ["run", "chaos"])
def test_a_database_or_password_the_server_refuses_is_exit_2(
    command: str, real_redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = real_redis_url.rsplit("/", 1)[0]
    host = base.split("://", 1)[1]
    extra = ["--path", SCENARIOS] if command == "chaos" else ["--duration", "1m"]
    assert main([command, *extra, "--redis-url", f"{base}/99"]) == 2
    err = capsys.readouterr().err
    assert f"--redis-url: Redis at {base}/99 did not answer: DB index is out of range" in err
    # a user the server does not know (a server without requirepass accepts any password)
    assert main([command, *extra, "--redis-url", f"redis://nobody:hunter2@{host}/0"]) == 2
    out, err = capsys.readouterr()
    assert (f"--redis-url: Redis at redis://nobody:***@{host}/0 did not answer: invalid "
            "username-password pair") in err
    assert "hunter2" not in out + err and "Traceback" not in err


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
    ("redis://user:pw@host/0", "redis://user:***@host/0"),
    ("http://token@collector:4318", "http://***@collector:4318"),
    ("https://u:p@c/v1?api_key=k&x=1", "https://u:***@c/v1?api_key=***&x=1"),
    ("redis://host:6379/0", "redis://host:6379/0"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# -- rule files ---------------------------------------------------------------------------------
RULE = {"name": "Mine", "expr": "rate(orders_total[5m]) > 1", "for": "1m"}


@pytest.mark.parametrize(("content", "message"), [
    (b"\xff\xfe[]", "not UTF-8 text (byte 0: invalid start byte)"),
    (b"[1, 2]", "rules[0]: a rule is an object with 'name' and 'expr', got int"),
    (b'{"rules": 3}', 'expected a list of rules or {"rules": [...]}, got int'),
    (b"[" * 50_000, "not valid JSON"),
    (json.dumps([{**RULE, "expr": 5}]).encode(),
     "rules[0]: rule 'Mine': field 'expr' must be a string, got int 5"),
    (json.dumps([RULE, {**RULE, "name": "Two", "labels": ["a"]}]).encode(),
     "rules[1]: rule 'Two': field 'labels' must be an object, got list ['a']"),
    (json.dumps([{**RULE, "for": [60]}]).encode(),
     "rules[0]: rule 'Mine': field 'for' must be a string or a number, got list [60]"),
    (json.dumps([{**RULE, "for": True}]).encode(),
     "rules[0]: rule 'Mine': field 'for' must be a string or a number, got bool True"),
    (json.dumps([{**RULE, "annotations": {"a": 1}}]).encode(),
     "rules[0]: rule 'Mine': label/annotation 'a'=1 needs a [A-Za-z_][A-Za-z0-9_]* name and "
     "a string value"),
    (json.dumps([{**RULE, "expr": "rate(orders_total[5m]) > NaN"}]).encode(),
     "rules[0]: rule 'Mine': malformed expression 'rate(orders_total[5m]) > NaN': NaN at "
     "column 26 compares false with every value; use a number"),
])
def test_a_malformed_rules_file_names_the_file_and_the_field(
    content: bytes, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rules.json"
    path.write_bytes(content)
    assert main(["rules", "list", "--rules", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sniper-otel rules: {path}: "), err
    assert message in err
