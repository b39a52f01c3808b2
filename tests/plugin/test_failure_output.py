"""Failure output a person can read, through pytester: bounded reports on large captures
(full trees under -vv), one-line statuses, masked secrets, deep trees, no INTERNALERROR.

In-process runs (see conftest.py); the simulated clock makes every duration 0 ms.
"""

from __future__ import annotations

import pytest

from .pytester_helpers import failure, literal, run_inprocess

SUITE = '''
import logging

from opentelemetry import trace
from pytest_sniper_otel import descendant, span

tracer = trace.get_tracer("app")
log = logging.getLogger("app")
# Built here so the test's source, which pytest prints, doesn't hold it.
SECRET = "sk-live-" + "0123456789abcdef" * 3


def flows(n):
    for f in range(n):
        with tracer.start_as_current_span("trading-flow", attributes={"flow.id": f}):
            with tracer.start_as_current_span("detect"):
                with tracer.start_as_current_span("redis.GET"):
                    pass
            with tracer.start_as_current_span("risk"):
                pass
            for attempt in range(3):
                with tracer.start_as_current_span("place-order", attributes={"attempt": attempt}):
                    with tracer.start_as_current_span("http.POST"):
                        pass


def test_large_capture(telemetry, clock):
    flows(100)
    expected = span(
        "trading-flow",
        attributes={"flow.id": 42},
        children=[span("detect"), "risk", span("place-order", count=4)],
    )
    telemetry.assert_span_tree(expected)


def test_large_capture_passes(telemetry, clock):
    flows(100)
    telemetry.assert_span_tree(span("trading-flow", attributes={"flow.id": 42}))


def test_no_span_among_many(telemetry, clock):
    flows(100)
    telemetry.assert_no_span("redis.GET")


def test_deep_tree_passes(telemetry, clock):
    started, context = [], None
    for level in range(5000):
        s = tracer.start_span(f"level-{level}", context=context)
        context = trace.set_span_in_context(s)
        started.append(s)
    for s in reversed(started):
        s.end()
    telemetry.assert_span_tree(descendant("level-4999"))
    telemetry.assert_no_span("level-5000")


def test_multiline_status(telemetry, clock):
    try:
        with tracer.start_as_current_span("check"):
            raise AssertionError("first line\\nsecond line")
    except AssertionError:
        pass
    telemetry.assert_span_tree(span("check", status="OK"))


def test_secret_leaks(telemetry, clock):
    with tracer.start_as_current_span("sign", attributes={"auth": "Bearer " + SECRET}):
        log.info("signed with %s", SECRET)
    telemetry.assert_no_secrets(SECRET)


def test_secret_masked_in_later_failures(telemetry, clock):
    with tracer.start_as_current_span("sign", attributes={"auth": "Bearer " + SECRET}):
        pass
    try:
        telemetry.assert_no_secrets(SECRET)
    except AssertionError:
        pass
    telemetry.assert_span_tree(span("sign", attributes={"auth": "none"}))


def test_secret_written_in_the_test(telemetry, clock):
    with tracer.start_as_current_span("sign", attributes={"auth": "Bearer sk-test-abcdef"}):
        print("signing with sk-test-abcdef")
        log.warning("signing with sk-test-abcdef")
    telemetry.assert_no_secrets("sk-test-abcdef")


def test_deep_tree(telemetry, clock):
    started, context = [], None
    for level in range(5000):
        s = tracer.start_span(f"level-{level}", context=context)
        context = trace.set_span_in_context(s)
        started.append(s)
    for s in reversed(started):
        s.end()
    telemetry.assert_span_tree(descendant("level-4999", attributes={"x": 1}))


def test_deep_tree_compared(telemetry, clock):
    started, context = [], None
    for level in range(5000):
        s = tracer.start_span(f"level-{level}", context=context)
        context = trace.set_span_in_context(s)
        started.append(s)
    for s in reversed(started):
        s.end()
    assert telemetry.roots == [span("level-0", children=["nope"])]
'''


def error_lines(text: str) -> list[str]:
    """Exact patterns for the lines pytest prints for an AssertionError's message."""
    lines = text.strip("\n").split("\n")
    out = ["E       AssertionError: " + literal(lines[0])]
    out += ["E       " + literal(line) for line in lines[1:]]
    return out


