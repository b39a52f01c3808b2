"""The core pytest plugin: the ``telemetry`` and ``clock`` fixtures, their options, marker
and report hooks. Heavy pieces load lazily. The lab's fixtures (``sniper_bot``, ``chaos``)
come from a second plugin, :mod:`pytest_sniper_otel.lab_plugin`."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from functools import cached_property
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .capture import OpenWindow, SessionTelemetry
    from .clock import SimClock
    from .telemetry import Telemetry

SHOW_CHOICES = ("failed", "always", "never")


@dataclass(frozen=True)
class _Settings:
    show: str
    log_level: int
    markup: bool
    verbose: bool  # -vv: every span in failures and report sections

    @cached_property
    def color(self) -> bool:
        # Decided on first use, not at configure: importing spans there would cost every run.
        from .spans import use_color

        return use_color(self.markup)


_SETTINGS = pytest.StashKey[_Settings]()
_WINDOWS = pytest.StashKey["_Windows"]()


class HookSpecs:
    """Hooks a conftest.py or plugin can implement to configure pytest-sniper-otel."""

    @pytest.hookspec
    def pytest_sniper_otel_metric_views(self, config: pytest.Config) -> list[Any]:
        """Return OpenTelemetry SDK ``View`` objects for the MeterProvider the plugin
        installs (renamed instruments, attribute filters, exponential histograms, dropped
        instruments). Every implementation's list is used. Views apply only when the plugin
        installs the MeterProvider; one your code builds keeps its own."""
        raise NotImplementedError  # a hookspec has no body of its own


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(HookSpecs)


def _metric_views(config: pytest.Config) -> list[Any]:
    results = config.hook.pytest_sniper_otel_metric_views(config=config)
    return [view for views in results for view in views]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sniper-otel", "OpenTelemetry capture (pytest-sniper-otel)")
    group.addoption(
        "--sniper-otel-show",
        choices=SHOW_CHOICES,
        default=None,
        help="when to add captured telemetry to a test's report: failed (default), always, never",
    )
    parser.addini("sniper_otel_show", "default for --sniper-otel-show", default="failed")
    group.addoption(
        "--sniper-otel-log-level",
        default=None,
        help="lowest stdlib logging level bridged into captured OTel logs (default INFO)",
    )
    parser.addini("sniper_otel_log_level", "default for --sniper-otel-log-level", default="INFO")


@pytest.hookimpl(trylast=True)  # after the terminal reporter exists: its markup decides colour
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sniper_otel_clock(start=None, *, otel_follows=True): start the `clock` fixture at "
        "`start` (ISO string or datetime); otel_follows=False keeps OTel timestamps real",
    )
    config.stash[_OUTER_ITEM] = _running_item
    show = config.getoption("--sniper-otel-show") or config.getini("sniper_otel_show")
    if show not in SHOW_CHOICES:
        raise pytest.UsageError(
            f"sniper_otel_show must be one of {', '.join(SHOW_CHOICES)}, got {show!r}"
        )
    level_name = str(
        config.getoption("--sniper-otel-log-level") or config.getini("sniper_otel_log_level")
    )
    level = logging.getLevelName(level_name.upper())
    if not isinstance(level, int):
        raise pytest.UsageError(f"sniper-otel log level {level_name!r} is not a logging level name")
    markup = (
        config.get_terminal_writer().hasmarkup
        if config.pluginmanager.has_plugin("terminalreporter")
        else False
    )
    config.stash[_SETTINGS] = _Settings(
        show=show, log_level=level, markup=markup, verbose=config.get_verbosity() >= 2
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    # What the first `telemetry` will install or attach to, read without installing: a
    # provider set later by a session fixture must still win. No OTel imported yet: nothing
    # to read, and importing it here would cost every run.
    lines = _asyncio_header(config)
    if "opentelemetry.trace" in sys.modules:
        from .capture import preview

        return [f"sniper-otel: {preview(metric_views=len(_metric_views(config)))}", *lines]
    return ["sniper-otel: SDK providers will be installed on first use of the telemetry fixture"
            + _environment_notes(), *lines]


def _environment_notes() -> str:
    """What of the OTEL_* environment the providers will ignore, said before any test runs."""
    if not any(name.startswith("OTEL_") for name in os.environ):
        return ""  # the usual case, without loading anything more
    from .environment import environment_notes

    notes = "; ".join(
        f"{signal}: {', '.join(found)}"
        for signal in ("traces", "metrics", "logs")
        if (found := environment_notes(signal))
    )
    return f" ({notes})" if notes else ""


def _asyncio_header(config: pytest.Config) -> list[str]:
    """Quiet unless the run's configuration says it uses an asyncio runner, or under -v:
    anyio's plugin comes with many installs that never run an async test."""
    runners = [
        name
        for plugin, name in (("asyncio", "pytest-asyncio"), ("anyio", "anyio"))
        if config.pluginmanager.has_plugin(plugin)
    ]
    if not runners or not (config.get_verbosity() >= 1 or _configures_pytest_asyncio(config)):
        return []
    return [
        "sniper-otel clock: asyncio event loops of the test's thread run on the simulated "
        f"clock ({', '.join(runners)})"
    ]


