"""``==`` against span(...) (pytest_assertrepr_compare), colour and NO_COLOR, assert_no_span
failures, and SpecError for malformed expectations.

In-process runs (see conftest.py); NO_COLOR and CI are set per run with monkeypatch, which
pytest reads when the inner session configures.
"""

from __future__ import annotations

import pytest

from .pytester_helpers import assert_failures, failure, literal, run_inprocess

TREE = """
from app import tracer
from pytest_sniper_otel import span


def bot(clock):
    with tracer.start_as_current_span("flow", attributes={"symbol": "BTCUSDT"}):
        with tracer.start_as_current_span("detect"):
            clock.tick(0.5)
        with tracer.start_as_current_span("risk"):
            pass


def test_roots_equal(telemetry, clock):
    bot(clock)
    assert telemetry.roots == span("flow", children=["risk", "detect"])


def test_node_equal(telemetry, clock):
    bot(clock)
    assert telemetry.roots[0].children[1] == span("risk", status="ERROR")


def test_spec_on_the_left(telemetry, clock):
    bot(clock)
    assert span("flow", attributes={"symbol": "ETHUSDT"}) == telemetry.roots


def test_assert_span_tree(telemetry, clock):
    bot(clock)
    telemetry.assert_span_tree(span("flow", children=[span("risk", kind="CLIENT")]))


def test_lists_equal(telemetry, clock):
    bot(clock)
    tracer.start_span("audit").end()
    assert telemetry.roots == [span("flow"), span("audit")]
    assert telemetry.roots == [span("flow"), span("audit"), span("extra")]


def test_no_span(telemetry, clock):
    bot(clock)
    with tracer.start_as_current_span("flow"):
        pass
    telemetry.assert_no_span("flow")
"""

ROOTS_EQUAL = """
    assert span tree mismatch at flow > detect: span('detect') matched only before the previous expected sibling (children are matched in start order; use any_order=True)

    expected:
       span('flow')
         span('risk')
    >>   span('detect')

    captured (1 root, 3 spans):
       flow [UNSET] 500ms {symbol='BTCUSDT'}
    >>   detect [UNSET] 500ms
         risk [UNSET] 0ms
"""  # noqa: E501

NODE_EQUAL = """
    assert span tree mismatch at flow > risk: status: expected ERROR, got UNSET

    expected:
    >> span('risk', status='ERROR')

    captured (1 root, 1 span):
    >> risk [UNSET] 0ms
"""

SPEC_ON_THE_LEFT = """
    assert span tree mismatch at flow: no root span matched span('flow', attributes={symbol='ETHUSDT'}) among captured spans; closest: attribute 'symbol': expected 'ETHUSDT', got 'BTCUSDT'

    expected:
    >> span('flow', attributes={symbol='ETHUSDT'})

    captured (1 root, 3 spans):
    >> flow [UNSET] 500ms {symbol='BTCUSDT'}
         detect [UNSET] 500ms
         risk [UNSET] 0ms
"""  # noqa: E501

LISTS_EQUAL = """
    assert span tree mismatch at top level: no root span matched span('extra') among captured spans (candidates: none)

    expected:
       span('flow')
       span('audit')
    >> span('extra')

    captured (2 roots, 4 spans):
       flow [UNSET] 500ms {symbol='BTCUSDT'}
         detect [UNSET] 500ms
         risk [UNSET] 0ms
       audit [UNSET] 0ms
"""  # noqa: E501

NO_SPAN = """
    expected no span matching span('flow'), found 2: flow x 2

    captured (2 roots, 4 spans):
    >> flow [UNSET] 500ms {symbol='BTCUSDT'}
         detect [UNSET] 500ms
         risk [UNSET] 0ms
    >> flow [UNSET] 0ms
"""


def _no_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    # pytest never truncates assertion explanations on CI; make local and CI runs alike.
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)


