"""What vLLM's reference build pins, read from its two Dockerfiles at the vLLM pin (docker/Dockerfile.rocm and
docker/Dockerfile.rocm_base): each component's pin, the flags of its build line, the vendor repositories and
package versions of MoRI's NIC userspace, and the final image's environment.

Where each fact sits is the reference's own shape, read at vllm-project/vllm@00305ee5 (Dockerfile.rocm) and
@00256d59 (Dockerfile.rocm_base): `ARG ROCSHMEM_BRANCH` / `DEEPEP_BRANCH` (stages build_rocshmem, build_deepep),
`ARG MORI_BRANCH` / `AITER_BRANCH` (Dockerfile.rocm_base's global ARGs), `ARG UCX_BRANCH` / `NIXL_BRANCH` with
UCX's `../configure` and NIXL's `meson setup` lines (stage build_nixl), `git clone --branch v62.0 ...rdma-core.git`
(stage ci_base), `python3 setup.py --variant rocm ... bdist_wheel` (DeepEP), `bash ../scripts/build_configs/
all_backends -D...` (rocSHMEM), `PREBUILD_KERNELS=1 GPU_ARCHS=... python3 setup.py bdist_wheel` (AITER), the
`echo "deb ..."` and `apt-get install pkg=version` lines of stage mori_base's `bash -lc` script, and the ENV of
stage `final`."""

from __future__ import annotations

from dataclasses import dataclass, field

from epbuild.pinning.dockerfile_model import Dockerfile, DockerfileError

PIN_ARGS = {"rocshmem": "ROCSHMEM_BRANCH", "deepep": "DEEPEP_BRANCH", "mori": "MORI_BRANCH", "aiter": "AITER_BRANCH",
            "ucx": "UCX_BRANCH", "nixl": "NIXL_BRANCH"}
REPO_ARGS = {"rocshmem": "ROCSHMEM_REPO", "deepep": "DEEPEP_REPO", "mori": "MORI_REPO", "aiter": "AITER_REPO",
             "ucx": "UCX_REPO", "nixl": "NIXL_REPO"}
FINAL_STAGE = "final"


@dataclass(frozen=True)
class VendorRepo:
    url: str
    suite: str
    component: str
    packages: dict[str, str | None]
    """Package name -> the version the reference pins (`name=version`), or None where it names none."""


@dataclass
class Reference:
    files: list[str]
    pins: dict[str, str] = field(default_factory=dict)
    """Component -> the branch, tag or commit the reference checks out."""
    repos: dict[str, str] = field(default_factory=dict)
    build_lines: dict[str, list[str]] = field(default_factory=dict)
    """Component -> the words of its build line: environment assignments, then the command and its flags."""
    flags: dict[str, list[str]] = field(default_factory=dict)
    """Component -> the options its build passes (DeepEP: setup.py's, between setup.py and bdist_wheel)."""
    vendors: list[VendorRepo] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    """The final image's ENV (non-empty values; the reference empties sccache's with `ENV X=`)."""


def _find(dockerfiles: list[Dockerfile], name: str) -> str | None:
    return next((d.arg(name) for d in dockerfiles if d.arg(name)), None)


def _setup_options(command: list[str]) -> list[str]:
    """The words between `setup.py` and `bdist_wheel`: the options a setup.py's own parser reads."""
    start = command.index("setup.py") + 1
    end = command.index("bdist_wheel") if "bdist_wheel" in command else len(command)
    return command[start:end]


