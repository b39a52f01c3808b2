"""The load tests, installed with the ``load`` extra as ``pytest_sniper_otel.load``.

Scripts, not an API: ``sniper-otel load ...`` runs ``overhead.py``, and
``locust -f "$(sniper-otel load --locustfile)"`` runs the locustfile. See ``README.md`` here.
"""
