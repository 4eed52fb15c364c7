"""What a registry request can end in, besides an answer: each a different thing to tell the user, and to act on
(`pull --build` rebuilds an image that is absent, never one it merely failed to read)."""

from __future__ import annotations

from epbuild.util.errors import EpbuildError


class RegistryError(EpbuildError):
    pass


class RegistryUnauthorised(RegistryError):
    """The registry refused us, or docker could not get credentials for it."""


class RegistryUnreadable(RegistryError):
    """The registry answered, but not with a readable image (broken manifest, missing blob, network)."""


class RegistryUnreachable(RegistryUnreadable):
    """No answer from the registry at all (refused connection, unknown host, TLS failure, time limit)."""


class RegistryAbsent(RegistryError):
    """The registry answered that it has no such manifest, where one was required."""