def _configures_pytest_asyncio(config: pytest.Config) -> bool:
    """--asyncio-mode, auto mode in the ini (or -o), or a default fixture loop scope set:
    what a project using pytest-asyncio configures. An ini value equal to its default cannot be
    told apart from an unset one, so a bare ``asyncio_mode = strict`` does not count."""
    if not config.pluginmanager.has_plugin("asyncio"):
        return False
    if config.getoption("asyncio_mode", None) is not None:
        return True
    return (config.getini("asyncio_mode") == "auto"
            or bool(config.getini("asyncio_default_fixture_loop_scope")))


# The test being set up or run: the `telemetry` fixture reads it instead of asking for
# `request`, for which pytest builds a fixture definition on every request. A run inside a
# test (pytester, in-process) sets the outer test back when it ends.
_running_item: pytest.Item | None = None
_OUTER_ITEM = pytest.StashKey["pytest.Item | None"]()


def pytest_unconfigure(config: pytest.Config) -> None:
    global _running_item
    _running_item = config.stash.get(_OUTER_ITEM, None)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    _restore_log_level(session.config)


def _restore_log_level(config: pytest.Config) -> None:
    capture = sys.modules.get("pytest_sniper_otel.capture")
    if capture is not None:  # nothing was lowered before the first window
        capture.restore_root_level()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    # The root logger's level is set before any of the test's phases: pytest's log capture
    # (--log-level) saves the level when a phase starts and sets it back when it ends, so a
    # lowering done in the setup phase would not last to the test's call, and a level put
    # back inside a phase would be undone at its end.
    if "telemetry" in getattr(item, "fixturenames", ()):
        # Not an import statement: its lookup would cost every test.
        capture = sys.modules.get("pytest_sniper_otel.capture") or _import_capture()
        capture.lower_root_level(item.config.stash[_SETTINGS].log_level)
    else:
        _restore_log_level(item.config)


def _import_capture() -> ModuleType:
    from . import capture

    return capture


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # A test that uses `telemetry` gets its window before its first function-scoped
    # fixture, so spans of fixtures set up before `telemetry` are its own whatever the
    # argument order. Not before session or module fixtures: they are shared, and one may
    # install the user's providers, which must win over ours.
    global _running_item
    _running_item = item
    if "telemetry" in getattr(item, "fixturenames", ()):
        _windows(item.config).pending = item
    else:
        # Not before its fixtures: the root logger's level is the user's again (done
        # already at the protocol's start, unless another plugin ran the protocol).
        _restore_log_level(item.config)


def _windows(config: pytest.Config) -> _Windows:
    windows = config.stash.get(_WINDOWS, None)
    if windows is None:
        windows = config.stash[_WINDOWS] = _Windows(config)
        config.pluginmanager.register(windows, _Windows.name)
    return windows


class _Windows:
    """Opens a test's capture window at its first function-scoped fixture, closes it after
    its last teardown, and adds "Captured telemetry <when>" to its reports. Registered by
    the first test that uses ``telemetry``, so a suite that never does pays no per-test hook.

    One test runs at a time in a process: what it captured is kept here, not in the test's
    stash (each stash access costs a typed lookup, and every test pays them)."""

    name = "sniper-otel-windows"

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.settings = config.stash[_SETTINGS]
        self.session: SessionTelemetry | None = None
        self.pending: pytest.Item | None = None
        # The test whose window was opened last, the window (until it is closed after the
        # test's last teardown) and what it captured (until the test's teardown report).
        self.item: pytest.Item | None = None
        self.window: OpenWindow | None = None
        self.captured: Telemetry | None = None

    def open(self, item: pytest.Item) -> Telemetry:
        session = self.session
        if session is None:  # the first window of the run: install (or attach) once
            from .capture import install_session

            session = self.session = install_session(metric_views=_metric_views(self.config))
        settings = self.settings
        # The root logger stays lowered after the window, for the next test's: restored
        # before a test that doesn't use telemetry (pytest_runtest_setup) and at the
        # session's end.
        window = session.open_window(
            log_level=settings.log_level, color=settings.color, verbose=settings.verbose,
            keep_log_level=True,
        )
        self.item, self.window = item, window
        captured = self.captured = window.window
        return captured

    @pytest.hookimpl(tryfirst=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> None:
        item = self.pending
        if item is not None and fixturedef.scope == "function" and request.node is item:
            self.pending = None
            self.open(item)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        try:
            return (yield)
        finally:
            self.pending = None
            window = self.window
            if window is not None and self.item is item:
                self.window = None
                window.close()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, Any]:
        report = yield
        captured = self.captured
        if captured is None or self.item is not item:
            return report
        when = report.when
        if when == "teardown":
            # Don't keep the test's spans alive until the next one opens its window.
            self.captured = None
        if captured.redacts:
            _redact_report(report, captured)
        show = self.settings.show
        if (show == "failed" and report.failed) or (show == "always" and when == "call"):
            report.sections.append((f"Captured telemetry {when}", _rendered(captured)))
        return report


