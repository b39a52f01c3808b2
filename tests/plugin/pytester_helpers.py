"""Helpers for the plugin's pytester tests: the sample app, exact-output matching."""

from __future__ import annotations

import re
import textwrap

import pytest

APP = '''
"""A tiny instrumented "bot": tracer, instruments and logger obtained at import time."""
import logging

from opentelemetry import metrics, trace

tracer = trace.get_tracer("app")
meter = metrics.get_meter("app")
orders = meter.create_counter("orders_total")
positions = meter.create_up_down_counter("open_positions")
balance = meter.create_gauge("balance_usdt")
latency = meter.create_histogram(
    "latency_ms", unit="ms", explicit_bucket_boundaries_advisory=[10, 100, 1000, 5000]
)
log = logging.getLogger("app")
'''


def literal(line: str) -> str:
    """An fnmatch pattern that matches ``line`` exactly (``[`` ``*`` ``?`` escaped)."""
    return "".join(f"[{c}]" if c in "[]*?" else c for c in line)


def error_block(
    message: str, *, exc: str = "AssertionError", indent: int = 7, cont_indent: int | None = None
) -> list[str]:
    """Exact-line patterns for an exception as pytest prints it: "E" + indent + text, the
    first line prefixed with the exception's name (``exc=""`` for none). Explanations from
    pytest_assertrepr_compare continue at ``cont_indent`` (9)."""
    lines = message.split("\n")
    if exc:
        lines[0] = f"{exc}: {lines[0]}"
    rest = indent if cont_indent is None else cont_indent
    return [
        "E" + " " * (indent if i == 0 else rest) + literal(line) for i, line in enumerate(lines)
    ]


def failure(result: pytest.RunResult, test_name: str) -> pytest.LineMatcher:
    """The lines of ``test_name``'s entry in the FAILURES section (header to next header)."""
    lines = result.outlines
    header = re.compile(rf"^_+ {re.escape(test_name)} _+$")
    starts = [i for i, line in enumerate(lines) if header.match(line)]
    assert starts, f"no failure section for {test_name}:\n" + "\n".join(lines)
    start = starts[0]
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if re.match(r"^_{3,} \S+ _{3,}$", lines[i]) or lines[i].startswith("=====")
        ),
        len(lines),
    )
    return pytest.LineMatcher(lines[start:end])


def assert_failures(
    result: pytest.RunResult,
    messages: dict[str, str],
    *,
    exc: str = "AssertionError",
    indent: int = 7,
    cont_indent: int | None = None,
) -> None:
    """Each named test failed with exactly this message (every line, consecutively)."""
    for test_name, message in messages.items():
        text = textwrap.dedent(message).strip("\n")
        failure(result, test_name).fnmatch_lines(
            error_block(text, exc=exc, indent=indent, cont_indent=cont_indent), consecutive=True
        )


# What every inner run gets (tests/conftest.py puts it in PYTEST_ADDOPTS, which pytester
# clears): the OTel plugins the test extra installs would trace the run, so they stay out
# unless a test asks for them; pytest-asyncio, which loads in every run, warns in each one
# whose configuration leaves its fixture loop scope unset, and that warning is the inner
# run's configuration-time warning, which no filter of the outer run sees.
FOREIGN_OTEL_PLUGINS = "-p no:pytest_opentelemetry -p no:logfire -p no:pytest_logfire"
ASYNCIO_LOOP_SCOPE = "-o asyncio_default_fixture_loop_scope=function"
INNER_RUN_ADDOPTS = f"{FOREIGN_OTEL_PLUGINS} {ASYNCIO_LOOP_SCOPE}"

# Plugins with nothing to do with ours, kept out of the inner runs that use these helpers:
# the cache writes files, Hypothesis' plugin imports all of Hypothesis at session end
# (~0.5 s a run), and pytest-randomly would shuffle the inner tests whose report order the
# tests assert (a test that wants it passes "-p randomly" after these).
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:randomly")


def run_inprocess(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess(*QUIET, *args)


def run_subprocess(
    pytester: pytest.Pytester, *args: str, timeout: float | None = None
) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*QUIET, *args, timeout=timeout)


def workers_by_test(result: pytest.RunResult, outcome: str = "PASSED") -> dict[str, str]:
    """The worker of each test with ``outcome``, from pytest-xdist's verbose lines
    ("[gw1] [ 20%] PASSED id")."""
    lines = (re.match(rf"\[(gw\d+)\] \[ *\d+%\] {outcome} (\S+)$", line.strip())
             for line in result.outlines)
    return {m.group(2): m.group(1) for m in lines if m}
