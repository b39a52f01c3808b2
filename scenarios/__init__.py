"""The chaos scenario suite, installed with the lab as ``pytest_sniper_otel.scenarios``.

Each ``scenario_*.py`` module defines ``SCENARIO`` (or ``SCENARIOS``) and a test that runs it
through the ``chaos`` fixture: ``sniper-otel chaos`` runs them as a suite, and
``pytest --pyargs pytest_sniper_otel.scenarios`` as tests.
"""
