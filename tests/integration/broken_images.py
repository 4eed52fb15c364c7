"""Every in-image check, seen failing: for each check (epbuild/checks/image/*.py and each component's test_*.py), an edit
that breaks exactly the property it checks, made on a good image of the offline example.

To add a check: add one Breakage naming it, the cell whose image it is derived from, and the Dockerfile lines
(after FROM the good image) that break its property and nothing else. Breakages of one group go into one derived
image, checked once; the test asserts that exactly the group's checks fail there, and that every check run on a
good image has a breakage (tests/integration/test_checks_seen_failing.py). Put a breakage in a new group when
it touches what another of the group touches. `$BREAK` runs tests/integration/breakage/break_image.py in the image.
"""

from __future__ import annotations

from dataclasses import dataclass

CX7 = "gfx950-cx7-sid"  # rdma-core from source, no vendor userspace
THOR2 = "gfx950-thor2-sid"  # the distribution's rdma-core, Broadcom's userspace
IO = "gfx950-io-sid"  # rdma-core from source, AMD's userspace as the ionic provider (vendor.provides_provider)
LIBDIR = "/usr/lib/x86_64-linux-gnu"
UCX = "/usr/local/ucx"  # components.ucx.install_prefix of the offline example
UCX_ELSEWHERE = "/usr/local/ucy"  # same length: a RUNPATH is edited in place


@dataclass(frozen=True)
class Breakage:
    check: str
    """The check that must fail: `<file stem>::<test name>[<param>]`, as `invoke test` names it."""
    cell: str
    group: str
    dockerfile: str
    also: tuple[str, ...] = ()
    """Checks that cannot hold without the broken property and so fail with it (said why where listed)."""


# The functional tester carries the build record of the librocshmem it was linked with (revision, targets,
# backends): a library edited after the build no longer matches it.
TESTER = ("test_rocshmem::test_functional_tester_is_installed_and_built_with_the_images_library",)

# vLLM's console script imports vllm (vllm.entrypoints.cli.main): an image where vllm does not import cannot run it.
VLLM_CLI = ("test_vllm::test_the_vllm_command_runs_and_prints_the_pin_s_version",
            "test_vllm::test_the_server_starts_far_enough_to_print_its_help")


def stanza(package: str, status: str, extra: str = "") -> str:
    """A dpkg status entry appended to the database (printf, so the entry ends with its blank line)."""
    text = (f"Package: {package}\\nStatus: {status}\\nPriority: optional\\nSection: misc\\nMaintainer: epbuild\\n"
            f"Architecture: all\\nVersion: 1.0\\n{extra}Description: broken on purpose\\n\\n")
    # With its file list and checksums, as dpkg keeps for an installed package (else `dpkg --audit` reports it).
    return (f"RUN printf '{text}' >> /var/lib/dpkg/status && "
            f"touch /var/lib/dpkg/info/{package}.list /var/lib/dpkg/info/{package}.md5sums")


def repoint(lib: str, version: str) -> str:
    """`lib`.so.1 resolves to a copy of its file under another release number."""
    return (f"RUN cd {LIBDIR} && real=$(readlink -f {lib}.so.1) && new=$(echo \"$real\" | "
            f"sed -E 's/\\.[0-9]+$/.{version}/') && cp \"$real\" \"$new\" && "
            f"ln -sf \"$(basename \"$new\")\" {lib}.so.1")


