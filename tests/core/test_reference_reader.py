"""The reference Dockerfiles read as data: shapes of vLLM's docker/Dockerfile.rocm@00305ee5 and
Dockerfile.rocm_base@00256d59 (written out here in small, as the real files have them), and what the reader
takes from them."""

from __future__ import annotations

import pytest

from epbuild.pinning.dockerfile_model import DockerfileError, parse, shell_commands
from epbuild.pinning.reference import read

ROCM = r'''ARG COMMON_WORKDIR=/app
ARG AINIC_VERSION=1.117.3-hydra
ARG UBUNTU_CODENAME=jammy
FROM rocm/vllm-dev:base AS base
ENV CCACHE_DIR=/root/.cache/ccache

FROM base AS build_rocshmem
ARG ROCSHMEM_BRANCH="f0acb0c6"
ENV ROCM_PATH=/opt/rocm
RUN --mount=type=cache,target=/root/.cache/ccache \
    git clone --no-checkout --filter=blob:none https://example.invalid/rocm-systems.git \
 && cd rocm-systems/projects/rocshmem/build \
 && CC="ccache gcc" INSTALL_PREFIX=/opt/rocshmem \
    bash ../scripts/build_configs/all_backends \
      -DROCM_PATH=${ROCM_PATH} \
      -DGPU_TARGETS="gfx942;gfx950" \
      -DUSE_EXTERNAL_MPI=OFF

FROM build_rocshmem AS build_deepep
ARG DEEPEP_BRANCH="0f63d3e9"
ARG DEEPEP_NIC="cx7"
# a comment between instructions
RUN --mount=type=cache,target=/root/.cache/ccache \
    export PYTORCH_ROCM_ARCH="gfx942;gfx950" \
 && git checkout ${DEEPEP_BRANCH} \
 && LDFLAGS="-fuse-ld=mold" MAX_JOBS="${MAX_JOBS:-$(nproc)}" python3 setup.py --variant rocm --rocm-explicit-ctx --nic ${DEEPEP_NIC} --rocm-gfx942-fp8-fnuz-max 224 bdist_wheel --dist-dir=/app/deep_install

FROM base AS mori_base
ARG AINIC_VERSION
ARG UBUNTU_CODENAME
RUN /bin/bash -lc 'set -euo pipefail; \
 install_ainic() { \
   apt-get update && apt-get install -y --no-install-recommends ca-certificates curl gnupg; \
   echo "deb [arch=amd64 signed-by=/etc/apt/keyrings/amdainic.gpg] https://repo.example/amdainic/${AINIC_VERSION} ${UBUNTU_CODENAME} main" \
     > /etc/apt/sources.list.d/amdainic.list; \
   apt-get update && apt-get install -y --no-install-recommends \
     libionic-dev \
     ionic-common \
   ; \
 }; \
 # NOTE: a comment line inside the continued script, dropped as Docker drops it \
 install_bnxt() { \
   echo "deb [arch=amd64 signed-by=/etc/apt/keyrings/broadcom-nic.asc] https://packages.example/nic jammy main" \
     > /etc/apt/sources.list.d/broadcom-nic.list; \
   apt-get update && apt-get install -y --no-install-recommends bnxt-rocelib=235.2.86.0; \
 }; \
 case "${NIC_BACKEND}" in all) install_ainic; install_bnxt ;; esac'

FROM base AS build_nixl
ARG NIXL_BRANCH="231d5675"
ARG NIXL_REPO="https://example.invalid/nixl.git"
ARG UCX_BRANCH="96e58a16"
ARG UCX_REPO="https://example.invalid/ucx.git"
ENV UCX_HOME=/usr/local/ucx
RUN cd ucx && git checkout ${UCX_BRANCH} && ./autogen.sh && mkdir build && cd build && \
    CC="ccache gcc" CXX="ccache g++" \
    ../configure \
        --prefix=/usr/local/ucx \
        --enable-shared \
        --with-rocm=${ROCM_PATH} \
        --with-verbs \
        --enable-mt && \
    make -j$(nproc) && make install
RUN cd /opt/nixl && \
    CC="ccache gcc" CXX="ccache g++" \
    meson setup build --prefix=/usr/local/nixl \
                     -Ducx_path=${UCX_HOME} \
                     -Dwheel_variant=rocm \
                     -Dbuild_tests=false && \
    cd build && ninja
RUN CC="ccache gcc" uv build --wheel -Csetup-args=-Ducx_path=${UCX_HOME} -Csetup-args=-Dwheel_variant=cuda

FROM mori_base AS ci_base
ARG DEEPEP_NIC
RUN if [ "${DEEPEP_NIC}" = "cx7" ]; then \
    git clone --branch v62.0 --depth 1 https://example.invalid/rdma-core.git /tmp/rdma-core; \
fi

FROM mori_base AS final
ARG COMMON_WORKDIR
ENV SCCACHE_BUCKET=
ENV HSA_ENABLE_IPC_MODE_LEGACY=1
ENV KINETO_CONFIG="${COMMON_WORKDIR}/libkineto.conf"
'''

