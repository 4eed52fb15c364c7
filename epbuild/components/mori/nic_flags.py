"""MoRI's NIC flags: which environment flags of the pinned setup.py compile a NIC vendor's library in. The pin
declares them (components.mori.nic_build_flags), the graph builds MoRI per NIC where they apply, and after the
fetch the exported setup.py must read exactly those. MoRI 2d02c6a9 reads USE_BNXT, 6b5a1e53 adds USE_IONIC,
ead84d86 reads neither (it loads vendor libraries at run time)."""

from __future__ import annotations

import re
from pathlib import Path

NIC_FLAGS = {"USE_BNXT": "bnxt_re", "USE_IONIC": "ionic"}
"""MoRI's environment flags known to compile a NIC vendor's library in, and the provider each one is for
(2d02c6a9, 6b5a1e53). A pin may declare others (a NIC this table does not know): those count too."""
READS_ENV = re.compile(r"""os\.environ(?:\.get\(\s*|\[\s*)["'](USE_[A-Z0-9_]+)["']""")


def flags_read_by(setup_py: str, declared: dict[str, str] | None = None) -> dict[str, str]:
    """The NIC flags a setup.py reads from the environment, by provider: the known ones and those `declared`."""
    known = {**NIC_FLAGS, **{flag: provider for provider, flag in (declared or {}).items()}}
    return {known[f]: f for f in READS_ENV.findall(setup_py) if f in known}


def _shown(flags: dict[str, str]) -> str:
    return "{" + ", ".join(f"{p}: {f}" for p, f in sorted(flags.items())) + "}"


def check_source(declared: dict[str, str], commit: str, tree: Path) -> list[str]:
    """Problems with `declared` (the pin's nic_build_flags) against the setup.py exported at the pin."""
    setup = tree / "setup.py"
    if not setup.is_file():
        return [f"the source at {commit} has no setup.py ({tree})"]
    source = flags_read_by(setup.read_text(errors="replace"), declared)
    if source == declared:
        return []
    return [f"components.mori.nic_build_flags is {_shown(declared)}, but MoRI's setup.py at {commit} reads "
            f"{_shown(source) if source else 'no NIC flag'} from the environment: write nic_build_flags: "
            f"{_shown(source)} so each NIC whose library it compiles in gets its own MoRI build"]
