"""The errors nnscratch raises on purpose.

Every entry point validates its input once, at the boundary, and raises a
:class:`DataError` whose message names the file (or flag, or request), the
place (row and column, byte offset, field) and what is wrong. The CLI turns it
into one line on stderr and exit status 2.
"""


class NnscratchError(Exception):
    """Base class of every error nnscratch raises on purpose."""


class DataError(NnscratchError, ValueError):
    """Input that nnscratch cannot use: a file, an image, a flag or a request.

    The message is meant for the user: it names what was read and where it
    went wrong, and when it can, what to do instead.
    """


class TrainingDiverged(NnscratchError):
    """The cost became NaN, infinite, or exploded far beyond its start."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; ``run_dir`` holds a checkpoint to resume from."""

    def __init__(self, run_dir):
        super().__init__(str(run_dir))
        self.run_dir = run_dir


class MissingExtra(NnscratchError):
    """An optional part of nnscratch whose package is not installed; the message says what to install."""
