"""The strict patterns every matrix value must match before it may reach a Dockerfile or a command line.

Each pattern that guards a value bound for a Dockerfile or a command line admits only characters that are inert
in a POSIX shell word and in a Dockerfile instruction, so such a value can be written into either without
quoting tricks. PLAIN_TEXT (GPU names, NIC descriptions) admits spaces and parentheses: those values only reach
listings, never a Dockerfile or a command.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator

ARCH = re.compile(r"^gfx[0-9]{2,3}[0-9a-f]$")
FAT_ARCH = re.compile(r"^gfx[0-9]{2,3}[0-9a-f](\+gfx[0-9]{2,3}[0-9a-f])*$")
NIC = re.compile(r"^[a-z][a-z0-9]{1,15}$")
BASE_NAME = re.compile(r"^[a-z][a-z0-9]{0,15}$")
HEX_ID = re.compile(r"^0x[0-9a-f]{4}$")
LIB_NAME = re.compile(r"^[a-z][a-z0-9_+-]{0,40}$")
FLAG_VALUE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,39}$")
VERSION = re.compile(r"^[0-9]+(\.[0-9]+){0,2}$")
# A Rust toolchain channel as rust-toolchain.toml names it: a release (1.85, 1.85.1), stable, beta, nightly, or
# one of those dated (nightly-2026-03-10).
RUST_CHANNEL = re.compile(r"^([0-9]+\.[0-9]+(\.[0-9]+)?|(stable|beta|nightly)(-[0-9]{4}-[0-9]{2}-[0-9]{2})?)$")
COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# An archive to download: https, or a path relative to the matrix file.
ARCHIVE_URL = re.compile(
    r"^(https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~+-]+)+|file://(/[A-Za-z0-9._~+-]+)+|\.{1,2}/[A-Za-z0-9._~+/-]+)$"
)
# A git ref name: a subset of git-check-ref-format that also excludes shell metacharacters.
REF = re.compile(r"^(?![-./])(?!.*\.\.)(?!.*[./]$)[A-Za-z0-9._/+-]{1,100}$")
GIT_URL = re.compile(
    r"^("
    r"(https|ssh|git)://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~+-]+)+/?"
    r"|git@[A-Za-z0-9.-]+:[A-Za-z0-9._~+-]+(/[A-Za-z0-9._~+-]+)*"
    r"|file://(/[A-Za-z0-9._~+-]+)+/?"
    r"|\.{1,2}(/[A-Za-z0-9._~+-]+)+/?"
    r")$"
)
# docker reference: [registry[:port]/]path[:tag][@sha256:digest], lower-case path components.
IMAGE_REF = re.compile(
    r"^(?:(?:[a-z0-9]([a-z0-9.-]*[a-z0-9])?(?::[0-9]{1,5})?)/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
IMAGE_NAME = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
REGISTRY = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
APT_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]{1,100}$")
ABS_PATH = re.compile(r"^(/[A-Za-z0-9._+-]+)+$|^/$")
REL_PATH = re.compile(r"^(?!.*(^|/)\.\.(/|$))[A-Za-z0-9._+-]+(/[A-Za-z0-9._+-]+)*$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
ENV_VALUE = re.compile(r"^[A-Za-z0-9_.:/,=+-]{0,200}$")
POOL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
PLAIN_TEXT = re.compile(r"^[A-Za-z0-9 _.,:()/+-]{0,200}$")
# A reason is only ever printed in messages, never written into a Dockerfile or a command.
REASON = re.compile(r"^[^\x00-\x1f\x7f`$\\]{1,300}$")


def _checker(pattern: re.Pattern[str], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return check


Arch = Annotated[str, AfterValidator(_checker(ARCH, "a GPU arch: expected gfxNNN such as gfx942 or gfx950"))]
ArchValue = Annotated[
    str,
    AfterValidator(_checker(FAT_ARCH, "an arch axis value: expected gfxNNN, or several joined by '+' (gfx942+gfx950)")),
]
NicName = Annotated[str, AfterValidator(_checker(NIC, "a NIC name: a lower-case letter, then 1 to 15 letters or digits"))]
BaseName = Annotated[str, AfterValidator(_checker(BASE_NAME, "a base name: a lower-case letter, then up to 15 letters or digits"))]
HexId = Annotated[str, AfterValidator(_checker(HEX_ID, "a PCI ID: 0x and 4 lower-case hex digits, e.g. 0x15b3"))]
LibName = Annotated[str, AfterValidator(_checker(LIB_NAME, "a library or provider name (a-z, 0-9, _ + -)"))]
FlagValue = Annotated[str, AfterValidator(_checker(
    FLAG_VALUE, "a component's value for a NIC: a letter, then up to 39 letters, digits or _ . -"))]
Version = Annotated[str, AfterValidator(_checker(VERSION, "a version: N, N.N or N.N.N"))]
RustChannel = Annotated[str, AfterValidator(_checker(
    RUST_CHANNEL, "a Rust toolchain: a release (1.85, 1.85.1) or stable, beta, nightly, optionally dated (nightly-2026-03-10)"))]
Commit = Annotated[str, AfterValidator(_checker(COMMIT, "a commit: expected 7 to 40 lower-case hexadecimal digits"))]
Digest = Annotated[str, AfterValidator(_checker(DIGEST, "an image digest: expected sha256: and 64 hexadecimal digits"))]
Sha256 = Annotated[str, AfterValidator(_checker(SHA256, "a sha256: expected 64 lower-case hexadecimal digits"))]
ArchiveUrl = Annotated[
    str, AfterValidator(_checker(ARCHIVE_URL, "an archive URL: https://host/path, file:///path, or a path relative to "
                                              "the matrix file (./ or ../) of letters, digits and . _ ~ + - /"))
]
Ref = Annotated[str, AfterValidator(_checker(REF, "a git ref: expected letters, digits and . _ / + - (no '..')"))]
GitUrl = Annotated[
    str,
    AfterValidator(
        _checker(
            GIT_URL,
            "a repository URL: expected https://, ssh://, git://, git@host:path, file:///path "
            "or a path relative to the matrix file (./ or ../), with letters, digits and . _ ~ + - only",
        )
    ),
]
ImageRef = Annotated[
    str, AfterValidator(_checker(IMAGE_REF, "an image reference: expected [registry/]name[:tag][@sha256:digest]"))
]
ImageName = Annotated[str, AfterValidator(_checker(IMAGE_NAME, "an image name: expected lower-case path like rocm/vllm-ep"))]
Registry = Annotated[str, AfterValidator(_checker(REGISTRY, "a registry: expected host[:port][/namespace]"))]
Tag = Annotated[str, AfterValidator(_checker(TAG, "a docker tag: letters, digits, _ . - (at most 128)"))]
AptPackage = Annotated[str, AfterValidator(_checker(APT_PACKAGE, "an apt package name"))]
AbsPath = Annotated[str, AfterValidator(_checker(ABS_PATH, "an absolute path of letters, digits and . _ + -"))]
RelPath = Annotated[str, AfterValidator(_checker(REL_PATH, "a relative path inside the repository (no '..')"))]
EnvName = Annotated[str, AfterValidator(_checker(ENV_NAME, "an environment variable name (A-Z, 0-9, _)"))]
EnvValue = Annotated[str, AfterValidator(_checker(ENV_VALUE, "an environment value of letters, digits and _ . : / , = + -"))]
PoolName = Annotated[str, AfterValidator(_checker(POOL, "an agent pool name (a-z, 0-9, _ -)"))]
Reason = Annotated[str, AfterValidator(_checker(REASON, "a reason: one line of at most 300 characters, without ` $ \\"))]
PlainText = Annotated[str, AfterValidator(_checker(PLAIN_TEXT, "plain text (letters, digits, spaces and _ . , : ( ) / + -)"))]


def split_arch(value: str) -> tuple[str, ...]:
    """The archs an axis value targets: 'gfx942+gfx950' -> ('gfx942', 'gfx950')."""
    return tuple(value.split("+"))
