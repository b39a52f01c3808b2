"""The chaos HTML report: drawn from real runs' journals, failing rows first, every scenario
with its timeline and traces; bad journals refused naming the field."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# numpy refuses a second import in one process, and a figure module imported afresh meets
# the gridspec classes the kept `matplotlib` package still holds: load what the report draws
# with here, before an in-process pytester run imports it first and drops it from sys.modules
import matplotlib.backends.backend_svg
import matplotlib.figure  # noqa: F401
import pytest

from pytest_sniper_otel.chaos import Scenario, expect_alert, fault, run_scenario
from pytest_sniper_otel.chaos.cli import main as chaos_main
from pytest_sniper_otel.chaos.faults import Fault, register
from pytest_sniper_otel.chaos.report import JournalError, parse_journal, render, write_index


@register
@dataclass
class SilentErrorSpan(Fault):
    """Instrumentation gone wrong: an ERROR span with neither exception nor description."""

    name = "model.test_report_silent_error"
    target = "model"

    def apply(self, target: Any) -> None:
        from opentelemetry import trace

        tracer = trace.get_tracer("report-test")
        with tracer.start_as_current_span("careless-parent"), \
                tracer.start_as_current_span("silent-failure") as span:
            span.set_status(trace.StatusCode.ERROR)
        self.struck()


def _outage() -> Scenario:
    return Scenario(
        name="outage", title="Redis refuses connections for three minutes",
        faults=[fault("redis.outage", start=30, duration=180)],
        warmup=30.0, duration=240.0, recovery=120.0,
        alerts=[expect_alert("RedisUnavailable", within="3m", resolves_within="2m")],
    )


def _careless() -> Scenario:
    return Scenario(
        name="careless", title="an instrumentation bug",
        faults=[fault("model.test_report_silent_error", start=10, duration=20)],
        warmup=30.0, duration=60.0, recovery=30.0, baseline=False,
    )


@pytest.fixture(scope="module")
def journals() -> list[dict[str, Any]]:
    runs = [run_scenario(_outage(), seed=3), run_scenario(_careless(), seed=3)]
    assert runs[0].ok, runs[0].failure_message()
    assert [c.name for c in runs[1].broken] == ["error_spans_carry_exception"]
    # through JSON text, as a journal file would be
    return [json.loads(json.dumps(r.to_json(), default=str)) for r in runs]


def _sections(page: str) -> dict[str, str]:
    parts = re.split(r"(?=<section class='scenario')", page)
    return {re.search(r"data-scenario='([^']+)'", p).group(1): p  # type: ignore[union-attr]
            for p in parts[1:]}


def test_the_journal_carries_what_the_report_draws(journals: list[dict[str, Any]]) -> None:
    outage = journals[0]
    assert outage["journal_version"] == 2
    assert outage["fault_windows"] == [
        {"fault": "redis.outage", "start": 60.0, "end": 240.0, "hits": outage["faults"][0][
            "activity"][0]["hits"]}]
    [series] = outage["alert_series"]
    assert series["alert"] == "RedisUnavailable" and series["role"] == "expected"
    assert series["clauses"] == [{
        "expr": 'rate(cache_operation_latency_ms{result="error"}[1m]) / '
                "rate(cache_operation_latency_ms[1m]) > 0.5",
        "op": ">", "threshold": 0.5}]
    times = [row[0] for row in series["series"]]
    assert times == [15.0 * k for k in range(len(times))] and times[-1] == 390.0
    assert len(series["baseline_series"]) == len(series["series"])
    [episode] = series["episodes"]
    delay = outage["alerts"]["expected"][0]["detection_delay"]
    assert episode["fired"] == series["fault_start"] + delay == 60.0 + delay
    over = [t for t, v in series["series"] if v is not None and v > 0.5]
    assert over[0] == episode["pending"]
    assert outage["traces"]["first_broken"] is None
    rep = outage["traces"]["representative"]
    assert 60.0 <= rep["spans"][0]["start"] < 240.0
    assert any(s["status"] == "ERROR" for s in rep["spans"])


def test_the_first_broken_trace_is_the_one_the_invariant_names(
    journals: list[dict[str, Any]],
) -> None:
    careless = journals[1]
    [check] = [c for c in careless["verification"] if not c["held"]]
    first = careless["traces"]["first_broken"]
    assert first["trace_id"] == check["trace_ids"][0]
    assert first["broke"] == ["error_spans_carry_exception"]
    assert [(s["name"], s["status"]) for s in first["spans"]] == [
        ("careless-parent", "UNSET"), ("silent-failure", "ERROR")]
    assert first["spans"][1]["parent_id"] == first["spans"][0]["span_id"]


def test_the_report_puts_failing_rows_first_and_draws_every_scenario(
    journals: list[dict[str, Any]],
) -> None:
    page = render(journals)
    # offline: nothing fetched (links are anchors, no stylesheet, script source or font)
    assert set(re.findall(r"(?:href|src)=['\"]([^#'\"])", page)) == set()
    assert "<link" not in page and "@import" not in page
    assert not re.search(r"url\((?!#)", page)
    rows = re.findall(r"<tr( class='fail')?><td><a href='#scenario-(\w+)'>", page)
    assert rows == [(" class='fail'", "careless"), ("", "outage")]
    sections = _sections(page)
    assert list(sections) == ["careless", "outage"]
    for name, section in sections.items():
        assert f"id='scenario-{name}'" in section
        assert section.count("<svg") == (3 if name == "careless" else 2), name
    outage = sections["outage"]
    assert "RedisUnavailable (expected)" in outage and "threshold &gt; 0.5" in outage
    assert "fired +" in outage and "resolved +" in outage
    assert "baseline (no faults)" in outage
    assert "none: every invariant held." in outage
    careless = sections["careless"]
    assert "The first trace that broke an invariant (error_spans_carry_exception)" in careless
    assert ("silent-failure: ERROR status with no exception and no description" in careless)
    assert "no alert expected, and none fired" in careless


def test_a_journal_round_trips_through_a_file(
    journals: list[dict[str, Any]], tmp_path: Path
) -> None:
    path = tmp_path / "suite.json"
    path.write_text(json.dumps({"journal_version": 2, "scenarios": journals}))
    assert parse_journal(path.read_text(), str(path)).runs == journals
    out = tmp_path / "report.html"
    assert chaos_main(["--from-journal", str(path), "--html", str(out)]) == 1  # one broke
    assert _sections(out.read_text()).keys() == {"careless", "outage"}


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda j: j.pop("journal_version"),
         "j.json: no 'journal_version' field: the journal was written by an older sniper-otel "
         "(version 1, before the report's data); re-run the scenarios to write a version 2 "
         "journal"),
        (lambda j: j.update(journal_version=3),
         "j.json: field 'journal_version' is 3; this sniper-otel draws version 2 journals"),
        (lambda j: j["alert_series"][0].pop("series"),
         "j.json: missing field 'alert_series[0].series'"),
        (lambda j: j["alerts"]["expected"][0].update(detection_delay="soon"),
         "j.json: field 'alerts.expected[0].detection_delay' must be an integer or a number "
         "or null, got 'soon'"),
        (lambda j: j["traces"]["representative"]["spans"][0].pop("status"),
         "j.json: missing field 'traces.representative.spans[0].status'"),
    ],
)
def test_a_bad_journal_names_the_field(
    journals: list[dict[str, Any]], damage: Any, message: str
) -> None:
    journal = json.loads(json.dumps(journals[0]))
    damage(journal)
    with pytest.raises(JournalError) as caught:
        parse_journal(json.dumps(journal), "j.json")
    assert str(caught.value) == message


def test_a_truncated_journal_names_the_field_it_stops_in(
    journals: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = json.dumps({"journal_version": 2, "scenarios": journals}, indent=2)
    cut = text.index('"baseline_series"') + 40
    path = tmp_path / "cut.json"
    path.write_text(text[:cut])
    assert chaos_main(["--from-journal", str(path), "--html", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sniper-otel chaos: {path}: the journal is truncated or not JSON: ")
    assert err.rstrip().endswith("inside the field 'baseline_series'")
    assert not (tmp_path / "r.html").exists()


def test_an_older_suite_journal_is_refused_before_drawing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"seed": 0, "scenarios": []}))
    assert chaos_main(["--from-journal", str(path), "--html", str(tmp_path / "r.html")]) == 2
    assert capsys.readouterr().err == (
        f"sniper-otel chaos: {path}: no 'journal_version' field: the journal was written by "
        "an older sniper-otel; re-run the scenarios to write a version 2 journal\n")
    assert chaos_main(["--from-journal", str(path)]) == 2
    assert capsys.readouterr().err == (
        "sniper-otel chaos: --from-journal draws a report: add --html PATH\n")


def test_the_cli_writes_the_report_after_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    quick = ("from pytest_sniper_otel.chaos import Scenario, fault\n"
             "SCENARIO = Scenario(name={name!r}, title='t', warmup=10.0, duration=60.0,\n"
             "                    recovery=10.0, baseline=False, tags={tags!r},\n"
             "                    faults=[fault('redis.outage', start=10, duration=30)])\n")
    (scenarios / "scenario_quick.py").write_text(quick.format(name="quick", tags={}))
    (scenarios / "scenario_paused.py").write_text(
        quick.format(name="paused", tags={"requires": "real_redis"}))
    (scenarios / "scenario_typo.py").write_text("SCENARIO = Scenario(\n")
    out = tmp_path / "report.html"
    code = chaos_main(["--path", str(scenarios), "--no-progress", "--html", str(out)])
    assert code == 2  # a module that does not load fails the suite; the others still ran
    last = capsys.readouterr().out.splitlines()[-1]
    assert re.fullmatch(rf"report: {re.escape(str(out))} \(\d+ KiB, drawn in \d+\.\d s\)", last)
    page = out.read_text()
    assert list(_sections(page)) == ["quick"]
    scorecard = page[page.index("<table class='scorecard'>"):page.index("</table>")]
    rows = re.findall(r"<tr(?: class='(\w+)')?><td>(?:<a href='[^']+'>)?([^<]+)<", scorecard)
    assert [(cls, name.rsplit("/", 1)[-1]) for cls, name in rows] == [
        ("fail", "scenario_typo.py"), ("skip", "paused"), ("", "quick")]
    assert "needs a real Redis server (--redis-url)" in page
    assert "1/1 scenarios held, 1 did not load" in page


@pytest.mark.parametrize("workers", [
    pytest.param([], id="serial"),
    # three interpreters, each drawing charts: CI's
    pytest.param(["-n", "2"], id="xdist", marks=pytest.mark.slow),
])
def test_pytest_writes_one_report_per_run_and_an_index(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    pytester.makepyfile("""
from pytest_sniper_otel.chaos import Scenario, expect_alert, fault