LARGE_FAILURE = """
span tree mismatch at trading-flow > place-order: expected exactly 4 spans matching span('place-order', count=4) under 'trading-flow', found 3

expected:
   span('trading-flow', attributes={flow.id=42})
     span('detect')
     span('risk')
>>   span('place-order', count=4)

captured around the divergence (100 roots, 1,000 spans; -vv shows the full trees):
   ... 40 siblings: trading-flow x 40
   trading-flow [UNSET] 0ms {flow.id=40} (+9 spans below)
   trading-flow [UNSET] 0ms {flow.id=41} (+9 spans below)
   trading-flow [UNSET] 0ms {flow.id=42}
     detect [UNSET] 0ms (+1 span below)
     risk [UNSET] 0ms
>>   place-order [UNSET] 0ms {attempt=0}
       http.POST [UNSET] 0ms
>>   place-order [UNSET] 0ms {attempt=1}
       http.POST [UNSET] 0ms
>>   place-order [UNSET] 0ms {attempt=2}
       http.POST [UNSET] 0ms
   trading-flow [UNSET] 0ms {flow.id=43} (+9 spans below)
   trading-flow [UNSET] 0ms {flow.id=44} (+9 spans below)
   ... 55 siblings: trading-flow x 55
"""  # noqa: E501

LARGE_SECTION = [
    "*- Captured telemetry call -*",
    "spans (1,000; runs of same-shaped subtrees shown once as x N, -vv shows all):",
    "   trading-flow [[]UNSET[]] x 100, 0ms {flow.id=<100 values>}",
    "     detect [[]UNSET[]] 0ms",
    "       redis.GET [[]UNSET[]] 0ms",
    "     risk [[]UNSET[]] 0ms",
    "     place-order [[]UNSET[]] x 3, 0ms {attempt=<3 values>}",
    "       http.POST [[]UNSET[]] 0ms",
    "",
    "logs (0):",
]


@pytest.fixture
def suite(app: pytest.Pytester) -> pytest.Pytester:
    app.makepyfile(test_output=SUITE)
    return app


def test_large_capture_failure_is_bounded(suite: pytest.Pytester) -> None:
    result = run_inprocess(suite, "-k", "large_capture")
    result.assert_outcomes(passed=1, failed=1)
    entry = failure(result, "test_large_capture")
    entry.fnmatch_lines(error_lines(LARGE_FAILURE), consecutive=True)
    entry.fnmatch_lines(LARGE_SECTION, consecutive=True)
    # The whole entry, source and report section included (it was ~440 lines).
    assert len(entry.lines) <= 60, "\n".join(entry.lines)


def test_large_capture_full_trees_under_vv(suite: pytest.Pytester) -> None:
    result = run_inprocess(suite, "-vv", "-k", "test_large_capture")
    result.assert_outcomes(failed=1, passed=1)
    entry = failure(result, "test_large_capture")
    entry.fnmatch_lines(
        [
            "E       captured (100 roots, 1,000 spans):",
            "E          trading-flow [[]UNSET[]] 0ms {flow.id=0}",
            "E            detect [[]UNSET[]] 0ms",
            "E              redis.GET [[]UNSET[]] 0ms",
        ],
        consecutive=True,
    )
    entry.fnmatch_lines(
        [
            "E       >>   place-order [[]UNSET[]] 0ms {attempt=2}",
            "E              http.POST [[]UNSET[]] 0ms",
            "E          trading-flow [[]UNSET[]] 0ms {flow.id=43}",
        ],
        consecutive=True,
    )
    entry.fnmatch_lines(
        [
            "spans (1,000):",
            "   trading-flow [[]UNSET[]] 0ms {flow.id=0}",
            "*",
            "   trading-flow [[]UNSET[]] 0ms {flow.id=99}",
            "     detect [[]UNSET[]] 0ms",
        ]
    )
    assert len([line for line in entry.lines if "trading-flow [UNSET] 0ms" in line]) == 200


def test_status_description_with_newlines_stays_on_one_line(suite: pytest.Pytester) -> None:
    result = run_inprocess(suite, "-k", "multiline")
    result.assert_outcomes(failed=1)
    entry = failure(result, "test_multiline_status")
    line = r"check [ERROR(AssertionError: first line\nsecond line)] 0ms"
    entry.fnmatch_lines(
        error_lines(
            "span tree mismatch at check: no root span matched span('check', status='OK') among "
            r"captured spans; closest: status: expected OK, got ERROR (AssertionError: first "
            r"line\nsecond line)"
            "\n\nexpected:\n>> span('check', status='OK')\n\n"
            f"captured (1 root, 1 span):\n>> {line}"
        ),
        consecutive=True,
    )
    entry.fnmatch_lines(["*- Captured telemetry call -*", "spans (1):", "   " + literal(line)])


