"""Faults: what goes wrong, where, and when on the simulated clock.

A fault is a small object with an :meth:`Fault.inject` and a :meth:`Fault.rollback`, a
``target`` (the seam it acts on: ``exchange``, ``market``, ``feed``, ``redis``, ``clock``,
``model`` or ``telemetry``), a :class:`Schedule` (start, duration, probability, seed) and a
list of :class:`Activity` records saying when it was active and how often it struck.

Faults are described by a :class:`FaultSpec` (``fault("exchange.http_error", start="2m",
duration="5m", probability=0.3, status=503)``), which is validated when it is written, so a
typo fails before anything runs. A runner builds a fresh :class:`Fault` from the spec for
every run, seeded, and points it at a target object. Targets are plain objects with a
documented seam, so the same faults work against your own bot:

========== ===================================================================
target     what the object must offer
========== ===================================================================
exchange   ``.transport``: a callable ``(ApiRequest) -> ApiResponse``
market     ``.conditions``: exchange-side knobs (``partial_fill_rate``...); ``.called_off``
           (symbols whose launch never comes), ``.listings()``, ``.launch_time(spec)``
feed       ``.disconnect(reason, down_for=...)`` and ``.connect()``
redis      a redis-py client (sync ``Redis``, ``FakeRedis`` included), or an object with
           ``.client`` (and ``.clock`` to charge latency on)
clock      ``.clock`` with ``jump``/``time``, ``.components``: name -> object with ``.clock``
model      ``.knobs`` (an instance of a class: its reads are counted) with
           ``confidence_drift``, ``inference_slowdown``, ``false_positive_burst``
telemetry  a :class:`~pytest_sniper_otel.chaos.export.ExportPipeline`
========== ===================================================================

``probability`` is drawn per occurrence: per intercepted call for call-level faults
(exchange, redis), per step for state faults that flicker (feed), and once at inject for
one-shot faults (a clock jump). Draws come from ``random.Random(f"{seed}:{name}:{index}")``,
so a run is reproduced by its seed.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .. import SpecError, did_you_mean, parse_duration
from . import layers

TARGETS = ("exchange", "market", "feed", "redis", "clock", "model", "telemetry")



class FaultError(SpecError):
    """A fault or schedule is malformed; the message names the fault and the problem."""


def seconds(value: float | int | str, *, what: str = "duration") -> float:
    """``90``, ``"90s"``, ``"1.5m"``, ``"1m30s"``, ``"250ms"`` -> seconds (the package's one
    duration grammar, :func:`pytest_sniper_otel.parse_duration`), as a :class:`FaultError`."""
    try:
        return parse_duration(value, what=what)
    except SpecError as exc:
        raise FaultError(str(exc)) from None


# -- schedule ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    """When a fault is active, in simulated seconds from the start of a scenario's method.

    ``duration=None`` keeps it active until the method ends. ``probability`` (toxicity) is
    the chance each occurrence is hit; ``seed`` overrides the run's seed for this fault.
    ``may_miss=True`` lets a scenario pass although the fault never struck (a drawn
    schedule whose window or probability may well catch nothing); by default a fault
    that never strikes fails the scenario's ``faults_struck`` check.
    """

    start: float = 0.0
    duration: float | None = None
    probability: float = 1.0
    seed: int | None = None
    may_miss: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.start, int | float) or not math.isfinite(self.start) \
                or self.start < 0:
            raise FaultError(f"schedule start must be >= 0 seconds, got {self.start!r}")
        if self.duration is not None and (
            not isinstance(self.duration, int | float)
            or not math.isfinite(self.duration)
            or self.duration <= 0
        ):
            raise FaultError(
                f"schedule ends before it starts: duration must be > 0 seconds, "
                f"got {self.duration!r} (start {self.start:g}s)"
            )
        p = self.probability
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
            raise FaultError(f"probability must be within [0, 1], got {p!r}")
        if not isinstance(self.may_miss, bool):
            raise FaultError(f"may_miss must be True or False, got {self.may_miss!r}")

    @classmethod
    def of(
        cls,
        start: float | str = 0.0,
        *,
        end: float | str | None = None,
        duration: float | str | None = None,
        probability: float = 1.0,
        seed: int | None = None,
        may_miss: bool = False,
    ) -> Schedule:
        """Build from ``start`` plus ``end`` or ``duration`` (numbers or ``"2m"``-style)."""
        s = seconds(start, what="start")
        if end is not None and duration is not None:
            raise FaultError("give a schedule end or a duration, not both")
        if end is not None:
            e = seconds(end, what="end")
            if e <= s:
                raise FaultError(
                    f"schedule ends before it starts: end {e:g}s is not after start {s:g}s"
                )
            return cls(s, e - s, probability, seed, may_miss)
        d = None if duration is None else seconds(duration, what="duration")
        if d is not None and d <= 0:
            raise FaultError(
                f"schedule ends before it starts: duration {d:g}s from start {s:g}s"
            )
        return cls(s, d, probability, seed, may_miss)

    @property
    def end(self) -> float:
        return math.inf if self.duration is None else self.start + self.duration

    def active_at(self, t: float) -> bool:
        return self.start <= t < self.end

    def describe(self) -> str:
        end = "end" if self.duration is None else f"+{self.end:g}s"
        p = "" if self.probability == 1.0 else f" p={self.probability:g}"
        return f"+{self.start:g}s..{end}{p}" + (" may_miss" if self.may_miss else "")


@dataclass
class Activity:
    """One active period of a fault: scenario seconds, and how many occurrences it struck."""

    started: float
    ended: float | None = None
    hits: int = 0
    misses: int = 0
    # the system's own clock (epoch seconds) at inject and rollback, when a runner knows it:
    # under clock faults it differs from scenario time
    clock_started: float | None = None
    clock_ended: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"started": self.started, "ended": self.ended, "hits": self.hits,
                "misses": self.misses, "clock_started": self.clock_started,
                "clock_ended": self.clock_ended}


# -- base class --------------------------------------------------------------------------------
class Fault:
    """Base class. Subclasses are dataclasses whose fields are the fault's parameters.

    Override :meth:`validate` (raise :class:`FaultError`), :meth:`apply` and :meth:`revert`.
    A fault that intercepts calls overrides the target-specific hook (``call`` for
    ``exchange``, ``command`` for ``redis``) instead of, or as well as, ``apply``.
    Every act is counted in :attr:`records`: drawn with :meth:`strikes`, or, for an act
    taken without a draw, with :meth:`struck`; a fault with no hit fails the scenario's
    ``faults_struck`` check unless its schedule says ``may_miss``.
    """

    name: ClassVar[str] = ""
    target: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    def __init__(self) -> None:  # pragma: no cover - dataclass subclasses replace it
        self._setup(Schedule(), 0)

    def _setup(self, schedule: Schedule, index: int, run_seed: int = 0) -> None:
        self.schedule = schedule
        seed = run_seed if schedule.seed is None else schedule.seed
        self.rng = random.Random(f"{seed}:{self.name}:{index}")
        self.records: list[Activity] = []
        self.active = False
        self.clock_now: Callable[[], float | None] = lambda: None
        self._target: Any = None

    # lifecycle used by runners -------------------------------------------------------------
    def inject(self, target: Any, at: float) -> None:
        """Turn the fault on against ``target`` at scenario time ``at``."""
        if self.active:
            return
        self._target = target
        self.records.append(Activity(started=at, clock_started=self.clock_now()))
        self.active = True
        try:
            self.apply(target)
        except BaseException:
            # a failed apply leaves nothing to roll back
            self.records.pop()
            self.active = False
            raise

    def rollback(self, at: float) -> None:
        """Undo :meth:`inject`. Safe to call twice; never raises for a fault that is off."""
        if not self.active:
            return
        self.active = False
        try:
            self.revert(self._target)
        finally:
            self.records[-1].ended = at
            self.records[-1].clock_ended = self.clock_now()

    def strikes(self) -> bool:
        """Draw once: does this occurrence get hit? Counted in the current activity."""
        hit = self.schedule.probability >= 1.0 or self.rng.random() < self.schedule.probability
        if self.records:
            if hit:
                self.records[-1].hits += 1
            else:
                self.records[-1].misses += 1
        return hit

    def struck(self, times: int = 1) -> None:
        """Count ``times`` hits that took no draw: a fault acting on everything at once (a
        flush), or each occurrence that a state the fault changed for its window touched
        (a read of a turned knob, of a skewed clock): never the change itself."""
        if self.records:
            self.records[-1].hits += times

    def spared(self) -> None:
        """Take back the hit just drawn: the occurrence gave the fault nothing to act on
        (an error answer it cannot corrupt), so it neither struck nor missed."""
        if self.records and self.records[-1].hits > 0:
            self.records[-1].hits -= 1

    def step(self, target: Any, at: float, dt: float) -> None:
        """Called every runner step while active (for faults that act over time)."""

    # to override ------------------------------------------------------------------------------
    def validate(self) -> None:
        """Check parameters; raise :class:`FaultError` naming the parameter."""

    def apply(self, target: Any) -> None:
        """Change ``target`` (or register with its interceptor)."""

    def revert(self, target: Any) -> None:
        """Restore ``target`` exactly as :meth:`apply` found it."""

    # introspection ------------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        if dataclasses.is_dataclass(self):
            return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {}

    def total_hits(self) -> int:
        return sum(a.hits for a in self.records)

    def total_misses(self) -> int:
        return sum(a.misses for a in self.records)

    def never_struck(self) -> str | None:
        """Why this fault tested nothing (naming it and its window), or None if it struck."""
        if self.total_hits() > 0:
            return None
        misses = self.total_misses()
        if not self.records:
            why = "was never injected"
        elif misses == 0:
            why = ("never struck: 0 occurrences seen, its target had no traffic on that path "
                   "while it was active")
        else:
            why = (f"never struck: {misses} occurrence{'s' if misses != 1 else ''} seen, the "
                   f"probability {self.schedule.probability:g} never came up")
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{self.name}({args}) {self.schedule.describe()} {why}"

    def to_json(self) -> dict[str, Any]:
        return {
            "fault": self.name,
            "target": self.target,
            "params": {k: _jsonable(v) for k, v in self.params().items()},
            "schedule": dataclasses.asdict(self.schedule),
            "activity": [a.to_json() for a in self.records],
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"<fault {self.name}({args}) {self.schedule.describe()}>"


def _finite(value: Any) -> bool:
    """No NaN or infinity anywhere in a parameter: each would make a check pass silently."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple | set | frozenset):
        return all(_finite(v) for v in value)
    if isinstance(value, Mapping):
        return all(_finite(v) for v in value.values())
    return True


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return repr(value)


