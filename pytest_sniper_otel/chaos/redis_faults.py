"""Redis faults, at the connection level of a redis-py client.

fakeredis's sync client ignores ``server.connected = False``, so an outage is injected
where redis-py gets a connection: the client's connection pool's ``get_connection``. That
is also where a real outage shows up (``ConnectionError: Error 111 connecting ...``), and it
sits *inside* the command's instrumented span, so the failed command's span carries the
error. Latency is charged on the simulated clock at the same place.

``redis.client_pause`` is what an outage looks like on a real server: ``CLIENT PAUSE``
makes the server stop answering, and a client with a ``socket_timeout`` raises
``TimeoutError``. It needs a real server (fakeredis does not implement it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import redis

from .. import real_monotonic
from .faults import Fault, FaultError, positive, register, require


class _PoolHook:
    """Replaces ``pool.get_connection`` on one pool instance; faults join and leave it."""

    def __init__(self, pool: Any, clock: Any) -> None:
        self.pool = pool
        self.clock = clock
        self.original = pool.get_connection
        self.faults: list[_ConnectionFault] = []
        pool.get_connection = self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for f in list(self.faults):
            if f.strikes():
                f.on_connect(self)
        return self.original(*args, **kwargs)

    def remove(self, f: _ConnectionFault) -> None:
        if f in self.faults:
            self.faults.remove(f)
        if not self.faults and vars(self.pool).get("get_connection") is self:
            del self.pool.get_connection  # back to the class's method


class _CommandHook:
    """Replaces ``execute_command`` and ``pipeline`` on one client instance, to count the
    commands that active pauses hold, one by one or in a pipeline; pauses join and leave
    it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.original = client.execute_command
        self.original_pipeline = client.pipeline
        self.pauses: list[ClientPause] = []
        client.execute_command = self
        client.pipeline = self.pipeline

    def __call__(self, *args: Any, **options: Any) -> Any:
        self._count(args)
        return self.original(*args, **options)

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        pipe = self.original_pipeline(*args, **kwargs)
        execute = pipe.execute

        def counted_execute(*execute_args: Any, **execute_kwargs: Any) -> Any:
            for command_args, _ in pipe.command_stack:
                self._count(command_args)
            return execute(*execute_args, **execute_kwargs)

        pipe.execute = counted_execute
        return pipe

    def _count(self, command_args: Any) -> None:
        for pause in self.pauses:
            if pause.holds(command_args[0] if command_args else ""):
                pause.struck()

    def remove(self, pause: ClientPause) -> None:
        if pause in self.pauses:
            self.pauses.remove(pause)
        if not self.pauses and vars(self.client).get("execute_command") is self:
            del self.client.execute_command  # back to the class's methods
            del self.client.pipeline


@dataclass
class _ConnectionFault(Fault):
    target = "redis"

    def on_connect(self, hook: _PoolHook) -> None:
        raise NotImplementedError

    def apply(self, target: Any) -> None:
        client, clock = _client(target, self.name)
        pool = client.connection_pool
        hook = vars(pool).get("get_connection")
        if not isinstance(hook, _PoolHook):
            hook = _PoolHook(pool, clock)
        hook.faults.append(self)
        self._hook = hook

    def revert(self, target: Any) -> None:
        self._hook.remove(self)


@register
@dataclass
class Outage(_ConnectionFault):
    """Redis is unreachable: every command (drawn with ``probability``) fails to connect."""

    name = "redis.outage"
    summary = "connections refused (ConnectionError) at the client's connection pool"

    def on_connect(self, hook: _PoolHook) -> None:
        if hook.clock is not None:
            hook.clock.tick(0.001)  # a refused connect is fast
        raise redis.ConnectionError(
            "Error 111 connecting to redis:6379. Connection refused. (chaos)"
        )


@register
@dataclass
class Latency(_ConnectionFault):
    """Each command waits ``latency`` + U(0, jitter) simulated seconds for its connection."""

    latency: float = 0.05
    jitter: float = 0.02
    name = "redis.latency"
    summary = "add `latency` + U(0, jitter) seconds to each command"

    def validate(self) -> None:
        positive(self.latency, "latency", allow_zero=True)
        positive(self.jitter, "jitter", allow_zero=True)

    def on_connect(self, hook: _PoolHook) -> None:
        if hook.clock is None:
            raise FaultError(f"{self.name}: the target gives no clock to charge latency on")
        hook.clock.tick(self.latency + self.rng.uniform(0.0, self.jitter))


@register
@dataclass
class Eviction(Fault):
    """Memory pressure: at inject, and at every step while active, each key matching
    ``pattern`` is evicted with ``probability``. ``flush=True`` deletes every match at
    once (a ``FLUSHDB`` limited to the pattern, safe on a shared server)."""

    pattern: str = "sniper:*"
    flush: bool = False
    name = "redis.eviction"
    target = "redis"
    summary = "evict keys matching `pattern` (each with `probability`); flush=True: all at once"

    def validate(self) -> None:
        require(isinstance(self.pattern, str) and bool(self.pattern),
                f"pattern must be a non-empty glob, got {self.pattern!r}")

    def apply(self, target: Any) -> None:
        self.evicted = 0
        self._evict(target, everything=self.flush)

    def step(self, target: Any, at: float, dt: float) -> None:
        if not self.flush:
            self._evict(target, everything=False)

    def _evict(self, target: Any, *, everything: bool) -> None:
        client, _ = _client(target, self.name)
        # Eviction happens inside the server: it must not pass through the other faults'
        # connection hook (an outage, latency on the bot's clock), and an unreachable
        # server evicts nothing we could see.
        pool = client.connection_pool
        hook = vars(pool).get("get_connection")
        if isinstance(hook, _PoolHook):
            del pool.get_connection
        try:
            keys = list(client.scan_iter(match=self.pattern, count=500))
            if everything:
                doomed = keys
                self.struck(len(doomed))  # a flush takes every key, no draw
            else:
                doomed = [k for k in keys if self.strikes()]
            if doomed:
                self.evicted += int(client.delete(*doomed))
        except redis.RedisError:
            pass
        finally:
            if isinstance(hook, _PoolHook):
                pool.get_connection = hook


