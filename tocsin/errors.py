"""The project's one exception hierarchy.

Every error tocsin raises on purpose derives from :class:`TocsinError`. The
command line maps each class to an exit code, so a stage never has to call
``sys.exit`` itself: ``2`` for usage and configuration errors, ``1`` for work
that ran but failed.
"""

from __future__ import annotations


class TocsinError(Exception):
    """Base of every error tocsin raises on purpose."""

    exit_code: int = 1


class UsageError(TocsinError):
    """The command line was used wrongly (a bad option or argument)."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration key has a wrong value. The message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"config error: {key}: {problem}")


class StageUnavailable(UsageError):
    """A command whose stage is not built yet; it says so instead of pretending."""

    def __init__(self, command: str, stage: str) -> None:
        super().__init__(f"{command}: the {stage} stage is not available yet")


class StoreError(TocsinError):
    """The database is missing, unreachable or at the wrong schema revision."""

    exit_code = 2


class FeedError(TocsinError):
    """A feed source cannot be read at all (as opposed to a bad line in it)."""


class FetchError(TocsinError):
    """A network fetch failed: timeout, size cap, HTTP error."""


class BlockedAddress(FetchError):
    """The SSRF guard refused a destination (private, loopback, reserved...)."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        self.host = host
        self.address = address
        self.reason = reason
        super().__init__(f"blocked {host} ({address}): {reason}")


class ResolveError(FetchError):
    """A name could not be resolved."""


class EnrichError(TocsinError):
    """An enrichment lookup failed; the site stays and is retried later."""


class NotifyError(TocsinError):
    """A notice could not be rendered or sent."""


class InvalidUrl(TocsinError):
    """A string that is not an http(s) URL tocsin can check; ``reason`` is a short fixed code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)