BASE = '''ARG AITER_BRANCH="v0.1.10.post3"
ARG PYTORCH_BRANCH="8514f051" # release/2.10 as of 3/17
ARG MORI_BRANCH="2d02c6a9"
FROM rocm/dev-ubuntu-22.04:7.2.1-complete AS base
ENV AITER_ROCM_ARCH=gfx942;gfx950
FROM base AS build_aiter
RUN cd aiter \\
    && if [ "$USE_SCCACHE" = "1" ]; then export HIP_CLANG_PATH=/opt/sccache-wrappers; fi \\
    && PREBUILD_KERNELS=1 GPU_ARCHS=${AITER_ROCM_ARCH} python3 setup.py bdist_wheel --dist-dir=dist
FROM base AS final
'''


@pytest.fixture(scope="module")
def reference():  # type: ignore[no-untyped-def]
    return read([parse(ROCM, "Dockerfile.rocm"), parse(BASE, "Dockerfile.rocm_base")])


def test_pins_come_from_the_branch_args_and_the_rdma_core_clone(reference) -> None:  # type: ignore[no-untyped-def]
    assert reference.pins == {"rocshmem": "f0acb0c6", "deepep": "0f63d3e9", "mori": "2d02c6a9",
                              "aiter": "v0.1.10.post3", "rdma-core": "v62.0", "ucx": "96e58a16", "nixl": "231d5675"}


def test_build_line_flags_with_args_and_env_expanded(reference) -> None:  # type: ignore[no-untyped-def]
    assert reference.flags["deepep"] == ["--variant", "rocm", "--rocm-explicit-ctx", "--nic", "cx7",
                                         "--rocm-gfx942-fp8-fnuz-max", "224"]
    assert reference.flags["rocshmem"] == ["-DROCM_PATH=/opt/rocm", "-DGPU_TARGETS=gfx942;gfx950",
                                           "-DUSE_EXTERNAL_MPI=OFF"]
    assert reference.flags["aiter"] == ["PREBUILD_KERNELS=1", "GPU_ARCHS=gfx942;gfx950"]
    # UCX's configure options after the compiler assignments; NIXL's from `meson setup`, not from the wheel build
    # that repeats them as -Csetup-args. ROCM_PATH is no ARG or ENV of that stage's file: it stays as written.
    assert reference.flags["ucx"] == ["--prefix=/usr/local/ucx", "--enable-shared", "--with-rocm=${ROCM_PATH}",
                                      "--with-verbs", "--enable-mt"]
    assert reference.flags["nixl"] == ["-Ducx_path=/usr/local/ucx", "-Dwheel_variant=rocm", "-Dbuild_tests=false"]


def test_vendor_repositories_and_versions_from_the_bash_script(reference) -> None:  # type: ignore[no-untyped-def]
    repos = {(v.url, v.suite, v.component): v.packages for v in reference.vendors}
    # The prerequisites installed before the repository is added belong to no repository.
    assert repos == {("https://repo.example/amdainic/1.117.3-hydra", "jammy", "main"):
                     {"libionic-dev": None, "ionic-common": None},
                     ("https://packages.example/nic", "jammy", "main"): {"bnxt-rocelib": "235.2.86.0"}}


def test_final_env_is_the_stage_own_non_empty_env(reference) -> None:  # type: ignore[no-untyped-def]
    assert reference.env == {"HSA_ENABLE_IPC_MODE_LEGACY": "1", "KINETO_CONFIG": "/app/libkineto.conf"}


def test_shell_words_split_like_a_shell() -> None:
    assert shell_commands('a "b c" && d;e | f') == [["a", "b c"], ["d"], ["e"], ["f"]]
    assert shell_commands("if x; then y z; fi") == [["if", "x"], ["y", "z"], ["fi"]]


def test_no_from_is_no_dockerfile() -> None:
    with pytest.raises(DockerfileError, match="no FROM"):
        parse("ARG A=1\n", "x/Dockerfile")