BREAKAGES = [
    # epbuild/checks/image/test_apt.py
    Breakage("test_apt::test_apt_get_check_passes", CX7, "a",
             stanza("epbuild-broken", "install ok installed", "Depends: epbuild-absent\\n")),
    Breakage("test_apt::test_dpkg_audit_finds_nothing", CX7, "b", stanza("epbuild-half", "install ok half-configured")),
    # epbuild/checks/image/test_hygiene.py
    Breakage("test_hygiene::test_no_build_leftovers", CX7, "a",
             "RUN mkdir -p /src/deepep/build && touch /src/deepep/build/CMakeCache.txt"),
    Breakage("test_hygiene::test_compiled_python_is_checked_hash", CX7, "b", "RUN $BREAK timestamp-pyc vllm"),
    # epbuild/checks/image/test_libraries.py: a library in a prefix `final` copies, needing a library nobody ships.
    Breakage("test_libraries::test_no_missing_shared_library_dependencies", CX7, "a",
             f"RUN cp {LIBDIR}/libz.so.1 /opt/rocshmem/lib/libepbuild-broken.so && "
             "$BREAK file-bytes /opt/rocshmem/lib/libepbuild-broken.so libc.so.6 libq.so.6"),
    # epbuild/checks/image/test_manifest.py
    Breakage("test_manifest::test_manifest_names_the_built_pins", CX7, "b",
             "RUN sed -i 's/\"commit\": \"[0-9a-f]*\"/\"commit\": \"0000000000\"/' /opt/epbuild/manifest.json"),
    Breakage("test_manifest::test_labels_name_the_built_pins_and_the_manifests_key", CX7, "a",
             "LABEL io.epbuild.pin.deepep=0000000000"),
    Breakage("test_manifest::test_versions_txt_lists_every_pin_and_each_wheels_own_version", CX7, "a",
             "RUN sed -i 's/^DEEPEP_COMMIT: .*/DEEPEP_COMMIT: 0000000000/' /app/versions.txt"),
    Breakage("test_manifest::test_versions_txt_keeps_the_base_images_lines", CX7, "b",
             "RUN sed -i 1d /app/versions.txt"),
    # epbuild/checks/image/test_runtime.py
    Breakage("test_runtime::test_image_environment", CX7, "a", "ENV VLLM_ROCM_USE_AITER=0"),
    Breakage("test_runtime::test_a_login_shell_keeps_the_image_environment", CX7, "b",
             "RUN echo 'export VLLM_ROCM_USE_AITER=0' > /etc/profile.d/zz-epbuild-broken.sh"),
    # epbuild/checks/image/test_built_from_pins.py: the revision string each stand-in compiles in, and each version.
    Breakage("test_built_from_pins::test_built_files_carry_the_revision_of_the_pin[rocshmem]", CX7, "b",
             "RUN $BREAK file-bytes /opt/rocshmem/lib/librocshmem.a rocshmem-fixture-rev- rocshmem-fixture-rez-",
             also=TESTER),
    *(Breakage(f"test_built_from_pins::test_built_files_carry_the_revision_of_the_pin[{component}]", CX7, "b",
               f"RUN $BREAK bytes {dist} .so {component}-fixture-rev- {component}-fixture-rez-")
      for component, dist in (("deepep", "deep_ep"), ("mori", "mori"), ("aiter", "amd-aiter"), ("vllm", "vllm"))),
    *(Breakage(f"test_built_from_pins::test_installed_version_is_what_setuptools_scm_gives_the_pin[{component}]",
               CX7, "c", f"RUN $BREAK version {dist} 9.9.9")
      for component, dist in (("mori", "mori"), ("aiter", "amd-aiter"), ("vllm", "vllm"))),
    # epbuild/components/ucx/test_ucx.py: UCX under components.ucx.install_prefix (/usr/local/ucx in the example).
    Breakage("test_ucx::test_lists_the_rocm_transports", CX7, "a", f"RUN rm {UCX}/lib/ucx/libuct_rocm.*"),
    Breakage("test_ucx::test_lists_the_verbs_transports", CX7, "b",
             f"RUN $BREAK file-bytes {UCX}/lib/ucx/libuct_ib.so.0.0.0 rc_verbs rc_verbz"),
    Breakage("test_ucx::test_configured_with_the_matrix_options", CX7, "c",
             f"RUN $BREAK file-bytes {UCX}/bin/ucx_info --enable-mt --enable-mz"),
    # A libibverbs in UCX's own RUNPATH folder shadows the rdma-core build the cell pinned.
    Breakage("test_ucx::test_verbs_module_links_the_pinned_libibverbs", CX7, "d",
             f"RUN cp -L {LIBDIR}/libibverbs.so.1 {UCX}/lib/libibverbs.so.1"),
    # epbuild/components/nixl/test_nixl.py
    Breakage("test_nixl::test_carries_the_variant_package", CX7, "a", "RUN $BREAK unrecord nixl-rocm nixl_rocm/",
             # The native bindings are files of the variant package: unlisted with it, the wheel lists none.
             also=("test_nixl::test_links_the_cells_ucx",)),
    Breakage("test_nixl::test_imports_and_loads_its_ucx_plugins", CX7, "c",
             "RUN rm \"$(python3 -c 'import nixl; print(nixl.ucx_plugin_dir())')\"/libuct_ib.*"),
    # The bindings' RUNPATH moved to a copy of UCX's libraries: NIXL still imports, linking another UCX.
    Breakage("test_nixl::test_links_the_cells_ucx", CX7, "d",
             f"RUN mkdir -p {UCX_ELSEWHERE}/lib && cp -a {UCX}/lib/*.so* {UCX_ELSEWHERE}/lib/ && "
             f"$BREAK bytes nixl-rocm .so {UCX}/lib {UCX_ELSEWHERE}/lib"),
    # epbuild/components/aiter/test_aiter.py
    Breakage("test_aiter::test_imports", CX7, "a",
             "RUN $BREAK append amd-aiter aiter/__init__.py 'raise ImportError(\"broken on purpose\")'"),
    Breakage("test_aiter::test_device_code_for_exactly_the_cell_archs", CX7, "c",
             "RUN $BREAK bytes amd-aiter .so gfx950 gfx942"),
    # epbuild/components/deepep/test_deepep.py
    Breakage("test_deepep::test_package_and_extension_installed", CX7, "a",
             "RUN $BREAK unrecord deep_ep deep_ep/__init__.py"),
    Breakage("test_deepep::test_device_code_for_exactly_the_cell_archs", CX7, "c",
             "RUN $BREAK bytes deep_ep .so gfx950 gfx942"),
    Breakage("test_deepep::test_imports", CX7, "d",
             "RUN $BREAK append deep_ep deep_ep/__init__.py 'raise ImportError(\"broken on purpose\")'"),
    Breakage("test_deepep::test_version_is_what_a_checkout_of_the_pin_gives", CX7, "c",
             "RUN $BREAK version deep_ep 1.0.0+0000000"),
    # epbuild/components/mori/test_mori.py
    Breakage("test_mori::test_kernel_types_vllm_selects", CX7, "a",
             # The stand-in defines the enum in Python (the real one in its pybind module): rename a member.
             "RUN $BREAK bytes mori ops/dispatch_combine.py InterNodeV1LL InterNodeV1XX"),
    Breakage("test_mori::test_device_code_for_exactly_the_cell_archs", CX7, "c",
             "RUN $BREAK bytes mori .so gfx950 gfx942"),
    # The links stay resolvable (libmpx -> libmpi, libepbx_re -> libbnxt_re), so only the link checks notice.
    Breakage("test_mori::test_links_the_mpi_it_requires", CX7, "d", "RUN $BREAK rename-needed mori libmpi libmpx"),
    Breakage("test_mori::test_links_the_vendor_library_exactly_where_its_pin_compiles_it_in", THOR2, "t2",
             "RUN $BREAK rename-needed mori libbnxt_re libepbx_re"),
    # epbuild/components/rdma_core/test_rdma_core.py
    Breakage("test_rdma_core::test_source_built_library_at_the_pinned_version[libibverbs]", CX7, "a",
             repoint("libibverbs", "99"),
             # UCX's verbs module links libibverbs.so.1, which now names the other release.
             also=("test_ucx::test_verbs_module_links_the_pinned_libibverbs",)),
    Breakage("test_rdma_core::test_source_built_library_at_the_pinned_version[librdmacm]", CX7, "c",
             repoint("librdmacm", "99")),
    Breakage("test_rdma_core::test_source_built_provider_library_at_the_pinned_version", CX7, "d",
             repoint("libmlx5", "99")),
    Breakage("test_rdma_core::test_provider_plugins_and_driver_files", CX7, "a",
             "RUN rm /etc/libibverbs.d/mlx5.driver"),
    Breakage("test_rdma_core::test_pkg_config_reports_the_release", CX7, "d",
             f"RUN sed -i 's/^Version: .*/Version: 1.14.0/' {LIBDIR}/pkgconfig/libibverbs.pc"),
    Breakage("test_rdma_core::test_unversioned_libibverbs_link_for_rocshmem_dlopen", CX7, "c",
             f"RUN rm {LIBDIR}/libibverbs.so"),
    Breakage("test_rdma_core::test_distribution_libibverbs_and_no_source_built_copy", THOR2, "t1",
             f"RUN cp $(readlink -f {LIBDIR}/libibverbs.so.1) {LIBDIR}/libibverbs.so.1.99.0",
             # ldconfig (run by this group) points libibverbs.so.1 at the unowned copy, which UCX's verbs module
             # then links in place of the distribution's.
             also=("test_ucx::test_verbs_module_links_the_pinned_libibverbs",)),
    # epbuild/components/rocshmem/test_rocshmem.py
    Breakage("test_rocshmem::test_install_layout", CX7, "a", "RUN rm /opt/rocshmem/include/rocshmem/rocshmem.hpp"),
    Breakage("test_rocshmem::test_device_code_for_exactly_the_cell_archs", CX7, "c",
             "RUN $BREAK file-bytes /opt/rocshmem/lib/librocshmem.a gfx950 gfx942", also=TESTER),
    Breakage("test_rocshmem::test_carries_the_gda_backend_for_the_nic", CX7, "d",
             "RUN $BREAK file-bytes /opt/rocshmem/lib/librocshmem.a backends= backendz=", also=TESTER),
    # A functional tester built against another rocSHMEM (its compiled-in revision differs from the library's).
    Breakage("test_rocshmem::test_functional_tester_is_installed_and_built_with_the_images_library", CX7, "a",
             "RUN $BREAK file-bytes /opt/rocshmem/share/rocshmem/rocshmem_functional_tests "
             "rocshmem-fixture-rev- rocshmem-fixture-rez-"),
    # epbuild/components/vllm/test_vllm.py
    Breakage("test_vllm::test_imports", CX7, "c",
             "RUN $BREAK append vllm vllm/__init__.py 'raise ImportError(\"broken on purpose\")'", also=VLLM_CLI),
    # vllm --version prints vllm.__version__ (vllm/_version.py); `vllm serve` loses its subcommand.
    Breakage("test_vllm::test_the_vllm_command_runs_and_prints_the_pin_s_version", CX7, "e",
             "RUN $BREAK bytes vllm _version.py .dev .dex"),
    Breakage("test_vllm::test_the_server_starts_far_enough_to_print_its_help", CX7, "e",
             "RUN $BREAK bytes vllm cli/main.py '\"serve\"' '\"servx\"'"),
    # epbuild/checks/image/test_python_env.py: a distribution whose requirement nothing provides; a torch other than the
    # base's (the version string only, so nothing else reads a changed file).
    Breakage("test_python_env::test_pip_check_is_clean", CX7, "e",
             "RUN d=\"$(python3 -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])')/epbuild_broken-1.0.dist-info\" "
             "&& mkdir -p \"$d\" && printf 'Metadata-Version: 2.1\\nName: epbuild-broken\\nVersion: 1.0\\n"
             "Requires-Dist: epbuild-absent\\n' > \"$d/METADATA\""),
    Breakage("test_python_env::test_torch_is_the_base_images_own", CX7, "e",
             "RUN $BREAK bytes torch torch/__init__.py '\"2.10.0+' '\"2.15.0+'"),
    Breakage("test_vllm::test_device_code_for_exactly_the_cell_archs", CX7, "d",
             "RUN $BREAK bytes vllm .so gfx950 gfx942"),
    Breakage("test_vllm::test_smoke_tools_vllm_ci_expects", CX7, "a",
             "RUN for tool in rocminfo amd-smi; do p=$(command -v $tool) && rm \"$p\"; done; "
             "! command -v rocminfo && ! command -v amd-smi"),
    Breakage("test_vllm::test_triton_kernels_are_the_pinned_archive", CX7, "a",
             "RUN $BREAK append vllm third_party/triton_kernels/__init__.py '# edited on purpose'"),
    Breakage("test_vllm::test_rust_frontend_binary_is_built_from_the_pin", CX7, "b",
             "RUN p=$($BREAK path vllm vllm/vllm-rs) && printf '#!/bin/sh\\necho vllm-rs 0.0.0\\n' > \"$p\""),
    Breakage("test_vllm::test_rust_tool_parser_imports_for_the_stable_abi", CX7, "c",
             "RUN p=$($BREAK path vllm .abi3.so) && : > \"$p\""),
    # epbuild/checks/image/test_nic_userspace.py (Broadcom's userspace on thor2)
    # Broadcom's post-install copy is what rocSHMEM's fallback dlopen finds (ldconfig does not cache libbnxt_re.so).
    Breakage("test_nic_userspace::test_rocshmem_dlopen_sequence_loads_the_vendor_library", THOR2, "t1",
             "RUN rm /usr/local/lib/libbnxt_re* && ldconfig"),
    # The packages' installed versions are also what the two checks below read (vendor_files.vendor_origin); what
    # only this check reads is `dpkg --verify`: the package's files against its recorded checksums.
    Breakage("test_nic_userspace::test_pinned_vendor_packages_at_their_versions", THOR2, "t2",
             "RUN sed -i 's/^[0-9a-f]\\{32\\}/00000000000000000000000000000000/' "
             "/var/lib/dpkg/info/bnxt-rocelib.md5sums"),
    Breakage("test_nic_userspace::test_provider_library_resolves_from_the_pinned_package", THOR2, "t3",
             # A copy of the vendor's library that is not byte-identical (no package's file), found by ldconfig.
             f"RUN cp /usr/local/lib/x86_64-linux-gnu/libbnxt_re-rdmav34.so {LIBDIR}/libbnxt_re-rdmav99.so && "
             f"printf x >> {LIBDIR}/libbnxt_re-rdmav99.so && ldconfig"),
]

