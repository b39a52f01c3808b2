"""Puts this directory on sys.path (pytest's default import mode does so for a conftest's
directory), so the tests import ``ccxt_sniper`` as a bot team imports its own package."""