# Substitution shapes of Dockerfile.rocm@00305ee5's `base` stage: an ARG declared without a default, `:+` and a
# nested `:-` default. BuildKit substitutes an ARG with no default and no --build-arg as empty, `${X:+word}` as word
# only when X is set and non-empty, and expands the word of either form; a name the file never declares (set by the
# base image) stays for the image to fill.
SUBSTITUTIONS = r'''ARG USE_CACHE
ARG CACHE_BUCKET=bucket-a
FROM scratch AS base
ARG USE_CACHE
ARG CACHE_BUCKET
ARG jobs
ARG ARCH_OVERRIDE
ENV JOBS=${jobs}
ENV BUCKET=${USE_CACHE:+${CACHE_BUCKET}}
ENV ARCH=${ARCH_OVERRIDE:-${FROM_BASE_IMAGE}}
ENV BUCKET_ALWAYS=${CACHE_BUCKET:+s3://${CACHE_BUCKET}/x}
FROM base AS build
RUN python3 -c "1" --cache=$USE_CACHE --bucket=$CACHE_BUCKET
ARG USE_CACHE
RUN JOBS="${JOBS:-$(nproc)}" python3 setup.py --cache=$USE_CACHE bdist_wheel
'''


def test_substitution_follows_buildkit_for_empty_args_plus_and_nested_defaults() -> None:
    dockerfile = parse(SUBSTITUTIONS, "Dockerfile")
    base = dockerfile.stage("base")
    assert base is not None
    assert base.env == {"JOBS": "", "BUCKET": "", "ARCH": "${FROM_BASE_IMAGE}",
                        "BUCKET_ALWAYS": "s3://bucket-a/x"}
    build = dockerfile.stage("build")
    assert build is not None
    # An ARG is in scope only where the stage declares it; the shell sees JOBS empty, so its own default applies.
    assert build.commands == [["python3", "-c", "1", "--cache=$USE_CACHE", "--bucket=$CACHE_BUCKET"],
                              ["JOBS=$(nproc)", "python3", "setup.py", "--cache=", "bdist_wheel"]]


def test_ucx_and_nixl_options_are_compared_flag_by_flag(reference) -> None:  # type: ignore[no-untyped-def]
    from epbuild.components.nixl import NixlPin
    from epbuild.components.ucx import UcxPin
    from epbuild.pinning.reference_diff import DIFFERS, EXPLAINED, SAME, nixl_rows, ucx_rows

    ucx = UcxPin(repo="https://example.invalid/ucx.git", commit="96e58a16",
                 configure_flags=["--enable-shared", "--with-verbs", "--with-dm"])
    rows = {r.key: r for r in ucx_rows(ucx, reference)}
    assert rows["ucx --prefix"].status == SAME
    assert "ucx --with-rocm=${ROCM_PATH}" not in rows  # the base's ROCm path, which the stage passes itself
    assert (rows["ucx --enable-mt"].ours, rows["ucx --enable-mt"].reference, rows["ucx --enable-mt"].status) == \
        ("-", "on", DIFFERS)
    assert (rows["ucx --with-dm"].ours, rows["ucx --with-dm"].reference) == ("on", "-")
    assert rows["ucx --with-verbs"].status == SAME
    assert rows["ucx --enable-mt"].line().endswith("<- differs (edit by hand)")
    explained = ucx.model_copy(update={"reference_differs": {"configure_flags": "device memory on purpose"}})
    assert {r.status for r in ucx_rows(explained, reference) if r.key != "ucx --prefix"} <= {SAME, EXPLAINED}
    moved = UcxPin(repo="https://example.invalid/ucx.git", commit="96e58a16", install_prefix="/opt/ucx")
    [prefix] = [r for r in ucx_rows(moved, reference) if r.key == "ucx --prefix"]
    assert prefix.status == DIFFERS and prefix.edits[0].path == ("components", "ucx", "install_prefix")

    nixl = NixlPin(repo="https://example.invalid/nixl.git", commit="231d5675",
                   meson_options={"wheel_variant": "rocm", "build_tests": "true", "build_examples": "false"})
    rows = {r.key: r for r in nixl_rows(nixl, reference)}
    assert "nixl -Ducx_path" not in rows  # the ucx component's install_prefix, compared on UCX's row
    assert rows["nixl -Dwheel_variant"].status == SAME
    assert (rows["nixl -Dbuild_tests"].ours, rows["nixl -Dbuild_tests"].reference,
            rows["nixl -Dbuild_tests"].status) == ("true", "false", DIFFERS)
    assert (rows["nixl -Dbuild_examples"].ours, rows["nixl -Dbuild_examples"].reference) == ("false", "-")
