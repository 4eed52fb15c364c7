"""Checks, before any stage runs, that `components.mori.nic_build_flags` says what the pinned MoRI's setup.py
really reads: the matrix decides which NICs get their own MoRI build, and the source decides whether the build
is NIC-dependent. MoRI 2d02c6a9 reads USE_BNXT, 6b5a1e53 adds USE_IONIC, ead84d86 reads neither (it loads vendor
libraries at run time)."""

from __future__ import annotations

import re
from pathlib import Path

from epbuild.errors import EpbuildError
from epbuild.matrix import MoriPin

NIC_FLAGS = {"USE_BNXT": "bnxt_re", "USE_IONIC": "ionic"}
"""MoRI's environment flags that compile a NIC vendor's library in, and the provider each one is for."""
READS_ENV = re.compile(r"""os\.environ(?:\.get\(\s*|\[\s*)["'](USE_[A-Z0-9_]+)["']""")


def flags_read_by(setup_py: str) -> dict[str, str]:
    """The NIC flags a setup.py reads from the environment, by provider."""
    return {NIC_FLAGS[f]: f for f in READS_ENV.findall(setup_py) if f in NIC_FLAGS}


def check(pin: MoriPin, tree: Path) -> None:
    setup = tree / "setup.py"
    if not setup.is_file():
        raise EpbuildError(f"components.mori: the source at {pin.commit} has no setup.py ({tree})")
    source = flags_read_by(setup.read_text(errors="replace"))
    if source != dict(pin.nic_build_flags):
        def shown(flags: dict[str, str]) -> str:
            return "{" + ", ".join(f"{p}: {f}" for p, f in sorted(flags.items())) + "}"

        raise EpbuildError(
            f"components.mori.nic_build_flags is {shown(dict(pin.nic_build_flags))}, but MoRI's setup.py at "
            f"{pin.commit} reads {shown(source) if source else 'no NIC flag'} from the environment: write "
            f"nic_build_flags: {shown(source)} so each NIC whose library it compiles in gets its own MoRI build")
