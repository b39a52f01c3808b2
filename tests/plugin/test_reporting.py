"""The "Captured telemetry" report section and its option/ini, through pytester.

In-process runs (see conftest.py): report sections are per test within one session.
"""

from __future__ import annotations

import pytest

from .pytester_helpers import literal, run_inprocess

SUITE = """
import pytest

from app import latency, log, orders, tracer


def work(clock):
    with tracer.start_as_current_span("flow", attributes={"symbol": "BTCUSDT"}):
        with tracer.start_as_current_span("place-order"):
            clock.tick(0.25)
            log.warning("slow fill")
    orders.add(2, {"side": "buy"})
    latency.record(250)


def test_passes(telemetry, clock):
    work(clock)


def test_fails(telemetry, clock):
    work(clock)
    assert False, "boom"


def test_fails_without_telemetry():
    assert False, "no capture here"


@pytest.fixture
def breaks_in_teardown(telemetry, clock):
    yield
    orders.add(1, {"side": "sell"})
    raise RuntimeError("teardown broke")


def test_teardown_fails(breaks_in_teardown, clock):
    work(clock)
"""


def section(when: str, *, sell: bool = False) -> list[str]:
    lines = [
        f"*- Captured telemetry {when} -*",
        "spans (2):",
        "   flow [[]UNSET[]] 250ms {symbol='BTCUSDT'}",
        "     place-order [[]UNSET[]] 250ms",
        "",
        "logs (1):",
        "   WARN  app: slow fill [[]trace=* span=*[]]",
        "",
        f"metrics ({3 if sell else 2} series):",
        "   orders_total{side='buy'} = 2",
    ]
    if sell:
        lines.append("   orders_total{side='sell'} = 1")
    return [*lines, "   latency_ms{} count=1 sum=250"]


def entry(result: pytest.RunResult, header: str) -> str:
    """The report entry under a "____ header ____" line, up to the next such line."""
    out = result.stdout.str()
    start = out.index(f" {header} _")
    nxt = out.find("\n____", start)
    nxt2 = out.find("\n====", start)
    ends = [e for e in (nxt, nxt2) if e != -1]
    return out[start : min(ends) if ends else len(out)]


def test_failed_tests_get_a_section_by_default(app: pytest.Pytester) -> None:
    app.makepyfile(test_suite=SUITE)
    result = run_inprocess(app, "-rP")
    result.assert_outcomes(passed=2, failed=2, errors=1)
    result.stdout.fnmatch_lines(["*_ test_fails _*", *section("call")], consecutive=False)
    result.stdout.fnmatch_lines(
        ["*_ ERROR at teardown of test_teardown_fails _*", *section("teardown", sell=True)]
    )
    # The section's lines come as one block:
    for lines in (section("call"), section("teardown", sell=True)):
        result.stdout.fnmatch_lines(lines, consecutive=True)
    assert "Captured telemetry" not in entry(result, "test_passes")
    assert "Captured telemetry" not in entry(result, "test_fails_without_telemetry")


@pytest.mark.parametrize(
    ("args", "ini", "passing_shows", "failing_shows"),
    [
        (("--sniper-otel-show=always",), "", True, True),
        (("--sniper-otel-show=never",), "", False, False),
        ((), "sniper_otel_show = always", True, True),
        (("--sniper-otel-show=failed",), "sniper_otel_show = never", False, True),
    ],
    ids=["always", "never", "ini", "option-beats-ini"],
)
def test_show_option_and_ini(
    app: pytest.Pytester,
    args: tuple[str, ...],
    ini: str,
    passing_shows: bool,
    failing_shows: bool,
) -> None:
    if ini:
        app.makeini(f"[pytest]\n{ini}\n")
    app.makepyfile(test_suite=SUITE)
    result = run_inprocess(app, "-rP", "-k", "test_passes or test_fails", *args)
    result.assert_outcomes(passed=1, failed=2)
    assert ("Captured telemetry call" in entry(result, "test_passes")) is passing_shows
    assert ("Captured telemetry call" in entry(result, "test_fails")) is failing_shows
    if passing_shows:
        result.stdout.fnmatch_lines(section("call"), consecutive=True)


def test_bad_show_value_is_a_usage_error(app: pytest.Pytester) -> None:
    result = run_inprocess(app, "--sniper-otel-show=sometimes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--sniper-otel-show: invalid choice: 'sometimes' (choose from *failed*always*never*)"]
    )
    app.makeini("[pytest]\nsniper_otel_show = sometimes\n")
    result = run_inprocess(app)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [literal("ERROR: sniper_otel_show must be one of failed, always, never, got 'sometimes'")]
    )


def test_options_are_in_one_group_in_help(app: pytest.Pytester) -> None:
    result = run_inprocess(app, "--help")
    result.stdout.fnmatch_lines(
        [
            "OpenTelemetry capture (pytest-sniper-otel):",
            "  --sniper-otel-show={failed,always,never}",
            "*when to add captured telemetry to a test's report*",
            "  --sniper-otel-log-level=SNIPER_OTEL_LOG_LEVEL",
            "*lowest stdlib logging level bridged into captured*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "  sniper_otel_show (string):",
            "*default for --sniper-otel-show",
            "  sniper_otel_log_level (string):",
            "*default for --sniper-otel-log-level",
        ]
    )


def test_markers_are_registered_with_their_signature(app: pytest.Pytester) -> None:
    result = run_inprocess(app, "--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.sniper_otel_clock(start=None, *, otel_follows=True): start the `clock`*"]
    )


def test_section_names_spans_that_never_ended(app: pytest.Pytester) -> None:
    app.makepyfile(
        test_leak="""
        from app import tracer

        def test_leaks(telemetry):
            tracer.start_span("pattern-check")      # never ended: never exported either
            with tracer.start_as_current_span("flow"):
                pass
            assert False
        """
    )
    result = run_inprocess(app)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- Captured telemetry call -*",
            "spans (1):",
            "   flow [[]UNSET[]] *ms",
            "   started, never ended: pattern-check",
            "",
            "logs (0):",
        ],
        consecutive=True,
    )
