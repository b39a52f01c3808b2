"""Entry point of the lab's pytest plugin (``pytest11: sniper_otel_lab``).

pytest loads every installed entry point, but the lab's dependencies come with the ``lab``
extra. With them, this module loads :mod:`.chaos.plugin` (the ``sniper_bot``,
``exchange_server`` and ``chaos`` fixtures, chaos options, markers, header line). Without
them it imports nothing of the lab and defines the fixtures only to say what to install.
"""

from __future__ import annotations

from importlib.util import find_spec

import pytest

# The import names of the `lab` extra in pyproject.toml (a test keeps the two in step).
LAB_MODULES = (
    "fakeredis", "redis", "hypothesis", "opentelemetry.instrumentation.redis", "yaml", "re2",
)


def _missing() -> list[str]:
    missing = []
    for name in LAB_MODULES:
        try:
            found = find_spec(name) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            missing.append(name)
    return missing


MISSING = _missing()

if not MISSING:
    pytest_plugins = ["pytest_sniper_otel.chaos.plugin"]
else:
    _NEEDS_LAB = (
        "the {} fixture comes with the lab: pip install 'pytest-sniper-otel[lab]' "
        f"(missing: {', '.join(MISSING)})"
    )

    @pytest.fixture
    def sniper_bot() -> None:
        """Needs the lab extra: pip install 'pytest-sniper-otel[lab]'."""
        pytest.fail(_NEEDS_LAB.format("sniper_bot"), pytrace=False)

    @pytest.fixture
    def exchange_server() -> None:
        """Needs the lab extra: pip install 'pytest-sniper-otel[lab]'."""
        pytest.fail(_NEEDS_LAB.format("exchange_server"), pytrace=False)

    @pytest.fixture
    def chaos() -> None:
        """Needs the lab extra: pip install 'pytest-sniper-otel[lab]'."""
        pytest.fail(_NEEDS_LAB.format("chaos"), pytrace=False)
