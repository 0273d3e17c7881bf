"""The one error type users see.

Every problem a user can cause (a bad file, unknown gene IDs, a corrupt checkpoint, a failed
download) is raised as a :class:`BulkFormerError` subclass whose message says what is wrong
and whose ``hint`` says what to do. The app and the CLI print ``str(err)``; anything else that
escapes is a bug in this package.
"""

from __future__ import annotations

from collections.abc import Iterable


class BulkFormerError(Exception):
    """Base class: a message for the user plus an optional hint on how to fix it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n→ {self.hint}" if self.hint else self.message


def check_choice(value: object, choices: Iterable[str], *, what: str,
                 error: type[BulkFormerError] = BulkFormerError) -> str:
    """``value`` if it is one of ``choices``; else ``error`` naming every choice. The one
    wording of "unknown X, use one of …" for every option a user can name."""
    options = tuple(choices)
    if value not in options:
        raise error(f"Unknown {what} {value!r}.", hint=f"Use one of {', '.join(options)}.")
    return str(value)


class InputError(BulkFormerError):
    """The expression table or sample sheet cannot be used as it is."""


class CheckpointError(BulkFormerError):
    """A model file is missing, corrupt, or not a BulkFormer checkpoint."""


class DownloadError(BulkFormerError):
    """Fetching a published asset failed (network, HTTP status, checksum, disk)."""
