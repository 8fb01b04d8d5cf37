"""The exit codes of `creations`, and the errors that end a command with one of them.

Scripts branch on these numbers, so they are part of the interface (docs/cli.md lists them).
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    API_ERROR = 1  # the API answered with an error (its code and message are printed)
    USAGE = 2  # bad arguments, or nothing says which API or token to use
    UNREACHABLE = 3  # no answer from the API's URL (refused, timed out, DNS)
    NOT_DRAFT = 4  # a followed creation ended failed or canceled
    DOWNLOAD = 5  # a media file could not be downloaded or did not match its size
    INTERRUPTED = 130  # Ctrl-C while following (the creation goes on by itself)


class CliError(Exception):
    """A problem reported as one message on stderr, ending the command with `exit_code`."""

    exit_code: Exit = Exit.USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ConfigError(CliError):
    """Nothing (flags, environment, a running dev stack) says which API or token to use."""

    exit_code = Exit.USAGE


class Unreachable(CliError):
    exit_code = Exit.UNREACHABLE

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"cannot reach the API at {url}: {reason}",
            hint="is it running? (`make dev` for the local stack; CREATIONS_API or --api "
            "sets the URL)",
        )
        self.url = url


class ApiError(CliError):
    """The API's `{"error": {"code", "message"}}` answer (or a non-JSON one, as `http_<status>`)."""

    exit_code = Exit.API_ERROR

    def __init__(
        self, status: int, code: str, message: str, body: object, retry_after: int | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.retry_after = retry_after
        self.code = code
        self.api_message = message
        self.body = body


class DownloadError(CliError):
    exit_code = Exit.DOWNLOAD
