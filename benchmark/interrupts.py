"""Ctrl-C that a library cannot swallow.

Python turns SIGINT into :class:`KeyboardInterrupt` at the next bytecode
the main thread runs. When that bytecode belongs to a finaliser (for
example ``soundfile.SoundFile.__del__`` after a failed read), Python
prints "Exception ignored" and the run goes on as if nothing was
pressed. :func:`handled` remembers the request, and :func:`check`, called
between files and cells, raises it again, so one Ctrl-C always ends a
run at the next file.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import typing

__all__ = ["check", "handled", "requested"]

_REQUESTED = threading.Event()


def requested() -> bool:
    r"""Whether Ctrl-C was pressed inside :func:`handled`.

    Examples:
        >>> requested()
        False

    """
    return _REQUESTED.is_set()


def check() -> None:
    r"""Raise :class:`KeyboardInterrupt` if Ctrl-C was pressed inside :func:`handled`, else nothing.

    Safe in any thread: a worker thread's interrupt reaches the main thread
    through its future.

    Examples:
        >>> check()

    """
    if _REQUESTED.is_set():
        raise KeyboardInterrupt


def _on_sigint(signum: int, frame) -> None:
    _REQUESTED.set()
    raise KeyboardInterrupt


@contextlib.contextmanager
def handled() -> typing.Iterator[None]:
    r"""Within the block, SIGINT raises :class:`KeyboardInterrupt` and is remembered for :func:`check`.

    Only in the main thread, and only over Python's default handler (an
    application's own handler is left alone); the previous handler and a
    clear request come back on exit.

    Examples:
        >>> with handled():
        ...     requested()
        False

    """
    ours = threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if ours:
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        if ours:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            _REQUESTED.clear()