def test_equality_explains_the_mismatch(
    app: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_ci(monkeypatch)
    app.makepyfile(test_eq=TREE)
    result = run_inprocess(app, "--sniper-otel-show=never", "-vv")
    result.assert_outcomes(failed=6)
    assert_failures(
        result,
        {
            "test_roots_equal": ROOTS_EQUAL,
            "test_lists_equal": LISTS_EQUAL,
            "test_node_equal": NODE_EQUAL,
            "test_spec_on_the_left": SPEC_ON_THE_LEFT,
        },
        exc="AssertionError",
        cont_indent=9,
    )
    assert_failures(result, {"test_no_span": NO_SPAN})


def test_equality_explanation_is_truncated_after_the_reason(
    app: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without -vv pytest cuts long explanations to 8 lines: the first line, which pytest
    # prints after "assert", carries the reason, so that survives.
    _no_ci(monkeypatch)
    app.makepyfile(test_eq=TREE)
    result = run_inprocess(app, "--sniper-otel-show=never", "-k", "roots_equal")
    result.assert_outcomes(failed=1)
    failure(result, "test_roots_equal").fnmatch_lines(
        [
            literal(
                "E       AssertionError: assert span tree mismatch at flow > detect: span('detect')"
                " matched only before the previous expected sibling (children are matched in"
                " start order; use any_order=True)"
            ),
            "E         ",
            "E         expected:",
            "E            span('flow')",
            "E              span('risk')",
            "E         >>   span('detect')",
            "E         ",
            "E         captured (1 root, 3 spans):...",
            "E         ",
            "E         ...Full output truncated, use '-vv' to show",
        ],
        consecutive=True,
    )


RED = "\x1b[31;1m"


@pytest.mark.parametrize("no_color", [False, True], ids=["colour", "NO_COLOR"])
def test_divergence_is_red_only_with_markup_and_without_no_color(
    app: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, no_color: bool
) -> None:
    _no_ci(monkeypatch)
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    app.makepyfile(test_eq=TREE)
    result = run_inprocess(
        app,
        "--sniper-otel-show=never",
        "-vv",
        "--color=yes",
        "-k",
        "roots_equal or assert_span_tree",
    )
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "\x1b[" in out  # pytest's own markup is on either way (--color=yes)
    marked = [
        f"{RED}>>   span('detect')\x1b[0m",  # == via pytest_assertrepr_compare
        f"{RED}>>   detect [UNSET] 500ms\x1b[0m",
        f"{RED}>>   span('risk', kind='CLIENT')\x1b[0m",  # assert_span_tree
        f"{RED}>>   risk [UNSET] 0ms\x1b[0m",
    ]
    if no_color:
        assert RED not in out
        assert ">>   span('detect')" in out and ">>   risk [UNSET] 0ms" in out
    else:
        missing = [m for m in marked if m not in out]
        assert not missing, out


SPEC_ERRORS = {
    "span('x', atributes={})": "span('x') got unknown keyword 'atributes' (did you mean "
    "'attributes'?); valid keywords: attributes, status, status_description, kind, events, "
    "children, any_order, exact, count, duration_ms",
    "span('x', frobnicate=1)": "span('x') got unknown keyword 'frobnicate'; valid keywords: "
    "attributes, status, status_description, kind, events, children, any_order, exact, count, "
    "duration_ms",
    "descendant('x', chldren=[])": "descendant('x') got unknown keyword 'chldren' (did you mean "
    "'children'?); valid keywords: attributes, status, status_description, kind, events, "
    "children, any_order, exact, count, duration_ms",
    "absent('x', count=2)": "absent('x') takes no count: it means count=0",
    "span(3)": "span(3): name must be a string, a compiled regex or a predicate",
    "span('x', attributes=[('a', 1)])": "span('x'): attributes must be a mapping, got list "
    "[('a', 1)]",
    "span('x', attributes={1: 'a'})": "span('x'): attribute names must be str, got int 1",
    "span('x', status='FAILED')": "span('x'): status must be one of UNSET, OK, ERROR, got 'FAILED'",
    "span('x', kind='RPC')": "span('x'): kind must be one of INTERNAL, SERVER, CLIENT, PRODUCER, "
    "CONSUMER, got 'RPC'",
    "span('x', events='exception')": "span('x'): events must be a list, e.g. events=['exception']",
    "span('x', events=[3])": "span('x'): events[0] must be a name or event(...), got int 3",
    "span('x', events={'e'})": "span('x'): events must be a list of names or event(...), got "
    "set {'e'}",
    "span('x', children='y')": "span('x'): children must be a list, e.g. children=['y']",
    "span('x', children=[1])": "span('x'): children[0] must be span(...) or a name, got int 1",
    "span('x', children={'y': span('z')})": "span('x'): children must be a list of span(...) or "
    "names, got dict {'y': span('z')}",
    "span('x', duration_ms='120')": "span('x'): duration_ms must be a number of milliseconds or "
    "a matcher (ANY, a predicate, pytest.approx(...)), got str '120'",
    "span('x', duration_ms=-1)": "span('x'): duration_ms must be a finite number >= 0, got -1",
    "span('x', any_order='yes')": "span('x'): any_order must be True or False, got str 'yes'",
    "span('x', status_description=3)": "span('x'): status_description must be a str, a compiled "
    "regex or a predicate, got int 3",
    "event('e', [1])": "event('e', attributes): attributes must be a mapping, got list [1]",
    "event(3)": "event(name): name must be a str, got int 3",
    "span('x', count=-1)": "span('x'): count must be a non-negative int, got -1",
    "span('x', count=True)": "span('x'): count must be a non-negative int, got True",
    "telemetry.assert_span_tree('x')": "assert_span_tree() takes span(...) or a list of them, "
    "got str",
    "telemetry.assert_span_tree([span('x'), 'y'])": "assert_span_tree(): item 1 must be "
    "span(...), got str",
    "telemetry.assert_span_tree(span('x'), exact=1)": "assert_span_tree(exact): exact must be "
    "True or False, got int 1",
    "telemetry.find_spans('x', atributes={})": "span('x') got unknown keyword 'atributes' (did "
    "you mean 'attributes'?); valid keywords: attributes, status, status_description, kind, "
    "events, children, any_order, exact, count, duration_ms",
    "telemetry.assert_no_span('x', stats='OK')": "span('x') got unknown keyword 'stats' (did you "
    "mean 'status'?); valid keywords: attributes, status, status_description, kind, events, "
    "children, any_order, exact, count, duration_ms",
}


def test_malformed_expectations_raise_spec_error(app: pytest.Pytester) -> None:
    lines = ["from pytest_sniper_otel import absent, descendant, event, span", ""]
    for i, call in enumerate(SPEC_ERRORS):
        lines += [f"def test_{i}(telemetry):", f"    {call}", ""]
    # Accepted spellings, so the errors above are about the spelling and nothing else:
    lines += [
        "def test_accepted(telemetry):",
        "    from opentelemetry.trace import SpanKind, StatusCode",
        "    span('x', kind='client', status='ok', events=['e'], children=['y'], count=0)",
        "    span('x', kind=SpanKind.CLIENT, status=StatusCode.ERROR)",
        "    import pytest",
        "    from pytest_sniper_otel import ANY",
        "    span('x', duration_ms=pytest.approx(120), status_description=ANY, any_order=True)",
        "    span('x', duration_ms=lambda ms: ms < 5, events=('e', event('f', {'a': 1})))",
    ]
    app.makepyfile(test_specs="\n".join(lines))
    result = run_inprocess(app, "--sniper-otel-show=never")
    result.assert_outcomes(failed=len(SPEC_ERRORS), passed=1)
    assert_failures(
        result,
        {f"test_{i}": message for i, message in enumerate(SPEC_ERRORS.values())},
        exc="pytest_sniper_otel.errors.SpecError",
    )
