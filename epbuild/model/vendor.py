"""A NIC's vendor userspace in the matrix (`nics.<nic>.vendor`): the vendor's signed apt repository, its signing
key pinned by fingerprint, the packages at exact versions, and the steps the vendor needs after installing.

vLLM's reference (docker/Dockerfile.rocm at 00305ee5, stage `mori_base`) installs AMD's `libionic-dev ionic-common`
for Pollara and Broadcom's `bnxt-rocelib=235.2.86.0` for Thor2, then copies `libbnxt_re*` into /usr/local/lib.
epbuild fetches and verifies those packages on the host (epbuild/inputs/vendor_repo.py) so builds stay hermetic.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from epbuild.model.patterns import AbsPath, AptPackage, _checker
from epbuild.model.pins import Strict

APT_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~+-]+)*/?$")
APT_WORD = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
FINGERPRINT = re.compile(r"^([0-9A-F]{40}|unknown)$")
PINNED_VERSION = re.compile(r"^(([0-9]+:)?[0-9][A-Za-z0-9.+~-]{0,100}|unknown)$")
LIBRARY_GLOB = re.compile(r"^(/[A-Za-z0-9._+-]+)+\*?$")

AptUrl = Annotated[str, AfterValidator(_checker(APT_URL, "an http(s) URL of letters, digits and . _ ~ + -"))]
AptWord = Annotated[str, AfterValidator(_checker(APT_WORD, "an apt suite or component (a-z, 0-9, . _ -)"))]
PinnedVersion = Annotated[str, AfterValidator(_checker(
    PINNED_VERSION, "a Debian package version such as 235.2.86.0 (or `unknown`, to have the fetch list them)"))]
Fingerprint = Annotated[str, AfterValidator(_checker(
    FINGERPRINT, "an OpenPGP fingerprint: 40 upper-case hexadecimal digits (or `unknown`, to have the fetch print it)"))]
LibraryGlob = Annotated[
    str, AfterValidator(_checker(LIBRARY_GLOB, "an absolute path whose last part may end in one '*'"))
]


class AptRepository(Strict):
    url: AptUrl = Field(description="The repository root (the folder holding dists/ and pool/).")
    suite: AptWord = Field(description="The suite (distribution) under dists/, e.g. jammy.")
    component: AptWord = Field("main", description="The component whose amd64 Packages index is read.")


class SigningKey(Strict):
    url: AptUrl = Field(description="Where the vendor publishes the repository's signing key (armored or binary).")
    fingerprint: Fingerprint = Field(
        description="The key's full fingerprint, checked with gpg before the key is trusted. `unknown` makes the "
        "fetch stop and print the fingerprint the key actually has, for you to check with the vendor and write "
        "here: a key is never trusted on first use."
    )


class CopyLibraries(Strict):
    """Copies the files matching `copy_files` into the folder `to`, then runs ldconfig (Broadcom's step in the reference:
    `cp -a /usr/local/lib/x86_64-linux-gnu/libbnxt_re* /usr/local/lib/`; rocSHMEM falls back to
    /usr/local/lib/libbnxt_re.so)."""

    copy_files: LibraryGlob
    to: AbsPath


class VendorUserspace(Strict):
    repo: AptRepository
    key: SigningKey
    packages: dict[AptPackage, PinnedVersion] = Field(
        min_length=1,
        description="Each package at its exact version, as the repository's Packages index lists it. `unknown` "
        "makes the fetch stop and list the versions the signed index offers, for you to pin one.",
    )
    provides_provider: bool = Field(
        False,
        description="The vendor's packages ship the NIC's verbs provider itself: the provider library, the "
        "libibverbs plugin lib<provider>-rdmav<ABI>.so and /etc/libibverbs.d/<provider>.driver (AMD's libionic1 "
        "does). The `vendor` stage then removes every copy of the provider no package owns (rdma-core's source "
        "build of it) before installing them, so the image holds one provider library, owned by the vendor's "
        "package, which verbs and rocSHMEM's dlopen both load.",
    )
    post_install: list[CopyLibraries] = Field(default_factory=list)
    dlopen_fallback: list[AbsPath] = Field(
        default_factory=list,
        description="Where rocSHMEM looks for the provider's library after dlopen by name fails, in order, which "
        "`post_install` must fill (rocm-systems projects/rocshmem: /usr/local/lib/libbnxt_re.so for Broadcom's, "
        "the reason for Broadcom's copy). The image checks load the library through this sequence.",
    )

    def digest(self) -> str:
        """Names the verified download: any change to the repository, key or pins is a new one (what the image
        checks expect of it is not part of it)."""
        download = self.model_dump(exclude={"dlopen_fallback"})
        return hashlib.sha256(json.dumps(download, sort_keys=True).encode()).hexdigest()


def none_or_vendor(value: Any) -> Any:
    """`vendor: none` says a NIC has no vendor userspace; anything else must be the vendor's mapping."""
    if value == "none":
        return None
    if value is None or isinstance(value, str):
        raise ValueError(f"{value!r} is not allowed: give the vendor's repo, key and packages, or `none`")
    return value


def none_in_schema(schema: dict[str, Any]) -> None:
    """The JSON Schema says what the YAML says: `none`, not null."""
    schema["anyOf"] = [{"const": "none"} if s == {"type": "null"} else s for s in schema.get("anyOf", [])]