def read(dockerfiles: list[Dockerfile]) -> Reference:
    ref = Reference(files=[d.source for d in dockerfiles])
    for component, arg in PIN_ARGS.items():
        value = _find(dockerfiles, arg)
        if value:
            ref.pins[component] = value
        repo = _find(dockerfiles, REPO_ARGS[component])
        if repo:
            ref.repos[component] = repo
    for dockerfile in dockerfiles:
        for stage in dockerfile.stages:
            for command in stage.commands:
                _read_command(ref, stage.name, command)
        _read_vendors(ref, dockerfile)
    final = next((d.stage(FINAL_STAGE) for d in dockerfiles if d.stage(FINAL_STAGE) and "mori_base" in
                  {s.name for s in d.stages}), None) or next((d.stage(FINAL_STAGE) for d in dockerfiles
                                                              if d.stage(FINAL_STAGE)), None)
    if final is None:
        raise DockerfileError(f"{', '.join(ref.files)}: no stage named {FINAL_STAGE!r}; not vLLM's reference")
    ref.env = {k: v for k, v in final.env.items() if v}
    return ref


def _program(command: list[str]) -> list[str]:
    """The command without the environment assignments before it (`CC="ccache gcc" meson setup ...`)."""
    at = next((i for i, w in enumerate(command) if "=" not in w.split("/")[0]), len(command))
    return command[at:]


def _read_command(ref: Reference, stage: str, command: list[str]) -> None:
    if "setup.py" in command and "--variant" in command:
        ref.build_lines["deepep"] = command
        ref.flags["deepep"] = _setup_options(command)
    elif any(w.endswith("build_configs/all_backends") for w in command):
        at = next(i for i, w in enumerate(command) if w.endswith("build_configs/all_backends"))
        ref.build_lines["rocshmem"] = command
        ref.flags["rocshmem"] = command[at + 1:]
    elif "setup.py" in command and "bdist_wheel" in command and stage in ("build_aiter", "build_mori"):
        component = stage.removeprefix("build_")
        ref.build_lines[component] = command
        # What these builds take is their environment: the assignments before the command.
        ref.flags[component] = [w for w in command[:command.index("python3") if "python3" in command else 0]
                                if "=" in w]
    elif stage == "build_nixl" and any(w.endswith("/configure") for w in command) and "ucx" not in ref.flags:
        # UCX's `../configure --prefix=... --with-rocm=${ROCM_PATH} --with-verbs ...` (after CC="ccache gcc").
        at = next(i for i, w in enumerate(command) if w.endswith("/configure"))
        ref.build_lines["ucx"] = command
        ref.flags["ucx"] = [w for w in command[at + 1:] if w.startswith("--")]
    elif stage == "build_nixl" and _program(command)[:2] == ["meson", "setup"] and "nixl" not in ref.flags:
        # NIXL's `meson setup build --prefix=... -Ducx_path=... -Dwheel_variant=rocm ...`; the wheel build after it
        # repeats the same -D options as -Csetup-args.
        ref.build_lines["nixl"] = command
        ref.flags["nixl"] = [w for w in _program(command)[2:] if w.startswith("-D")]
    elif command[:2] == ["git", "clone"] and any(w.endswith("rdma-core.git") for w in command):
        if "--branch" in command:
            ref.pins["rdma-core"] = command[command.index("--branch") + 1]
        ref.repos["rdma-core"] = next(w for w in command if w.endswith("rdma-core.git"))


def _read_vendors(ref: Reference, dockerfile: Dockerfile) -> None:
    """Each `deb URL SUITE COMPONENT` an echo writes, with the packages `apt-get install` takes after it in the
    same shell function (the prerequisites installed before the repository is added belong to no repository)."""
    for stage in dockerfile.stages:
        current: VendorRepo | None = None
        for command in stage.commands:
            if command == ["{"]:
                current = None
            elif command[0] == "echo" and len(command) > 1 and command[1].startswith("deb "):
                words = [w for w in command[1].split() if not w.startswith("[") and not w.endswith("]")
                         and "=" not in w]
                if len(words) >= 4:
                    current = VendorRepo(words[1], words[2], words[3], {})
                    ref.vendors.append(current)
            elif current is not None and command[:2] == ["apt-get", "install"]:
                for word in command[2:]:
                    if not word.startswith("-"):
                        name, sep, version = word.partition("=")
                        current.packages[name] = version if sep else None
