"""SIGINT and SIGTERM during the lab's long runs: raised at once, and never lost.

CPython runs a signal handler between bytecodes of the main thread. When those bytecodes
belong to a ``__del__``, a weakref callback or a gc callback (a collection can start at any
allocation), the handler's exception is printed as "Exception ignored in ..." and dropped.
So while :func:`terminable` is active the handler also records the signal, and the
simulated-time loops call :func:`raise_if_interrupted` at every step: a dropped interrupt
is raised again there (without CPython's "Exception ignored" trace), and one that nobody
handled is raised when the scope ends.

Without :func:`terminable` (plain pytest, a script) nothing is recorded: Python's own
SIGINT handler raises KeyboardInterrupt, which the loops let through untouched.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where SIGINT raises KeyboardInterrupt, so that one cleanup path
    (faults rolled back, the bot's keys removed, a partial journal) serves both."""

    signal_name = "SIGTERM"


# the signal received inside terminable() and not yet handled (at most one entry)
_pending: list[int] = []


def _interrupt(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def interrupt_status(exc: BaseException) -> int:
    """The shell's exit status for an interrupt: 130 for SIGINT, 143 for SIGTERM."""
    return 143 if isinstance(exc, Terminated) else 130


def handled(exc: BaseException) -> str:
    """Mark the interrupt ``exc`` as dealt with (the steps of the cleanup that follows must
    not raise it again) and return its signal's name."""
    _pending.clear()
    return getattr(exc, "signal_name", "SIGINT")


def raise_if_interrupted() -> None:
    """Raise the interrupt received and not yet handled, if any (cheap: a list check)."""
    if _pending:
        raise _interrupt(_pending[0])


def _record(signum: int, frame: FrameType | None) -> None:
    if not _pending:
        _pending.append(signum)
    raise _interrupt(signum)


@contextlib.contextmanager
def terminable() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Terminated` and SIGINT KeyboardInterrupt, both
    recorded for :func:`raise_if_interrupted` (main thread only). SIGINT is taken only from
    Python's default handler: a handler someone else installed stays in charge."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous_hook = sys.unraisablehook

    def unraisable(args: sys.UnraisableHookArgs) -> None:
        # a dropped interrupt is raised again at the next step: no "Exception ignored" trace
        if not (_pending and args.exc_type is not None
                and issubclass(args.exc_type, KeyboardInterrupt)):
            previous_hook(args)

    sys.unraisablehook = unraisable
    previous_term = signal.signal(signal.SIGTERM, _record)
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int is signal.default_int_handler:
        signal.signal(signal.SIGINT, _record)
    try:
        yield
    except KeyboardInterrupt:
        _pending.clear()  # this one is on its way out
        raise
    except BaseException:
        if _pending:  # dropped, then something failed: the interrupt is what was asked for
            raise _interrupt(_pending.pop())  # noqa: B904 - the failure stays as its context
        raise
    finally:
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGTERM, previous_term)
        if previous_int is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous_int)
    # ended normally although a signal came: it was dropped after the last step
    if _pending:
        signum = _pending.pop()
        raise _interrupt(signum)