BREAKAGES += [
    # epbuild/checks/image/test_nic_userspace.py on io: what rdma-core's source build left before issue 18 (its own libionic
    # beside the vendor's, verbs' plugin naming it while ldconfig's libionic.so.1, what rocSHMEM's dlopen reaches,
    # names the vendor's); and a vendor release built for another libibverbs (its plugin named for another ABI).
    Breakage("test_nic_userspace::test_one_provider_library_in_the_image_owned_by_the_vendor", IO, "i1",
             f"RUN cp {LIBDIR}/libionic.so.1.1.117.3 {LIBDIR}/libionic.so.1.0.65.0 "
             f"&& ln -sfn ../libionic.so.1.0.65.0 {LIBDIR}/libibverbs/libionic-rdmav65.so",
             also=("test_nic_userspace::test_verbs_and_rocshmem_dlopen_load_the_same_vendor_library",)),
    # Renaming the plugin stands in for a release built for another ABI; the renamed file is also a changed file
    # of the vendor's package (dpkg --verify) and a missing provider plugin, which those two checks notice.
    Breakage("test_nic_userspace::test_verbs_and_rocshmem_dlopen_load_the_same_vendor_library", IO, "i2",
             f"RUN mv {LIBDIR}/libibverbs/libionic-rdmav65.so {LIBDIR}/libibverbs/libionic-rdmav34.so",
             also=("test_nic_userspace::test_pinned_vendor_packages_at_their_versions",
                   "test_rdma_core::test_provider_plugins_and_driver_files")),
]

BREAK_TOOL = "/tmp/epbuild-break-image.py"


def groups() -> dict[tuple[str, str], list[Breakage]]:
    """(cell, group) -> its breakages, in table order."""
    out: dict[tuple[str, str], list[Breakage]] = {}
    for breakage in BREAKAGES:
        out.setdefault((breakage.cell, breakage.group), []).append(breakage)
    return out


def dockerfile(good_image: str, breakages: list[Breakage]) -> str:
    """The derived image: the edit tool copied in, each breakage's lines, the tool removed again."""
    lines = [f"FROM {good_image}", f"COPY break_image.py {BREAK_TOOL}"]
    lines += [b.dockerfile.replace("$BREAK", f"python3 {BREAK_TOOL}") for b in breakages]
    lines.append(f"RUN rm {BREAK_TOOL}")
    return "\n".join(lines) + "\n"
