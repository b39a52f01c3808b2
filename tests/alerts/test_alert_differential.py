"""Our evaluator against real Prometheus: generated timelines and rules, every evaluation.

Each generated :class:`Case` runs through our evaluator and becomes a promtool unit test that
checks every evaluation: alert states (pending too), labels, and every clause's value, NaN
and infinities included. All cases go through one promtool process. On a disagreement the
test runs Hypothesis again, calling promtool on each example, so the case it reports is
shrunk; add it below as an ``@example``. CI runs 300 cases; ``nox -s rules`` runs 3,000
(``SNIPER_OTEL_RULES_CASES``).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, Phase, example, given, seed, settings

from pytest_sniper_otel.alerts import RuleError, load_rules, rule
from pytest_sniper_otel.alerts.prometheus import to_yaml

from .differential import (
    CATALOG,
    Case,
    Series,
    cases,
    evaluate,
    promtool_files,
    quoted,
    run_promtool_tests,
)

CASES = int(os.environ.get("SNIPER_OTEL_RULES_CASES", "300"))
SEED = int(os.environ.get("SNIPER_OTEL_RULES_SEED", "20260101"))
_QUIET = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]

# Minimal cases the differential test found against the evaluator before it followed
# Prometheus; each stands for a class of disagreement.
_H = ((0, 1, 0, 0), (0, 2, 0, 0), (0, 3, 0, 0))  # nothing in the lowest bucket
EXAMPLES: list[Case] = [
    # crash: histogram_quantile(0, ...) with an empty lowest bucket divided 0 by 0 (NaN)
    Case((("quantile(0.0, h[20s]) > 0.0", 0.0),), (Series("h", (), _H),), 10.0, 10.0),
    # NaN in max/min: NaN loses to any number (Python's max kept the NaN it met first)
    Case((("max(g) > 0.0", 0.0),),
         (Series("g", (("a", "x"),), (0.0, math.nan)), Series("g", (), (0.0, 0.0))), 10.0, 10.0),
    # avg rounding: Prometheus' mean of 0, 0.3, 0.9 is 0.4 in every order, not 0.39999999999999997
    Case((("avg(g) < 0.4", 0.0),), tuple(Series("g", (("a", v),), (x,))
                                         for v, x in (("x", 0.0), ("y", 0.3), ("xy", 0.9)))),
    # avg overflow: the mean of 1e308 and 1e308 is 1e308, not +Inf
    Case((("avg(g) > 0.0", 0.0),),
         (Series("g", (("a", "x"),), (1e308,)), Series("g", (), (1e308,)))),
    # absent() labels: a="" is no label
    Case((('absent(g{a=""})', 0.0),), (), 10.0, 10.0),
    # absent() reads its matchers in order: a later = sets a label a != before it removed
    Case((('absent(g{a!="", a="x"})', 0.0),), ()),
    # ...but a rule's matchers arrive sorted by their text: a="x" then a=~"x.*" drops a
    Case((('absent(h{a=~"x.*", a="x"})', 0.0),), (), 10.0, 10.0),
    # RE2 semantics: \d is ASCII, a{,2} is literal text, [[:alpha:]] is a class
    Case(((r'max(g{a=~"\d"}) > 0.0', 0.0), ('max(g{a=~"a{,2}"}) > 0.0', 0.0),
          ('max(g{a=~"[[:alpha:]]+"}) > 0.0', 0.0)),
         tuple(Series("g", (("a", v),), (1.0,)) for v in ("\u0663", "a{,2}", "xy"))),
    # valid RE2 that Python's re refused
    Case(((r'max(g{a=~"\pL+"}) > 0.0 and max(g{a=~"\x{78}+"}) > 0.0', 0.0),
          (r'max(g{b=~"\Qa.b\E"}) > 0.0', 0.0)),
         (Series("g", (("a", "xx"), ("b", "a.b")), (1.0,)),)),
]  # fmt: skip


TestFunction = TypeVar("TestFunction", bound=Callable[..., None])


def _with_examples(test: TestFunction) -> TestFunction:
    for case in reversed(EXAMPLES):
        test = example(case=case)(test)
    return test


@pytest.mark.timeout(300 * max(1, CASES // 300))  # the suite's bound per 300 cases
def test_evaluator_agrees_with_promtool(promtool: str, tmp_path: Path) -> None:
    generated: list[tuple[Case, Path]] = []

    @seed(SEED)
    @settings(max_examples=CASES, database=None, deadline=None, suppress_health_check=_QUIET,
              phases=[Phase.explicit, Phase.generate])  # fmt: skip
    @given(case=cases())
    @_with_examples
    def generate(case: Case) -> None:
        ev = evaluate(case)  # a crash in our evaluator fails (and shrinks) right here
        index = len(generated)
        generated.append((case, promtool_files(case, ev, tmp_path, index)))

    generate()
    assert len(generated) >= min(CASES, 300) + len(EXAMPLES) - 1
    failures = run_promtool_tests(promtool, [path for _, path in generated])
    if not failures:
        return
    # shrink: the same seed again, promtool on every example until one fails
    shrink_dir = tmp_path / "shrink"
    shrink_dir.mkdir()

    @seed(SEED)
    @settings(max_examples=CASES, database=None, deadline=None, suppress_health_check=_QUIET,
              phases=[Phase.explicit, Phase.generate, Phase.shrink])  # fmt: skip
    @given(case=cases())
    @_with_examples
    def agrees(case: Case) -> None:
        path = promtool_files(case, evaluate(case), shrink_dir, 0)
        failed = run_promtool_tests(promtool, [path])
        assert not failed, "\n".join(failed.values())

    first = next(iter(failures.items()))
    try:
        agrees()
    except AssertionError as exc:
        shrunk = "\n".join(getattr(exc, "__notes__", []))
        raise AssertionError(
            f"{len(failures)} of {len(generated)} cases disagree with promtool; the first "
            f"({first[0]}):\n{first[1]}\n\nshrunk to {shrunk}\n{exc}"
        ) from None
    pytest.fail(f"{len(failures)} cases disagree but none did again when shrinking:\n{first}")


def test_a_case_is_what_its_snapshots_say() -> None:
    case = Case(
        (("max(g) > 0.85", 0.0),),
        (Series("g", (("a", "x"),), (math.nan, 0.9)), Series("g", (), (0.9, None, math.nan))),
        evaluation_interval=15.0,
    )
    snaps = case.snapshots()
    assert [len(list(s)) for s in snaps] == [2, 1, 1]
    # NaN loses to any number in max; a lone NaN is NaN
    assert [e.values["R0"] for e in case.evaluate().evaluations][:2] == [0.9, 0.9]
    assert math.isnan(case.evaluate().evaluations[2].values["R0"] or 0.0)


# Go's RE2 flavour (Prometheus 2.42 is built with Go 1.19) against what we load
PATTERNS = [
    # Prometheus refuses these: lookaround, \Z, backreferences, possessive and atomic groups,
    # and what C++ RE2 would take but Go does not (\C, (?<name>...))
    "(?=a)", "(?!a)", "(?<=a)b", r"a\Z", r"(a)\1", "a++", "(?>a)", r"\C", "(?<n>a)",
    "a{1001}", "x{2}{3}", "(?x) a", r"\Qab", "[z-a]", r"\pX", "(", "a**", r"\e", "(?#c)",
    # valid RE2 (Python's re refuses or reads them otherwise)
    r"\pL+", r"\x{61}", r"\Qa.b\E", "[[:alpha:]]+", "a{,2}", r"\d", r"\p{Greek}", "(?i)k",
    "(?P<n>a)(?P<n>b)", r"\141", "[]a]", "[^]a]", r"[\d-z]", "a{1000}", r"\z", "(?U)a+",
    "a)(b", "", ".*",
]  # fmt: skip


def test_we_load_exactly_the_regexes_prometheus_loads(promtool: str, tmp_path: Path) -> None:
    ours: dict[str, str | None] = {}
    files = []
    for i, pattern in enumerate(PATTERNS):
        try:
            load_rules([rule("A", f"max(g{{a=~{quoted(pattern)}}}) > 0")], catalog=CATALOG)
            ours[pattern] = None
        except RuleError as exc:
            ours[pattern] = str(exc)
        path = tmp_path / f"rules-{i}.yml"
        path.write_text(to_yaml({"groups": [{"name": "g", "rules": [
            {"alert": "A", "expr": f"max(g{{a=~{json.dumps(pattern)}}}) > 0"}]}]}))  # fmt: skip
        files.append(path.name)
    proc = subprocess.run([promtool, "check", "rules", *files], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    sections = re.split(r"^Checking (\S+)$", proc.stdout + proc.stderr, flags=re.MULTILINE)
    refused = {name for name, body in zip(sections[1::2], sections[2::2], strict=True)
               if "SUCCESS" not in body}  # fmt: skip
    theirs = {p: f"rules-{i}.yml" in refused for i, p in enumerate(PATTERNS)}
    assert {p: ours[p] is not None for p in PATTERNS} == theirs, ours
    assert ours["(?=a)"] == (
        "rule 'A': malformed expression 'max(g{a=~\"(?=a)\"}) > 0': regular expression "
        "'(?=a)' would not load in Prometheus: invalid perl operator: (?="
    )
