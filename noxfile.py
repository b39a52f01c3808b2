"""Developer sessions. `nox -s tests` is what CI runs; benchmarks live in their own sessions."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite, scenarios included."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy strict on the package, its tests, examples/ and the load scripts, with every extra
    they use installed."""
    session.install("-e", ".[dev]")
    session.run("mypy")
    # the load scripts import each other as top-level modules from their own directory
    scripts = sorted(p.name for p in Path("load").glob("*.py"))
    with session.chdir("load"):
        session.run("mypy", "--explicit-package-bases", "--config-file", "../pyproject.toml",
                    *scripts, env={"MYPYPATH": ".."})


@nox.session
def load(session: nox.Session) -> None:
    """Telemetry overhead, every variant side by side (~5 min with the defaults); arguments
    go to load/overhead.py, e.g. `nox -s load -- --rounds 5 --duration 10s`."""
    session.install("-e", ".[load]")
    session.run("python", "load/overhead.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Plugin speed goals, ratios side by side: free when unused (against a venv without the
    package, built here with the same pytest), fixture window cost, matching at scale.
    Pass options through: `nox -s bench -- --rounds 7 --json bench.json`."""
    import sys
    from pathlib import Path

    session.install(".")  # as users install it: not editable, bytecode compiled
    without = Path(session.create_tmp(), "venv-without-package").resolve()
    session.run(sys.executable, "-m", "venv", "--clear", str(without), external=True)
    pins = session.run(
        "python", "load/bench_plugin.py", "--print-baseline-requirements", silent=True
    )
    python = str(without / "bin" / "python")
    session.run(python, "-m", "pip", "install", "-q", *str(pins).split(), external=True)
    session.run("python", "load/bench_plugin.py", "--baseline-python", python, "--only", "suite",
                *session.posargs)
    # The context arms of the fixture comparison need the other tools; installed only now,
    # so the free-when-unused run above saw the package alone.
    session.install("opentelemetry-test-utils>=0.66b1", "logfire>=5.0")
    session.run("python", "load/bench_plugin.py", "--only", "arms", "--only", "fixture",
                "--only", "window", "--only", "matching", *session.posargs)


@nox.session
def bot_overhead(session: nox.Session) -> None:
    """The reference bot's telemetry cost per cycle against the floor of the same bare SDK
    operations (goal <= 1.25x), what its Redis command spans cost, and where the rest goes;
    `-- --rounds 5 --bots 4 --cycles 150 --json out.json`."""
    session.install("-e", ".[load]")
    session.run("python", "load/bench_bot.py", *session.posargs)


@nox.session
def chaos(session: nox.Session) -> None:
    """The chaos suite's scorecard, then its wall time against the 60 s budget."""
    session.install("-e", ".[lab]")
    session.run("sniper-otel", "chaos", "--no-progress")
    session.run("python", "load/bench_chaos.py", *session.posargs)


@nox.session
def chaos_speed(session: nox.Session) -> None:
    """The chaos suite's CPU per simulated minute against commit 37a54a7, side by side, and
    the two journals compared (goal <= 0.5x); `-- --rounds 3 --json out.json`."""
    session.install("-e", ".[lab]")
    session.run("python", "load/bench_chaos_vs.py", *session.posargs)


@nox.session
def cache_claim(session: nox.Session) -> None:
    """The seed's "15-25% better cache hit rate": the bot with and without cache warming
    driven by its hit/miss metrics, same seeds; `-- --seeds 10 --minutes 30 --json out.json`."""
    session.install("-e", ".[lab]")
    session.run("python", "load/cache_claim.py", *session.posargs)


@nox.session
def seeds(session: nox.Session) -> None:
    """The chaos suite on 20 seeds (0-19, or the seeds given: `nox -s seeds -- 7 14`):
    every scenario's claim must hold on every seed. CI runs a smaller sample (.ci/run)."""
    session.install("-e", ".[lab]")
    for seed in session.posargs or [str(s) for s in range(20)]:
        session.run("sniper-otel", "chaos", "--no-progress", "--seed", seed)


@nox.session
def rules(session: nox.Session) -> None:
    """Alert rules against real Prometheus: export the rule file and promtool tests (every
    rule's drill, plus `-- --recording FILE`), then `promtool check rules` and `promtool test
    rules`; then the differential test on 3,000 generated cases (CI runs 300). Fails on any
    disagreement between our evaluator and Prometheus."""
    import os
    import shutil
    from pathlib import Path

    session.install("-e", ".[lab]")
    promtool = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not promtool:
        # promtool ships in Debian's prometheus package: unpack it, start no daemon
        cache = Path(".nox", "promtool").resolve()
        promtool = str(cache / "usr" / "bin" / "promtool")
        if not Path(promtool).exists():
            cache.mkdir(parents=True, exist_ok=True)
            with session.chdir(cache):
                session.run("apt-get", "update", "-qq", external=True)
                session.run("apt-get", "download", "prometheus", external=True)
                deb = max(cache.glob("prometheus_*.deb"))
                session.run("dpkg", "-x", str(deb), str(cache), external=True)
    out = Path(session.create_tmp(), "rules")
    session.run("sniper-otel", "rules", "verify", str(out), *session.posargs,
                env={"PROMTOOL": promtool})
    # the differential test: 3,000 generated timelines and rules against promtool
    session.install("-e", ".[test]")
    session.run("pytest", "-q", "-p", "no:randomly", "tests/alerts/test_alert_differential.py",
                env={"PROMTOOL": promtool, "SNIPER_OTEL_RULES_CASES": "3000"})