# -- registry ------------------------------------------------------------------------------------
_REGISTRY: dict[str, type[Fault]] = {}
_BUILTIN_MODULES = (
    "exchange_faults", "wire_faults", "redis_faults", "clock_faults", "model_faults",
    "telemetry_faults",
)
_loaded = False


def register(cls: type[Fault]) -> type[Fault]:
    """Class decorator: make a fault class available by its ``name``."""
    if not cls.name or cls.target not in TARGETS:
        raise FaultError(
            f"{cls.__qualname__} needs a name and a target in {', '.join(TARGETS)}"
        )
    if not dataclasses.is_dataclass(cls):
        raise FaultError(f"{cls.__qualname__} must be a dataclass (its fields are its parameters)")
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing is not cls:
        raise FaultError(
            f"fault name {cls.name!r} is already registered by {existing.__qualname__}"
        )
    _REGISTRY[cls.name] = cls
    return cls


def registry() -> Mapping[str, type[Fault]]:
    """Every known fault class by name (the built-in ones are loaded on first use)."""
    global _loaded
    if not _loaded:
        for module in _BUILTIN_MODULES:
            importlib.import_module(f"{__package__}.{module}")
        _loaded = True
    return dict(sorted(_REGISTRY.items()))


def fault_class(name: str) -> type[Fault]:
    known = registry()
    cls = known.get(name)
    if cls is None:
        hint = did_you_mean(name, known)
        raise FaultError(f"unknown fault {name!r}{hint} (known faults: {', '.join(known)})")
    return cls