def test_secrets_are_masked_everywhere_we_print(suite: pytest.Pytester) -> None:
    result = run_inprocess(suite, "-k", "secret")
    result.assert_outcomes(failed=3)
    leaks = failure(result, "test_secret_leaks")
    leaks.fnmatch_lines(
        error_lines(
            "2 secret leak(s) in telemetry:\n"
            "  secret #1 in span 'sign' attribute 'auth'\n"
            "  secret #1 in log 'app' body"
        ),
        consecutive=True,
    )
    leaks.fnmatch_lines(
        [
            "*- Captured telemetry call -*",
            "spans (1):",
            "   sign [[]UNSET[]] 0ms {auth='Bearer ***'}",
            "",
            "logs (1):",
            "   INFO  app: signed with *** [[]trace=* span=*[]]",
        ],
        consecutive=True,
    )
    later = failure(result, "test_secret_masked_in_later_failures")
    later.fnmatch_lines(
        error_lines(
            "span tree mismatch at sign: no root span matched span('sign', attributes={auth="
            "'none'}) among captured spans; closest: attribute 'auth': expected 'none', got "
            "'Bearer ***'\n\nexpected:\n>> span('sign', attributes={auth='none'})\n\n"
            "captured (1 root, 1 span):\n>> sign [UNSET] 0ms {auth='Bearer ***'}"
        ),
        consecutive=True,
    )
    # pytest's own sections and the traceback's source lines too:
    written = failure(result, "test_secret_written_in_the_test")
    written.fnmatch_lines(
        [
            '>       telemetry.assert_no_secrets("***")',
            "E       AssertionError: 2 secret leak(s) in telemetry:",
            "E         secret #1 in span 'sign' attribute 'auth'",
            "E         secret #1 in log 'app' body",
        ],
        consecutive=True,
    )
    written.fnmatch_lines(["*- Captured stdout call -*", "signing with ***"], consecutive=True)
    written.fnmatch_lines(
        ["*- Captured log call -*", "WARNING  app:test_output.py:* signing with ***"],
        consecutive=True,
    )
    # Not the secrets, nor any prefix of them that a clipped value would leave behind.
    assert "sk-live" not in result.stdout.str()
    assert "sk-test" not in result.stdout.str()


def test_a_5000_level_tree_renders(suite: pytest.Pytester) -> None:
    result = run_inprocess(suite, "-k", "deep_tree")
    result.assert_outcomes(failed=2, passed=1)
    assert "INTERNALERROR" not in result.stdout.str()
    assert "RecursionError" not in result.stdout.str()
    failure(result, "test_deep_tree").fnmatch_lines(
        error_lines(
            "span tree mismatch at level-0 > level-1 > ... 4,993 levels ... > level-4995 > "
            "level-4996 > level-4997 > level-4998 > level-4999: no descendant matched "
            "descendant('level-4999', attributes={x=1}) among captured spans; closest: attribute "
            "'x' missing (has {})\n\n"
            "expected:\n>> descendant('level-4999', attributes={x=1})\n\n"
            "captured around the divergence (1 root, 5,000 spans; -vv shows the full trees):\n"
            "   level-0 [UNSET] 0ms\n"
            "     level-1 [UNSET] 0ms\n"
            "       ... 4,993 levels ...\n"
            "       level-4995 [UNSET] 0ms\n"
            "         level-4996 [UNSET] 0ms\n"
            "           level-4997 [UNSET] 0ms\n"
            "             level-4998 [UNSET] 0ms\n"
            ">>             level-4999 [UNSET] 0ms"
        ),
        consecutive=True,
    )
    failure(result, "test_deep_tree").fnmatch_lines(
        [
            "spans (5,000; runs of same-shaped subtrees shown once as x N, -vv shows all):",
            "   level-0 [[]UNSET[]] 0ms",
            "     level-1 [[]UNSET[]] 0ms",
            "*",
            "... 4,960 more lines (-vv shows every span)",
        ]
    )
    failure(result, "test_deep_tree_compared").fnmatch_lines(
        [
            "E       AssertionError: assert span tree mismatch at level-0: no child matched "
            "span('nope') under 'level-0' (candidates: 'level-1')"
        ]
    )


