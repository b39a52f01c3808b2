"""The core/lab layering, checked on the import graph and in a process without the lab.

The core (the pytest plugin and its assertion helpers) imports nothing of the lab and none
of the lab extra's dependencies; the lab uses only the core's public API; a process that
has only the core installed loads no lab module when it runs a suite.
"""

from __future__ import annotations

import ast
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

import pytest_sniper_otel
from pytest_sniper_otel import lab_plugin
from pytest_sniper_otel.capture import install_session

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pytest_sniper_otel"
CORE = {"__init__", "capture", "telemetry", "spans", "render", "metrics", "logs", "clock",
        "clock_asyncio", "matchers", "errors", "durations", "environment", "plugin"}
LAB_DEPENDENCIES = ("fakeredis", "redis", "hypothesis", "opentelemetry.instrumentation.redis",
                    "yaml", "re2")
# distribution name in the `lab` extra -> the module it provides
LAB_DISTRIBUTIONS = {
    "fakeredis": "fakeredis",
    "redis": "redis",
    "hypothesis": "hypothesis",
    "opentelemetry-instrumentation-redis": "opentelemetry.instrumentation.redis",
    "pyyaml": "yaml",
    "google-re2": "re2",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_core(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "pytest_sniper_otel" and (
        len(parts) == 1 or (len(parts) == 2 and parts[1] in CORE)
    )


def imports(path: Path) -> Iterator[tuple[str, list[str], int]]:
    """(absolute module, imported names, line) for every import in ``path``, at any depth."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base, [a.name for a in node.names], node.lineno


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


CORE_FILES = [p for p in package_files() if is_core(module_name(p))]
LAB_FILES = [p for p in package_files() if not is_core(module_name(p))]
LAB_PACKAGES = {module_name(p) for p in LAB_FILES} | {
    "pytest_sniper_otel.scenarios", "pytest_sniper_otel.load"}
# Code outside the package that is written against the lab, so held to the same rule.
LAB_USERS = sorted([*(ROOT / "scenarios").glob("*.py"), *(ROOT / "load").glob("*.py")])


def test_the_split_is_what_the_architecture_says() -> None:
    assert {module_name(p) for p in CORE_FILES} == {
        "pytest_sniper_otel", *(f"pytest_sniper_otel.{m}" for m in CORE - {"__init__"})
    }
    assert "pytest_sniper_otel.chaos.runner" in {module_name(p) for p in LAB_FILES}


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_imports_nothing_of_the_lab(path: Path) -> None:
    wrong = []
    for module, names, line in imports(path):
        targets = [module] + [f"{module}.{n}" for n in names]
        for target in targets:
            ours = target.startswith("pytest_sniper_otel.") and not is_core(target)
            # `from . import spans` names a core module; only lab modules are refused
            if ours and not (target.count(".") == 2 and is_core(target.rpartition(".")[0])):
                wrong.append(f"line {line}: {target}")
            if any(target == d or target.startswith(d + ".") for d in LAB_DEPENDENCIES):
                wrong.append(f"line {line}: {target} (a lab dependency)")
    assert not wrong, f"{path.name} imports the lab: {wrong}"


# The package's one lazy-exports helper, which chaos/__init__.py shares.
INFRASTRUCTURE = {"_lazy_exports"}


@pytest.mark.parametrize("path", LAB_FILES + LAB_USERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_lab_uses_only_the_cores_public_api(path: Path) -> None:
    public = set(pytest_sniper_otel.__all__) | INFRASTRUCTURE
    wrong = []
    for module, names, line in imports(path):
        if not is_core(module):
            continue
        if names == [] and module != "pytest_sniper_otel":
            wrong.append(f"line {line}: import {module} (import public names instead)")
        # `from .. import scenarios` names a lab package, not a core name
        names = [n for n in names if f"{module}.{n}" not in LAB_PACKAGES]
        wrong += [f"line {line}: {module}.{n}" for n in names if n not in public]
    assert not wrong, (
        f"{path.relative_to(ROOT)} uses core names outside pytest_sniper_otel.__all__: {wrong}"
    )


def test_the_lab_never_writes_the_capture_sessions_state() -> None:
    """A window of its own is ``capture(nested=True)``: the lab never swaps ``current``."""
    state = set(vars(install_session()))
    wrong = []
    for path in LAB_FILES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign) else [])
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr in state and (
                    isinstance(target.value, ast.Name) and "session" in target.value.id
                ):
                    wrong.append(f"{path.relative_to(ROOT)}:{target.lineno} .{target.attr}")
    assert not wrong


def test_the_lab_plugin_checks_exactly_the_lab_extra() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extra = pyproject["project"]["optional-dependencies"]["lab"]
    names = {req.split(">")[0].split("=")[0].split("[")[0].strip() for req in extra}
    assert names == set(LAB_DISTRIBUTIONS)
    assert set(lab_plugin.LAB_MODULES) == set(LAB_DISTRIBUTIONS.values()) == set(
        LAB_DEPENDENCIES)
    core = {req.split(">")[0].split("=")[0].strip() for req in
            pyproject["project"]["dependencies"]}
    assert core == {"pytest", "opentelemetry-api", "opentelemetry-sdk",
                    "opentelemetry-instrumentation-logging", "freezegun"}


def test_every_package_directory_is_installed() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"]
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in PACKAGE.rglob("__init__.py")}
    mapped = {f"pytest_sniper_otel.{d}": d for d in ("scenarios", "load")}
    assert set(setuptools["packages"]) == on_disk | set(mapped)
    assert setuptools["package-dir"] == mapped


# Runs pytest as a process that has only the core: importing a lab dependency fails as it
# would if it were not installed, and every attempt is reported.
BLOCK_LAB = textwrap.dedent("""
    import sys

    BLOCKED = {blocked!r}
    attempts = []

    class LabNotInstalled:
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                attempts.append(name)
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, LabNotInstalled())
""")

CORE_ONLY = BLOCK_LAB + textwrap.dedent("""
    import pytest

    code = pytest.main(sys.argv[1:])
    lab = sorted(m for m in sys.modules if m.startswith("pytest_sniper_otel.")
                 and m.split(".")[1] not in {core!r})
    deps = sorted(m for m in sys.modules if any(
        m == b or m.startswith(b + ".") for b in BLOCKED))
    print("lab modules loaded:", lab)
    print("lab dependencies loaded:", deps)
    print("lab dependency imports attempted:", sorted(set(attempts)))
    sys.exit(code)
""")


def run_core_only(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str
) -> pytest.RunResult:
    script = pytester.path / "core_only.py"
    script.write_text(CORE_ONLY.format(blocked=LAB_DEPENDENCIES, core=CORE), encoding="utf-8")
    # Only this distribution's two entry points, as in a venv holding the core alone (this
    # one also has Hypothesis' and locust's plugins, which the core does not bring).
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return pytester.run(
        sys.executable, str(script), "-p", "pytest_sniper_otel.plugin",
        "-p", "pytest_sniper_otel.lab_plugin", "-p", "no:cacheprovider", *args, timeout=120,
    )


def test_a_core_only_process_loads_nothing_of_the_lab(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_mine="""
        from opentelemetry import trace

        def test_span(telemetry):
            with trace.get_tracer("mine").start_as_current_span("order"):
                pass
            assert [s.name for s in telemetry.spans] == ["order"]
        """)
    result = run_core_only(pytester, monkeypatch, "-v")
    result.stdout.fnmatch_lines([
        "sniper-otel: SDK providers will be installed on first use of the telemetry fixture",
        "*test_mine.py::test_span PASSED*",
        "lab modules loaded: ['pytest_sniper_otel.lab_plugin']",
        "lab dependencies loaded: []",
    ])
    result.stdout.no_fnmatch_line("*chaos seed*")
    assert result.ret == 0


def test_without_the_lab_its_fixtures_say_what_to_install(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_bot="""
        def test_bot(sniper_bot):
            pass

        def test_chaos(chaos):
            pass
        """)
    result = run_core_only(pytester, monkeypatch)
    result.stdout.fnmatch_lines([
        # (fnmatch reads [lab] as a character class: ? stands for each bracket)
        "the sniper_bot fixture comes with the lab: pip install 'pytest-sniper-otel?lab?' "
        "(missing: fakeredis, redis, hypothesis, opentelemetry.instrumentation.redis, yaml, re2)",
        "the chaos fixture comes with the lab: pip install 'pytest-sniper-otel?lab?' *",
        "*2 errors*",
    ])
    result.stdout.no_fnmatch_line("*--sniper-otel-chaos-seed*")


@pytest.mark.parametrize("command", ["chaos", "run", "rules"])
def test_without_the_lab_the_command_says_what_to_install(
    pytester: pytest.Pytester, command: str
) -> None:
    script = pytester.path / "cli_core_only.py"
    script.write_text(BLOCK_LAB.format(blocked=LAB_DEPENDENCIES) + textwrap.dedent("""
        from pytest_sniper_otel.cli import main

        sys.exit(main(sys.argv[1:]))
        """), encoding="utf-8")
    result = pytester.run(sys.executable, str(script), command, timeout=60)
    assert result.ret == 2
    assert result.outlines == []
    [line] = result.errlines
    assert line.startswith(
        f"sniper-otel {command}: needs the lab: pip install 'pytest-sniper-otel[lab]' (missing: ")
    assert "Traceback" not in line