@dataclass(frozen=True)
class FaultSpec:
    """A validated description of a fault: what to build for each run."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    schedule: Schedule = field(default_factory=Schedule)

    def __post_init__(self) -> None:
        self.build(0, 0)  # validate now: bad input fails before anything runs

    @property
    def target(self) -> str:
        return fault_class(self.name).target

    def build(self, index: int, run_seed: int) -> Fault:
        cls = fault_class(self.name)
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        unknown = sorted(set(self.params) - set(names))
        if unknown:
            raise FaultError(
                f"fault {self.name!r}: unknown parameter(s) {', '.join(unknown)} "
                f"(parameters: {', '.join(names) or 'none'})"
            )
        for key, value in self.params.items():
            if not _finite(value):
                raise FaultError(f"fault {self.name!r}: parameter {key} must be finite, "
                                 f"got {value!r}")
        try:
            instance = cls(**self.params)
        except TypeError as exc:
            raise FaultError(f"fault {self.name!r}: {exc}") from None
        instance._setup(self.schedule, index, run_seed)
        try:
            instance.validate()
        except FaultError as exc:
            raise FaultError(f"fault {self.name!r}: {exc}") from None
        return instance

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({args}) {self.schedule.describe()}"

    def __repr__(self) -> str:
        # As code, so that a failing example Hypothesis prints can be pasted back.
        s = self.schedule
        parts = [repr(self.name), f"start={s.start:g}"]
        if s.duration is not None:
            parts.append(f"duration={s.duration:g}")
        if s.probability != 1.0:
            parts.append(f"probability={s.probability:g}")
        if s.seed is not None:
            parts.append(f"seed={s.seed}")
        if s.may_miss:
            parts.append("may_miss=True")
        parts += [f"{k}={v!r}" for k, v in self.params.items()]
        return f"fault({', '.join(parts)})"

    def to_json(self) -> dict[str, Any]:
        return {"fault": self.name, "params": {k: _jsonable(v) for k, v in self.params.items()},
                "schedule": dataclasses.asdict(self.schedule)}


def fault(
    name: str,
    *,
    start: float | str = 0.0,
    end: float | str | None = None,
    duration: float | str | None = None,
    probability: float = 1.0,
    seed: int | None = None,
    may_miss: bool = False,
    **params: Any,
) -> FaultSpec:
    """A validated :class:`FaultSpec`; raises :class:`FaultError` on any bad input.

    ``fault("exchange.rate_limit", start="2m", duration="3m", probability=0.5, retry_after=2)``
    """
    schedule = Schedule.of(start, end=end, duration=duration, probability=probability, seed=seed,
                           may_miss=may_miss)
    return FaultSpec(name, dict(params), schedule)


def describe_faults() -> Iterator[tuple[str, str, str, str]]:
    """(name, target, parameters, summary) of every registered fault, for docs and --help."""
    for name, cls in registry().items():
        params = ", ".join(
            f"{f.name}={f.default!r}" if f.default is not dataclasses.MISSING else f.name
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        )
        yield name, cls.target, params, cls.summary


def require(condition: bool, message: str) -> None:
    """For :meth:`Fault.validate`: raise :class:`FaultError` with ``message`` unless true."""
    if not condition:
        raise FaultError(message)


def chance(value: Any, name: str) -> None:
    require(
        not isinstance(value, bool) and isinstance(value, int | float) and 0.0 <= value <= 1.0,
        f"{name} must be within [0, 1], got {value!r}",
    )


def positive(value: Any, name: str, *, allow_zero: bool = False) -> None:
    ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    require(ok, f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def counted_push(fault: Fault, owner: Any, attribute: str, value: Any,
                 on_read: Callable[[], None]) -> None:
    """For :meth:`Fault.apply`: show ``value`` in ``owner.attribute`` as ``fault``'s layer
    (:mod:`.layers`), calling ``on_read`` at each read of it while it shows."""
    try:
        layers.push(owner, attribute, fault, value, on_read=on_read)
    except TypeError as exc:
        raise FaultError(f"{fault.name}: {exc}") from None
