"""``sniper-otel load``: the load tests from any directory (the ``load`` extra).

    sniper-otel load [--rounds 3] [--duration 5s] ...   the overhead runner (overhead.py)
    sniper-otel load --locustfile                       the locustfile's path, for
        locust -f "$(sniper-otel load --locustfile)" --headless -u 10 -r 10 -t 30s
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if "--locustfile" in args:
        if args != ["--locustfile"]:
            print("sniper-otel load: --locustfile takes no other argument", file=sys.stderr)
            return 2
        print(LOCUSTFILE)
        return 0
    # the load scripts import each other as top-level modules, from their own directory
    sys.path.insert(0, str(LOCUSTFILE.parent))
    import overhead

    return overhead.main(args, prog="sniper-otel load")
