"""UCX: installed under its prefix with the transports it was configured for (the verbs transports on every NIC,
ROCm's), its verbs transport module linking the libibverbs the cell pinned (rdma-core's source build, or the
distribution's where the NIC uses it), and configured with the matrix's options."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.component("ucx")

LIBDIR = "/usr/lib/x86_64-linux-gnu"


def prefix(expected: dict[str, Any]) -> str:
    """The install prefix the cell's record says `final` copied."""
    copies: list[str] = expected["components"]["ucx"]["copies"]
    return copies[0]


def transports(host: Any, expected: dict[str, Any]) -> dict[str, str]:
    """transport -> component, as `ucx_info -d` lists them (it loads every module of UCX's plugin folder)."""
    result = host.run("%s -d", f"{prefix(expected)}/bin/ucx_info")
    assert result.rc == 0, f"ucx_info -d failed: {result.stderr}"
    assert "failed to load" not in result.stderr, f"a UCX module does not load: {result.stderr}"
    found = re.findall(r"Component:\s*(\S+)\s*\n#\s*Transport:\s*(\S+)", result.stdout)
    return {tl: component for component, tl in found}


def test_lists_the_verbs_transports(host: Any, expected: dict[str, Any]) -> None:
    found = transports(host, expected)
    for tl in ("rc_verbs", "ud_verbs"):
        assert found.get(tl) == "ib", f"ucx_info -d lists no {tl} from the ib module: {found}"


def test_lists_the_rocm_transports(host: Any, expected: dict[str, Any]) -> None:
    # The stage configures --with-rocm="${ROCM_PATH}" (as the reference), so the ROCm module must load too.
    found = transports(host, expected)
    for tl in ("rocm_copy", "rocm_ipc"):
        assert found.get(tl) == "rocm", f"ucx_info -d lists no {tl} from the rocm module: {found}"


def test_configured_with_the_matrix_options(host: Any, expected: dict[str, Any]) -> None:
    out = host.check_output("%s -v", f"{prefix(expected)}/bin/ucx_info")
    configured = re.search(r"^# Configured with:(.*)$", out, re.M)
    assert configured, f"ucx_info -v names no configure options: {out}"
    given = re.findall(r"'([^']*)'", configured.group(1))
    for flag in expected["components"]["ucx"]["configure_flags"]:
        assert flag in given, f"UCX was configured without {flag}: {given}"
    assert f"--prefix={prefix(expected)}" in given, given


def test_verbs_module_links_the_pinned_libibverbs(host: Any, expected: dict[str, Any]) -> None:
    modules = host.run("ls %s", f"{prefix(expected)}/lib/ucx/").stdout.split()
    ib = [m for m in modules if re.fullmatch(r"libuct_ib\.so\.\d+", m)]
    assert ib, f"no verbs transport module libuct_ib.so.<N> in {prefix(expected)}/lib/ucx: {modules}"
    ldd = host.check_output("ldd %s", f"{prefix(expected)}/lib/ucx/{ib[0]}")
    linked = re.search(r"^\s*libibverbs\.so\.1 => (\S+)", ldd, re.M)
    assert linked and linked.group(1) != "not", f"{ib[0]} does not resolve libibverbs.so.1: {ldd}"
    target = host.check_output("readlink -f %s", linked.group(1)).strip()
    owned = host.run("dpkg -S %s", target).rc == 0
    release = expected["components"].get("rdma-core", {}).get("release")
    if "rdma-core" in expected["components"]:
        # The cell builds rdma-core from source: UCX must link that build, not a distribution copy.
        assert release, "rdma-core is pinned without a vX.Y tag, so the release to expect is unknown"
        assert re.fullmatch(rf"{LIBDIR}/libibverbs\.so\.1\.\d+\.{re.escape(release)}", target), (
            f"UCX links {target}, not the rdma-core {release} the cell pinned")
        assert not owned, f"UCX links {target}, which a distribution package owns"
    else:
        assert owned, f"UCX links {target}, which no package owns (the cell uses the distribution's verbs)"
