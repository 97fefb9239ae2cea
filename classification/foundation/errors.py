"""User mistakes as one line: the exception type the command-line tools print as ``error: <message>`` on stderr,
exiting with status 2 and no traceback. Any other exception is an internal error and keeps its traceback.

Raise :class:`UserError` (a ``ValueError``) or :class:`MissingPathError` (also a ``FileNotFoundError``) with the
offending file, key or value in the message; ``tools/*.py`` call their package function through :func:`run_tool`,
which also turns a Ctrl-C outside training (start-up, evaluation) into one line and status 130.
"""
from __future__ import annotations

import sys
from typing import Callable

USER_ERROR_EXIT = 2  # argparse's status for bad arguments
INTERRUPTED_EXIT = 130  # 128 + SIGINT, the shell's status for a Ctrl-C


class UserError(ValueError):
    """A mistake in what the user asked for (a path, a config key, an option value, a checkpoint that does not fit)."""


class MissingPathError(UserError, FileNotFoundError):
    """A file or folder the user named (config, checkpoint, dataset root) does not exist."""


def one_line(message: str) -> str:
    """``message`` with its whitespace runs (newlines included) collapsed to single spaces."""
    return " ".join(str(message).split())


def run_tool(main: Callable[[], object]) -> None:
    """Call ``main()``; a :class:`UserError` becomes ``error: ...`` on stderr and exit status 2, a Ctrl-C that reaches
    here (outside the training loop, which stops cleanly on its own) a one-line note and status 130."""
    try:
        main()
    except UserError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        sys.exit(USER_ERROR_EXIT)
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C)", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT)
