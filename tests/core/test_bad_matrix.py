"""One test per kind of bad input: each error names the file, the key (and line), the value and what is allowed,
and nothing is written."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from epbuild.model.matrix import load_matrix
from epbuild.util.errors import MatrixError

ROOT = Path(__file__).resolve().parents[2]


def error_for(path: Path) -> str:
    with pytest.raises(MatrixError) as info:
        load_matrix(path)
    return str(info.value)


def set_path(data: dict[str, Any], dotted: list[Any], value: Any) -> None:
    node = data
    for key in dotted[:-1]:
        node = node[key]
    node[dotted[-1]] = value


CASES: list[tuple[str, Callable[[dict[str, Any]], None], list[str]]] = [
    ("unknown key", lambda d: d["components"]["deepep"].update(nic_override="x"),
     ["components.deepep.nic_override", "unknown key", "allowed here", "explicit_ctx"]),
    ("unknown top-level key", lambda d: d.update(colour="blue"), ["colour", "unknown key", "components"]),
    ("unknown arch", lambda d: d["axes"].update(arch=["gfx942", "gfx951"]),
     ["axes.arch[1]", "unknown arch 'gfx951'", "gfx942, gfx950"]),
    ("malformed arch", lambda d: d["axes"].update(arch=["mi300x"]), ["axes.arch[0]", "'mi300x'", "gfxNNN"]),
    ("unknown NIC", lambda d: d["axes"].update(nic=["cx7", "cx8"]), ["axes.nic[1]", "unknown NIC 'cx8'", "cx7"]),
    ("NIC without DeepEP's value for it",
     lambda d: d["nics"].update(cx8={"provider": "mlx5", "provider_library": "libmlx5", "rdma_core": "source",
                                     "vendor": "none"}),
     ["nics.cx8.flags", "names no value for deepep", "cx7, io, thor2"]),
    ("NIC value DeepEP does not take", lambda d: d["nics"]["cx7"]["flags"].update(deepep="cx8"),
     ["nics.cx7.flags.deepep", "'cx8' is not a value deepep takes", "cx7, io, thor2"]),
    ("flag for an unknown component", lambda d: d["nics"]["cx7"]["flags"].update(nccl="cx7"),
     ["nics.cx7.flags.nccl", "unknown component 'nccl'"]),
    ("DeepEP asked for another arch",
     lambda d: (d["archs"].update(gfx90a={"gpus": ["MI250X"], "agent_pool": "mi250"}),
                d["axes"].update(arch=["gfx942", "gfx90a"])),
     ["axes.arch[1]", "deepep and mori build only for gfx942, gfx950", "'gfx90a'"]),
    ("unknown base", lambda d: d["axes"].update(base=["rocm72", "rocm70"]),
     ["axes.base[1]", "unknown base 'rocm70'", "rocm72"]),
    ("include names no base of several",
     lambda d: (d["bases"].update(rocm70={"image": "docker.io/rocm/vllm-dev:base"}),
                d["axes"].update(base=["rocm72", "rocm70"]), d.update(exclude=[{"base": "rocm90"}])),
     ["exclude[0].base", "unknown base 'rocm90'", "rocm72, rocm70"]),
    ("short commit", lambda d: d["components"]["deepep"].update(commit="a9ea9"),
     ["components.deepep.commit", "'a9ea9'", "7 to 40"]),
    ("non-hex commit", lambda d: d["components"]["vllm"].update(commit="main; rm -rf /"),
     ["components.vllm.commit", "7 to 40 lower-case hexadecimal"]),
    ("bad ref", lambda d: d["components"]["rdma-core"].update(tag="v62.0 && curl evil"),
     ["components.rdma-core.tag", "not a git ref"]),
    ("bad URL", lambda d: d["components"]["mori"].update(repo="https://github.com/ROCm/mori.git$(id)"),
     ["components.mori.repo", "not a repository URL"]),
    ("bad base image", lambda d: d["bases"]["rocm72"].update(image="Rocm/Base:latest;echo"),
     ["bases.rocm72.image", "not an image reference"]),
    ("bad image name", lambda d: d["image"].update(name="Rocm/VLLM"), ["image.name", "not an image name"]),
    ("bad apt package", lambda d: d["bases"]["rocm72"]["build_packages"].append("cmake;reboot"),
     ["bases.rocm72.build_packages[11]", "apt package"]),
    ("bad env value", lambda d: d["runtime_env"].update(FOO="$(id)"), ["runtime_env.FOO", "environment value"]),
    ("duplicate axis value", lambda d: d["axes"].update(nic=["cx7", "io", "cx7"]),
     ["axes.nic[2]", "duplicate value 'cx7'"]),
    ("excludes remove every cell", lambda d: d.update(exclude=[{"nic": n} for n in ("cx7", "io", "thor2")]),
     ["exclude", "remove every cell"]),
    ("missing component", lambda d: d["components"].pop("deepep"), ["components.deepep", "required key is missing"]),
    ("tag without a commit", lambda d: d["components"]["vllm"].update(tag="v0.11.0") or d["components"]["vllm"].pop("commit"),
     ["components.vllm.commit", "required key is missing"]),
    ("bad PCI vendor", lambda d: d["nics"]["cx7"].update(pci_vendors=["15b3"]),
     ["nics.cx7.pci_vendors[0]", "'15b3'", "PCI ID"]),
    ("bad provider", lambda d: d["nics"]["cx7"].update(provider="mlx5; id"), ["nics.cx7.provider", "'mlx5; id'"]),
    ("NIC without a vendor statement", lambda d: d["nics"]["cx7"].pop("vendor"),
     ["nics.cx7.vendor", "required key is missing"]),
    ("vendor key fingerprint not 40 hex", lambda d: d["nics"]["thor2"]["vendor"]["key"].update(fingerprint="9386B48A"),
     ["nics.thor2.vendor.key.fingerprint", "40 upper-case hexadecimal"]),
    ("vendor package version into a shell", lambda d: d["nics"]["thor2"]["vendor"]["packages"].update(
        {"bnxt-rocelib": "235.2.86.0; curl evil"}), ["nics.thor2.vendor.packages.bnxt-rocelib", "Debian package version"]),
    ("vendor repository URL", lambda d: d["nics"]["io"]["vendor"]["repo"].update(url="ftp://repo.radeon.com/x"),
     ["nics.io.vendor.repo.url", "http(s) URL"]),
    ("post-install copy outside the pattern",
     lambda d: d["nics"]["thor2"]["vendor"]["post_install"][0].update(copy_files="/usr/local/lib/*/libbnxt_re*"),
     ["nics.thor2.vendor.post_install[0].copy_files", "may end in one '*'"]),
    ("NIC without its rocSHMEM backend", lambda d: d["nics"]["cx7"]["flags"].pop("rocshmem"),
     ["nics.cx7.flags", "no value for rocshmem", "GDA_MLX5, GDA_IONIC, GDA_BNXT"]),
    ("rocSHMEM backend its build lacks", lambda d: d["nics"]["io"]["flags"].update(rocshmem="GDA_CXI"),
     ["nics.io.flags.rocshmem", "'GDA_CXI'", "GDA_MLX5, GDA_IONIC, GDA_BNXT"]),
    ("NIC flag value into a shell", lambda d: d["nics"]["cx7"]["flags"].update(deepep="cx7;id"),
     ["nics.cx7.flags.deepep", "'cx7;id'", "letters, digits"]),
    ("dlopen fallback not a path", lambda d: d["nics"]["thor2"]["vendor"].update(dlopen_fallback=["libbnxt_re.so"]),
     ["nics.thor2.vendor.dlopen_fallback[0]", "'libbnxt_re.so'"]),
    ("MoRI flag for an unknown provider", lambda d: d["components"]["mori"].update(nic_build_flags={"cxi": "USE_CXI"}),
     ["components.mori.nic_build_flags.cxi", "no NIC of the matrix has provider 'cxi'", "bnxt_re, ionic, mlx5"]),
    ("UCX configure option with a shell word",
     lambda d: d["components"]["ucx"].update(configure_flags=["--with-verbs", "--enable-mt;id"]),
     ["components.ucx.configure_flags[1]", "'--enable-mt;id' is not a configure option", "--name=value"]),
    ("UCX configure option the stage sets",
     lambda d: d["components"]["ucx"].update(configure_flags=["--with-verbs", "--prefix=/opt/ucx"]),
     ["components.ucx.configure_flags[1]", "the stage sets --prefix, --with-rocm itself"]),
    ("UCX without its verbs transports", lambda d: d["components"]["ucx"].update(configure_flags=["--enable-mt"]),
     ["components.ucx.configure_flags", "must hold --with-verbs"]),
    ("NIXL meson option the stage sets", lambda d: d["components"]["nixl"].update(meson_options={"ucx_path": "/x"}),
     ["components.nixl.meson_options", "ucx_path is set by the stage"]),
    ("NIXL meson value with a shell word",
     lambda d: d["components"]["nixl"].update(meson_options={"wheel_variant": "rocm $(id)"}),
     ["components.nixl.meson_options", "'rocm $(id)' is not a meson option value"]),
    ("build package that is no apt name", lambda d: d["components"]["nixl"].update(build_packages=["libaio-dev;id"]),
     ["components.nixl.build_packages[0]", "'libaio-dev;id'", "an apt package name"]),
]


@pytest.mark.parametrize("edit,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_matrix_names_file_key_value_and_allowed(write_matrix, edit, expected) -> None:  # type: ignore[no-untyped-def]
    path = write_matrix(edit)
    message = error_for(path)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def test_error_gives_the_line(write_matrix) -> None:  # type: ignore[no-untyped-def]
    text = (ROOT / "matrix.yaml").read_text().replace("commit: 0f63d3e9", "commit: zz")
    path = write_matrix(text=text)
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "commit: zz" in l)
    assert f"{path}:{line}: components.deepep.commit" in error_for(path)


def test_yaml_syntax_error(write_matrix) -> None:  # type: ignore[no-untyped-def]
    path = write_matrix(text="axes:\n  arch: [gfx942\n  nic: cx7\n")
    message = error_for(path)
    assert "YAML syntax error" in message and f"{path}:" in message


def test_duplicate_yaml_key(write_matrix) -> None:  # type: ignore[no-untyped-def]
    text = (ROOT / "matrix.yaml").read_text().replace("  mori:\n", "  vllm:\n    repo: https://x.org/a/b\n  mori:\n", 1)
    path = write_matrix(text=text)
    message = error_for(path)
    assert "components.vllm" in message and "duplicate key" in message
    # Both places are named: the second key's line leads the problem, the first one's is in its text.
    first, second = [i for i, line in enumerate(text.splitlines(), 1) if line == "  vllm:"]
    assert f"{path}:{second}: components.vllm: duplicate key: also on line {first}" in message


def test_cli_error_is_one_paragraph_without_traceback_and_writes_nothing(write_matrix, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write_matrix(lambda d: d["components"]["deepep"].update(commit="nothex"))
    proc = subprocess.run([sys.executable, "-m", "invoke", "render", "--matrix", str(path)], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "components.deepep.commit" in proc.stderr and "'nothex'" in proc.stderr
    assert not (tmp_path / "images").exists()