# held by CLIENT PAUSE WRITE although not flagged write (Redis' CLIENT PAUSE documentation)
PAUSED_BY_NAME = frozenset({"eval", "evalsha", "fcall", "publish", "spublish", "pfcount",
                            "wait"})


@register
@dataclass
class ClientPause(Fault):
    """A real server stops serving (``CLIENT PAUSE``). Needs a real Redis (6.2+).

    ``mode="WRITE"`` (default) pauses writes, as a failover does: reads still answer, writes
    block until the bot's ``socket_timeout``. The pause is renewed at every step, so it lasts
    the fault's simulated window, and rollback sends ``CLIENT UNPAUSE``.

    ``mode="ALL"`` pauses every command, the admin connection's too, so it can neither be
    renewed nor lifted: it lasts ``max_pause`` *real* seconds and rollback waits them out.

    Its hits are the commands the pause held: each command the client sent while paused
    that the server pauses (in WRITE mode those it flags ``write`` or ``may_replicate``,
    asked once per command name with ``COMMAND INFO``; in ALL mode every one), sent one by
    one or in a pipeline the client made while the pause was on.
    """

    mode: str = "WRITE"
    max_pause: float = 0.5
    name = "redis.client_pause"
    target = "redis"
    summary = "real server only: CLIENT PAUSE WRITE (renewed each step) or ALL (max_pause s)"

    RENEW_MS: ClassVar[int] = 30_000

    def validate(self) -> None:
        require(self.mode in ("ALL", "WRITE"), f"mode must be ALL or WRITE, got {self.mode!r}")
        positive(self.max_pause, "max_pause")
        require(self.mode == "WRITE" or self.max_pause <= 5,
                f"max_pause is real seconds in ALL mode and must be <= 5, got {self.max_pause}")

    def apply(self, target: Any) -> None:
        client, _ = _client(target, self.name)
        if type(client).__module__.startswith("fakeredis"):
            raise FaultError(
                f"{self.name} needs a real Redis server (fakeredis has no CLIENT PAUSE)"
            )
        # A separate connection, opened before the pause (a new one could not handshake).
        pool = client.connection_pool
        kwargs = {**pool.connection_kwargs, "socket_timeout": 2.0}
        admin: Any = redis.Redis(connection_pool=redis.ConnectionPool(
            connection_class=pool.connection_class, **kwargs))
        admin.ping()
        self._admin = admin
        self._held: dict[str, bool] = {}  # command name -> does a WRITE pause hold it
        self._until = 0.0
        if self.mode == "ALL":
            self._until = real_monotonic() + self.max_pause
            admin.execute_command("CLIENT", "PAUSE", int(self.max_pause * 1000), "ALL")
        else:
            self._pause()
        hook = vars(client).get("execute_command")
        if not isinstance(hook, _CommandHook):
            hook = _CommandHook(client)
        hook.pauses.append(self)
        self._hook = hook

    def holds(self, command: Any) -> bool:
        """Does the pause hold ``command`` (its name) sent now?"""
        if self.mode == "ALL":
            return real_monotonic() < self._until  # the pause lapses by itself
        name = (command.decode() if isinstance(command, bytes) else str(command)).lower()
        held = self._held.get(name)
        if held is None:
            held = self._held[name] = name in PAUSED_BY_NAME or _flagged_write(self._admin, name)
        return held

    def _pause(self) -> None:
        self._admin.execute_command("CLIENT", "PAUSE", self.RENEW_MS, "WRITE")

    def step(self, target: Any, at: float, dt: float) -> None:
        if self.mode == "WRITE":
            self._pause()

    def revert(self, target: Any) -> None:
        self._hook.remove(self)
        try:
            if self.mode == "WRITE":
                self._admin.execute_command("CLIENT", "UNPAUSE")
            else:
                import threading

                # time.sleep may be frozen-aware; an Event wait is real time
                threading.Event().wait(max(0.0, self._until - real_monotonic()))
        finally:
            self._admin.close()


def _flagged_write(admin: Any, name: str) -> bool:
    """Does the server flag command ``name`` as a write (what CLIENT PAUSE WRITE holds)?"""
    try:
        info = admin.execute_command("COMMAND", "INFO", name)
    except (redis.RedisError, TypeError):  # redis-py's parser fails on an unknown command
        return False
    flags = (info.get(name) or {}).get("flags", ()) if isinstance(info, dict) else ()
    return bool({str(f) for f in flags} & {"write", "may_replicate"})


def _client(target: Any, fault: str) -> tuple[Any, Any]:
    """(redis-py client, clock or None) from a client, or from an object with ``.client``."""
    client = target
    clock = getattr(target, "clock", None)
    if not hasattr(client, "connection_pool") and hasattr(target, "client"):
        client = target.client
    if not hasattr(client, "connection_pool"):
        raise FaultError(f"{fault}: target {type(target).__name__} is not a redis-py client")
    return client, clock