def test_deep_tree_under_vv_indents_at_most_40_levels(suite: pytest.Pytester) -> None:
    result = run_inprocess(suite, "-vv", "-k", "test_deep_tree and not comp")
    result.assert_outcomes(failed=1, passed=1)
    failure(result, "test_deep_tree").fnmatch_lines(
        [
            "E       captured (1 root, 5,000 spans):",
            "E          level-0 [[]UNSET[]] 0ms",
            "*",
            "E          " + "  " * 40 + "level-40 [[]UNSET[]] 0ms",
            "E          " + "  " * 40 + "(depth 41) level-41 [[]UNSET[]] 0ms",
            "*",
            "E       >> " + "  " * 40 + "(depth 4999) level-4999 [[]UNSET[]] 0ms",
        ]
    )


def test_assert_no_span_on_a_large_capture_is_bounded(suite: pytest.Pytester) -> None:
    result = run_inprocess(suite, "-k", "no_span_among_many")
    result.assert_outcomes(failed=1)
    entry = failure(result, "test_no_span_among_many")
    entry.fnmatch_lines(
        error_lines(
            "expected no span matching span('redis.GET'), found 100: trading-flow > detect > "
            "redis.GET x 100\n\n"
            "captured around them (100 roots, 1,000 spans; -vv shows the full trees):\n"
            + "".join(
                f"   trading-flow [UNSET] 0ms {{flow.id={f}}}\n"
                "     detect [UNSET] 0ms\n"
                ">>     redis.GET [UNSET] 0ms\n"
                "     risk [UNSET] 0ms\n"
                "     place-order [UNSET] 0ms {attempt=0} (+1 span below)\n"
                "     ... 2 siblings: place-order x 2\n"
                for f in range(3)
            )
            + "   trading-flow [UNSET] 0ms {flow.id=3} (+9 spans below)\n"
            "   trading-flow [UNSET] 0ms {flow.id=4} (+9 spans below)\n"
            "   ... 95 siblings: trading-flow x 95\n"
            "(+97 more marked spans not shown; -vv shows the full trees)"
        ),
        consecutive=True,
    )
    assert len(entry.lines) <= 60, "\n".join(entry.lines)


def test_a_rendering_error_is_reported_not_an_internalerror(app: pytest.Pytester) -> None:
    app.makeconftest(
        """
        import pytest
        from pytest_sniper_otel.telemetry import Telemetry

        def broken(self):
            raise RuntimeError("cannot draw")

        @pytest.fixture(autouse=True)
        def broken_render(monkeypatch):
            # Undone at teardown, after the call phase's report section was made.
            monkeypatch.setattr(Telemetry, "render", broken)
        """
    )
    app.makepyfile("def test_fails(telemetry):\n    assert False\n")
    result = run_inprocess(app)
    result.assert_outcomes(failed=1)
    assert "INTERNALERROR" not in result.stdout.str()
    failure(result, "test_fails").fnmatch_lines(
        [
            "*- Captured telemetry call -*",
            "sniper-otel could not render this test's telemetry: RuntimeError: cannot draw",
        ],
        consecutive=True,
    )


def test_a_rendering_error_in_an_assert_comparison_keeps_the_failure(app: pytest.Pytester) -> None:
    app.makeconftest(
        """
        import pytest
        import pytest_sniper_otel.render

        def broken(*args, **kwargs):
            raise RuntimeError("cannot draw")

        @pytest.fixture(autouse=True)
        def broken_render(monkeypatch):
            monkeypatch.setattr(pytest_sniper_otel.render, "render_mismatch", broken)
        """
    )
    app.makepyfile(
        """
        from app import tracer
        from pytest_sniper_otel import span

        def test_fails(telemetry):
            with tracer.start_as_current_span("a"):
                pass
            assert telemetry.roots == [span("b")]
        """
    )
    result = run_inprocess(app, "--sniper-otel-show=never")
    result.assert_outcomes(failed=1)
    failure(result, "test_fails").fnmatch_lines(
        [
            "E       AssertionError: assert span tree mismatch at top level: no root span "
            "matched span('b') among captured spans (candidates: 'a')",
            "E         (sniper-otel could not render the trees: RuntimeError: cannot draw)",
        ],
        consecutive=True,
    )