@pytest.fixture
def telemetry() -> Telemetry:
    """Spans, metrics and logs recorded during this test, with assertion helpers."""
    # Not a yield fixture: the window closes after the test's last teardown (_Windows).
    item = _running_item
    assert item is not None, "the telemetry fixture outside a test"
    windows = _windows(item.config)
    captured = windows.captured
    if captured is None or windows.item is not item or windows.window is None:
        # Requested dynamically (request.getfixturevalue): the window opens now and closes
        # like any other, after the test's last teardown.
        captured = windows.open(item)
    return captured


@pytest.fixture
def clock(request: pytest.FixtureRequest) -> Iterator[SimClock]:
    """A simulated clock (freezegun) that OTel timestamps follow; see SimClock."""
    from .clock import SimClock

    marker = request.node.get_closest_marker("sniper_otel_clock")
    args, kwargs = (marker.args, marker.kwargs) if marker else ((), {})
    with SimClock(*args, **kwargs) as sim:
        yield sim


def _redact_report(report: pytest.TestReport, captured: Telemetry) -> None:
    """The secrets the test asserted absent, masked in what pytest prints of it too: the
    captured log/stdout/stderr sections and the traceback (whose source lines may hold them)."""
    if not captured.redacts:
        return
    report.sections = [(title, captured.redact(text)) for title, text in report.sections]
    if report.longrepr is not None:
        text = str(report.longrepr)
        redacted = captured.redact(text)
        if redacted != text:
            # A plain string: the traceback loses its colours, and the secret.
            report.longrepr = redacted


def _rendered(captured: Telemetry) -> str:
    # Runs inside pytest's reporting: an exception here would be an INTERNALERROR that
    # hides the test's own outcome.
    try:
        return captured.render()
    except Exception as exc:
        return f"sniper-otel could not render this test's telemetry: {type(exc).__name__}: {exc}"


def pytest_assertrepr_compare(
    config: pytest.Config, op: str, left: object, right: object
) -> list[str] | None:
    spans = sys.modules.get("pytest_sniper_otel.spans")
    if op != "==" or spans is None:
        return None

    def all_of(kind: type, value: object) -> bool:
        return isinstance(value, list) and all(isinstance(v, kind) for v in value)

    spec_left = isinstance(left, spans.SpanSpec) or (bool(left) and all_of(spans.SpanSpec, left))
    expected, other = (left, right) if spec_left else (right, left)
    specs: Any
    roots: Any
    if isinstance(expected, spans.SpanSpec) and isinstance(other, spans.SpanNode):
        # A node is compared as itself, not as one root among others.
        specs, roots = [expected], [other]
        mismatch = spans.match(expected, other)
    elif isinstance(expected, spans.SpanSpec) and all_of(spans.SpanNode, other):
        specs, roots = [expected], other
        mismatch = spans.match_forest(specs, roots, any_order=True)
    elif all_of(spans.SpanSpec, expected) and all_of(spans.SpanNode, other):
        # list == list: pairwise in order, same length, which is an ordered exact match.
        specs, roots = expected, other
        mismatch = spans.match_forest(specs, roots, exact=True)
    else:
        return None
    if mismatch is None:
        return None
    from .capture import installed_session
    from .render import no_mask, render_mismatch

    settings = config.stash[_SETTINGS]
    session = installed_session()
    window = session.current if session is not None else None
    # The first line is the summary pytest puts after "assert": make it the divergence, so
    # the reason survives pytest's truncation of long explanations (-vv shows everything).
    try:
        text = render_mismatch(
            mismatch,
            specs,
            roots,
            color=settings.color,
            verbose=settings.verbose,
            mask=window.redact if window is not None else no_mask,
        )
    except Exception as exc:
        # An error here would replace the test's own failure with ours.
        text = (
            f"span tree mismatch at {mismatch.where()}: {mismatch.reason}\n"
            f"(sniper-otel could not render the trees: {type(exc).__name__}: {exc})"
        )
        if window is not None:
            text = window.redact(text)
    return text.splitlines()