QUICK = Scenario(name="quick", title="t", faults=[fault("redis.outage", start=10, duration=30)],
                 warmup=10.0, duration=60.0, recovery=10.0, baseline=False)
WRONG = Scenario(name="wrong", title="t", faults=[fault("redis.outage", start=10, duration=30)],
                 warmup=10.0, duration=60.0, recovery=10.0, baseline=False,
                 alerts=[expect_alert("WebsocketConnectionsDown", within="1m")])


def test_quick(chaos):
    chaos.run(QUICK)


def test_wrong(chaos):
    chaos.run(WRONG)
""")
    run = pytester.runpytest_subprocess if workers else pytester.runpytest
    result = run("-p", "no:cacheprovider", "--sniper-otel-chaos-report=out", *workers)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["sniper-otel chaos report: out*index.html"])
    out = pytester.path / "out"
    stem = "test_pytest_writes_one_report_per_run_and_an_index.py_"
    assert sorted(p.name for p in out.iterdir()) == [
        "index.html", f"{stem}test_quick--quick.html", f"{stem}test_wrong--wrong.html"]
    index = (out / "index.html").read_text()
    links = re.findall(r"<tr( class='fail')?><td><a href='([^']+)'>", index)
    assert links == [(" class='fail'", f"{stem}test_wrong--wrong.html#scenario-wrong"),
                     ("", f"{stem}test_quick--quick.html#scenario-quick")]
    wrong = (out / f"{stem}test_wrong--wrong.html").read_text()
    assert "WebsocketConnectionsDown never fired (expected within 60s of the fault)" in wrong


def test_index_of_an_empty_directory_is_an_empty_scorecard(tmp_path: Path) -> None:
    index = write_index(tmp_path).read_text()
    assert "0/0 runs held" in index and "<a href" not in index


# -- in a real browser ------------------------------------------------------------------------
def _browser() -> tuple[str, str]:
    """Debian's chromium and chromium-driver; skipped when missing, except under CI=true
    (as promtool is)."""
    import os
    import shutil

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", binary), ("chromium-driver", driver))
               if path is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    if missing:
        why = f"needs {' and '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why}; under CI the browser check is required")
        pytest.skip(why)
    assert binary is not None and driver is not None
    return binary, driver


def test_the_report_renders_in_headless_chromium(
    journals: list[dict[str, Any]], tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    import os

    binary, driver_path = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    page = tmp_path / "report.html"
    page.write_text(render(journals), encoding="utf-8")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--disable-background-networking"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.set_page_load_timeout(30)
        driver.set_script_timeout(10)
        driver.get(page.as_uri())
        charts = driver.execute_script("""
            return [...document.querySelectorAll('section.scenario')].map(s => ({
              name: s.dataset.scenario,
              charts: [...s.querySelectorAll('.chart svg')].map(svg => {
                const box = svg.getBoundingClientRect();
                return {width: box.width, height: box.height,
                        marks: svg.querySelectorAll('path, text, use').length};
              })
            }));""")
        targets = driver.execute_script("""
            return [...document.querySelectorAll('table.scorecard a')].map(a =>
              !!document.getElementById(a.getAttribute('href').slice(1)));""")
        # selenium leaves WebDriver.get_log unannotated
        browser_log = driver.get_log("browser")  # type: ignore[no-untyped-call]
        errors = [e for e in browser_log if e["level"] == "SEVERE"]
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, min(int(height), 12000))
        artifacts = Path(os.environ.get("SNIPER_OTEL_ARTIFACTS",
                                        pytestconfig.rootpath / "out" / "browser"))
        artifacts.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(artifacts / "chaos-report.png"))
    finally:
        driver.quit()
    assert errors == []
    assert targets == [True, True]
    assert [c["name"] for c in charts] == ["careless", "outage"]
    assert [len(c["charts"]) for c in charts] == [3, 2]
    for section in charts:
        for chart in section["charts"]:
            assert chart["width"] > 300 and chart["height"] > 100, section
            assert chart["marks"] > 20, section


def test_without_matplotlib_both_entry_points_say_what_to_install(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    assert chaos_main(["--no-progress", "--html", str(tmp_path / "r.html")]) == 2
    assert capsys.readouterr().err == (
        'sniper-otel chaos: the HTML report needs matplotlib: pip install '
        '"pytest-sniper-otel[report]"\n')
    result = pytester.runpytest("-p", "no:cacheprovider", "--sniper-otel-chaos-report=out")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        'ERROR: --sniper-otel-chaos-report needs matplotlib: pip install '
        '"pytest-sniper-otel[report]"'])


@register
@dataclass
class CrashingFault(Fault):
    name = "model.test_report_crash"
    target = "model"

    def step(self, target: Any, at: float, dt: float) -> None:
        raise RuntimeError("boom")


def test_an_aborted_run_is_drawn_as_an_error() -> None:
    run = run_scenario(Scenario(
        name="crashes", title="a fault that raises", warmup=10.0, duration=60.0, recovery=10.0,
        baseline=False, faults=[fault("model.test_report_crash", start=10, duration=20)]))
    assert run.error == "RuntimeError: boom"
    journal = parse_journal(json.dumps(run.to_json(), default=str), "j.json")
    page = render(journal.runs)
    section = _sections(page)["crashes"]
    assert "<span class='ERROR'>ERROR</span>" in section
    assert "error: RuntimeError: boom" in section
    assert section.count("<svg") == 1  # the fault window still drawn; no trace to draw
