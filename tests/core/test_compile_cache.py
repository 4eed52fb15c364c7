"""The shared compile cache's plumbing without an engine: what `invoke build --compile-cache URL` accepts and
refuses, that the URL and its password never reach the command line a run records, and that every compiled step
of the rendered Dockerfiles mounts the secret the same way whether the cache is on or not. Expectations come
from the rendered files and the command line, not from the module's own constants alone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from epbuild.build.compile_cache import CompileCacheError, checked_url, chosen_url, network_overlay, where

ROOT = Path(__file__).resolve().parents[2]
SECRET_MOUNT = "--mount=type=secret,id=epbuild-compile-cache,required=false"


def invoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True,
                          check=False, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379", "redis://:pw@cache.example:6380",
                                 "redis://user:pw@[::1]:6379", "http://127.0.0.1:8080/ccache",
                                 "https://cache.example/ccache|connect-timeout=500|layout=bazel"])
def test_the_back_ends_ccache_offers_are_accepted(url: str) -> None:
    assert checked_url(url) == url


@pytest.mark.parametrize("url, said", [("ftp://127.0.0.1/x", "'ftp' is not supported"),
                                       ("file:/srv/ccache", "not a compile cache URL"),
                                       ("127.0.0.1:6379", "not a compile cache URL"),
                                       ("redis://127.0.0.1:99999", "out of range"),
                                       ("", "unset?")])
def test_anything_else_is_refused_by_name(url: str, said: str) -> None:
    with pytest.raises(CompileCacheError, match=re.escape(said)):
        checked_url(url)


def test_a_refusal_never_repeats_the_password() -> None:
    with pytest.raises(CompileCacheError) as caught:
        checked_url("redis://user:hunter2@127.0.0.1:99999")
    assert "hunter2" not in str(caught.value) and "redis://127.0.0.1:99999" in str(caught.value)
    assert where("http://u:hunter2@h.example:81/p") == "http://h.example:81"


def test_the_flag_wins_and_an_empty_variable_means_no_cache() -> None:
    env = {"EPBUILD_COMPILE_CACHE": "redis://127.0.0.1:1"}
    assert chosen_url("http://127.0.0.1:2/c", env) == "http://127.0.0.1:2/c"
    assert chosen_url(None, env) == "redis://127.0.0.1:1"
    assert chosen_url(None, {"EPBUILD_COMPILE_CACHE": ""}) is None
    assert chosen_url(None, {}) is None
    with pytest.raises(CompileCacheError, match="EPBUILD_COMPILE_CACHE"):
        chosen_url(None, {"EPBUILD_COMPILE_CACHE": "nonsense"})


def test_the_network_overlay_puts_every_target_on_the_host_network_and_sets_nothing_else() -> None:
    doc = yaml.safe_load(network_overlay(["gfx950-cx7", "stage-vllm", "gfx950-cx7"]))
    assert doc == {"services": {name: {"build": {"network": "host"}} for name in ("gfx950-cx7", "stage-vllm")}}
    with pytest.raises(CompileCacheError, match="not a name"):
        network_overlay(["a: b"])


def test_the_build_command_names_the_variable_never_the_url() -> None:
    proc = invoke("build", "--cell", "gfx950-cx7", "--dry-run", "--compile-cache", "redis://:hunter2@127.0.0.1:6379")
    assert proc.returncode == 0, proc.stderr
    [bake] = [line for line in proc.stdout.splitlines() if "docker buildx bake" in line]
    assert "'*.secrets=id=epbuild-compile-cache,env=EPBUILD_COMPILE_CACHE'" in bake
    assert "'*.secrets=id=epbuild-compile-cache-sccache,env=EPBUILD_COMPILE_CACHE_SCCACHE'" in bake
    assert "host-network.compose.yaml" in bake
    assert "hunter2" not in proc.stdout + proc.stderr
    # The replay derives sccache's settings from the URL again, before the bake, and stops if it cannot.
    lines = proc.stdout.splitlines()
    derive = next(i for i, line in enumerate(lines) if "EPBUILD_COMPILE_CACHE_SCCACHE=" in line)
    assert derive < lines.index(bake)
    script = f"set -euo pipefail\ncd {ROOT}\n{lines[derive]}\nprintf '%s' \"$EPBUILD_COMPILE_CACHE_SCCACHE\"\n"
    ran = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                         env={**os.environ, "EPBUILD_COMPILE_CACHE": "redis://:hunter2@127.0.0.1:6379"})
    assert ran.returncode == 0, ran.stderr
    assert "SCCACHE_REDIS_ENDPOINT=redis://:hunter2@127.0.0.1:6379\n" in ran.stdout
    unset = subprocess.run(["bash", "-c", script + "echo went-on"], capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if k != "EPBUILD_COMPILE_CACHE"})
    assert unset.returncode != 0 and "went-on" not in unset.stdout and "EPBUILD_COMPILE_CACHE is empty" in unset.stderr


def test_without_the_cache_only_the_secret_is_missing_from_the_command() -> None:
    proc = invoke("build", "--cell", "gfx950-cx7", "--dry-run", env={"EPBUILD_COMPILE_CACHE": ""})
    assert proc.returncode == 0, proc.stderr
    [bake] = [line for line in proc.stdout.splitlines() if "docker buildx bake" in line]
    assert "secrets" not in bake and "host-network.compose.yaml" in bake


def test_an_empty_flag_is_refused_in_one_line() -> None:
    proc = invoke("build", "--cell", "gfx950-cx7", "--dry-run", "--compile-cache", "")
    assert proc.returncode != 0 and "unset?" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def _run_steps(dockerfile: str) -> list[str]:
    """Each RUN instruction with its continuation lines, as one string."""
    steps, current = [], ""
    for line in dockerfile.splitlines():
        if line.startswith("RUN ") or current:
            current += line + "\n"
            if not line.endswith("\\"):
                steps.append(current)
                current = ""
    return steps


@pytest.mark.parametrize("folder", ["images", "examples/offline/images"])
def test_every_compile_step_mounts_the_secret_optionally_and_hands_it_to_ccache(folder: str) -> None:
    compiling = [step for path in sorted((ROOT / folder).glob("*/Dockerfile"))
                 for step in _run_steps(path.read_text()) if "id=epbuild-ccache" in step]
    assert compiling, f"no ccache step in {folder}"
    for step in compiling:
        assert SECRET_MOUNT in step, step
        assert 'CCACHE_REMOTE_STORAGE="$(cat /run/secrets/epbuild-compile-cache 2>/dev/null || true)"' in step
        assert 'CCACHE_SECONDARY_STORAGE="$CCACHE_REMOTE_STORAGE"' in step  # ccache 4.5's name (Ubuntu 22.04)
        assert "--network" not in step  # the run's compose overlay sets the mode, the same with or without cache
    # rdma-core, rocSHMEM, DeepEP, MoRI, AITER, UCX, NIXL and vLLM's native step all compile in the offline example.
    names = " ".join(compiling)
    for source in ("/src/rdma-core", "/src/rocshmem", "/src/deepep", "/src/mori", "/src/aiter", "/src/ucx",
                   "/src/nixl", "/build/vllm"):
        assert f"CCACHE_BASEDIR={source}" in names


def test_the_pipelines_hand_the_cache_to_the_compiling_steps_only() -> None:
    jobs = yaml.safe_load((ROOT / ".github/workflows/epbuild.yml").read_text())["jobs"]
    compiling = {name for name in jobs if name.startswith(("stage-", "build-"))}
    assert compiling and any(name.startswith("stage-") for name in compiling)
    for name, job in jobs.items():
        held = job.get("env", {}).get("EPBUILD_COMPILE_CACHE")
        assert held == ("${{ secrets.EPBUILD_COMPILE_CACHE }}" if name in compiling else None), name
    hook = (ROOT / "ci/buildkite/pre-command").read_text()
    build_role = hook[hook.index("  build)"):hook.index("  gpu)")]
    assert "EPBUILD_COMPILE_CACHE" in build_role  # Buildkite: the build agents' hook, from the trust's own file


# From a real `invoke build --stage rocshmem --compile-cache redis://127.0.0.1:1` of the offline example (a fresh
# rocSHMEM commit whose device source changed; nothing listens on port 1), shortened to the lines that matter.
DEAD_SERVER = """\
#27 [rdma-core 1/1] RUN --mount=type=bind,from=src-rdma-core,target=/src/rdma-core,rw     export CCACHE_BASEDIR=/src/rdma-core
#27 CACHED
#28 [rocshmem 1/1] RUN --mount=type=bind,from=src-rocshmem,target=/src/rocshmem,rw     mkdir /src/rocshmem/projects/rocshmem/build
#28 11.27 [ 14%] Building CXX object CMakeFiles/rocshmem.dir/src/rocshmem_device.cpp.o
#28 38.24 epbuild: compile cache: 1 compiled, 0 from the shared cache, 1 unreachable
#28 DONE 38.4s
"""


def test_a_dead_server_is_named_in_the_summary_and_a_live_one_is_not() -> None:
    from epbuild.build.buildreport import BuildReport, CellResult
    from epbuild.build.compile_cache import StepStats

    report = BuildReport(None, [CellResult("gfx950-cx7-sid", "t", ok=True)])
    invocation = report.progress.start(["gfx950-cx7-sid"])
    for line in DEAD_SERVER.splitlines(keepends=True):
        report.progress.feed(line, invocation)
    assert report.compile_steps() == [StepStats("rocshmem", 1, 0, 1)]  # the cached rdma-core step printed nothing
    assert report.summary()["compile_steps"] == [{"stage": "rocshmem", "compiled": 1, "shared": 0, "unreachable": 1,
                                                  "tool": "ccache"}]
    [notice] = [line for line in report.table().splitlines() if "compile cache" in line]
    assert notice.startswith("compile cache unreachable: 1 compile of rocshmem went without the shared cache")

    live = BuildReport(None, [CellResult("gfx950-cx7-sid", "t", ok=True)])
    invocation = live.progress.start(["gfx950-cx7-sid"])
    for line in DEAD_SERVER.replace("1 compiled, 0 from the shared cache, 1 unreachable",
                                    "0 compiled, 4 from the shared cache, 0 unreachable").splitlines(keepends=True):
        live.progress.feed(line, invocation)
    assert live.compile_steps() == [StepStats("rocshmem", 0, 4, 0)]
    assert "compile cache" not in live.table()


@pytest.mark.parametrize("folder", ["images", "examples/offline/images"])
def test_every_compile_step_reports_its_own_statistics_and_leaves_no_log_in_its_layer(folder: str) -> None:
    for path in sorted((ROOT / folder).glob("*/Dockerfile")):
        for step in _run_steps(path.read_text()):
            if "id=epbuild-ccache" in step:
                assert "CCACHE_STATSLOG=/tmp/epbuild-ccache.log" in step, step
                assert "epbuild: compile cache: $(grep -cx cache_miss /tmp/epbuild-ccache.log" in step, step
                assert step.rstrip().endswith("&& rm /tmp/epbuild-ccache.log"), step


def _sourced(settings: str, tmp_path: Path) -> dict[str, str]:
    """What the Rust step's `set -a && . SECRET` puts in sccache's environment, read back by a real shell."""
    (tmp_path / "secret").write_text(settings)
    out = subprocess.run(["sh", "-c", f"set -a && . {tmp_path / 'secret'} && env -0"], capture_output=True,
                         check=True, env={"PATH": os.environ["PATH"]}).stdout.decode()
    return {k: v for k, _, v in (e.partition("=") for e in out.split("\0") if e.startswith("SCCACHE_"))}


@pytest.mark.parametrize("url, expected", [
    ("redis://127.0.0.1:6379", {"SCCACHE_REDIS_ENDPOINT": "redis://127.0.0.1:6379"}),
    # ccache's lone PASSWORD@ is a password (its manual: redis://[[USERNAME:]PASSWORD@]HOST); sccache's URL wants :PW@.
    ("redis://s3cr3t@cache.example:6380|connect-timeout=50", {"SCCACHE_REDIS_ENDPOINT": "redis://:s3cr3t@cache.example:6380"}),
    ("redis://me:s3cr3t@[::1]:6379", {"SCCACHE_REDIS_ENDPOINT": "redis://me:s3cr3t@[::1]:6379"}),
    ("http://127.0.0.1:8080/ccache", {"SCCACHE_WEBDAV_ENDPOINT": "http://127.0.0.1:8080/ccache"}),
    ("https://me:p%40ss@cache.example/c|bearer-token=tok|layout=flat",
     {"SCCACHE_WEBDAV_ENDPOINT": "https://cache.example/c", "SCCACHE_WEBDAV_USERNAME": "me",
      "SCCACHE_WEBDAV_PASSWORD": "p@ss", "SCCACHE_WEBDAV_TOKEN": "tok"}),
    ("http://h.example/it's $HOME", None),
])
def test_sccache_gets_the_same_store_under_its_own_names(url: str, expected: dict[str, str] | None,
                                                         tmp_path: Path) -> None:
    from epbuild.build.compile_cache import sccache_settings

    if expected is None:  # a URL with a space is no URL; with a quote it must still be one shell word
        with pytest.raises(CompileCacheError):
            sccache_settings(url)
        got = _sourced(sccache_settings("http://h.example/it's$HOME"), tmp_path)
        assert got["SCCACHE_WEBDAV_ENDPOINT"] == "http://h.example/it's$HOME"
        return
    prefix = "SCCACHE_REDIS_KEY_PREFIX" if url.startswith("redis") else "SCCACHE_WEBDAV_KEY_PREFIX"
    assert _sourced(sccache_settings(url), tmp_path) == {**expected, prefix: "sccache"}


def _rust_steps(folder: str) -> list[str]:
    return [step for path in sorted((ROOT / folder).glob("*/Dockerfile")) for step in _run_steps(path.read_text())
            if "tools/build_rust.py --release" in step]


def test_the_rust_step_compiles_through_sccache_with_the_store_optional() -> None:
    assert _rust_steps("images") == []  # the reference matrix builds no Rust frontend (rust_frontend: false)
    steps = _rust_steps("examples/offline/images")
    assert steps
    for step in steps:
        assert "--mount=type=secret,id=epbuild-compile-cache-sccache,required=false" in step
        assert "--mount=type=bind,from=sccache,target=/opt/epbuild-sccache" in step
        assert "RUSTC_WRAPPER=/opt/epbuild-sccache/sccache" in step
        # The server's socket in a tmpfs mount: never in the layer, never a port shared on the host network.
        assert "--mount=type=tmpfs,target=/run/epbuild-sccache" in step and "SCCACHE_SERVER_UDS=/run/epbuild-sccache/" in step
        assert step.index("--start-server") < step.index("tools/build_rust.py") < step.index("--show-stats")
        assert "--stop-server" in step


# sccache 0.16.0's `--show-stats --stats-format json`, as it printed it for a crate compiled once (one cache
# miss) and then taken from a Redis store (one hit); the fields the report reads, others left out.
def _stats(hits: int, misses: int, errors: int = 0) -> str:
    import json

    return json.dumps({"stats": {"cache_hits": {"counts": {"Rust": hits} if hits else {}, "adv_counts": {}},
                                 "cache_misses": {"counts": {"Rust": misses} if misses else {}, "adv_counts": {}},
                                 "cache_errors": {"counts": {"Rust": errors} if errors else {}, "adv_counts": {}},
                                 "cache_timeouts": 0, "cache_read_errors": 0, "cache_write_errors": 0,
                                 "compile_requests": 6, "requests_not_cacheable": 5}})


@pytest.mark.parametrize("store, stats, line", [
    ("shared", _stats(1, 0), "0 compiled, 1 from the shared cache, 0 unreachable"),
    ("shared", _stats(0, 2, errors=1), "2 compiled, 0 from the shared cache, 1 unreachable"),
    ("local", _stats(1, 1), "1 compiled, 0 from the shared cache, 0 unreachable"),
    # The store did not answer when the step started: every compile went without it.
    ("unreachable", _stats(1, 2), "2 compiled, 0 from the shared cache, 3 unreachable"),
])
def test_the_rust_step_reports_sccache_counts_as_the_summary_reads_them(store: str, stats: str, line: str) -> None:
    from epbuild.build.compile_cache import StepStats, step_stats

    [step] = _rust_steps("examples/offline/images")[:1]
    program = re.search(r"python3 -c '([^']*)' \"\$sccache_store\"", step)
    assert program, step
    printed = subprocess.run([sys.executable, "-c", program[1], store], input=stats, capture_output=True,
                             text=True, check=True).stdout
    assert printed == f"epbuild: compile cache (sccache): {line}\n"
    compiled, shared, unreachable = (int(w) for w in re.findall(r"\d+", line))
    assert step_stats("vllm", [f"#41 12.5 {printed}"]) == StepStats("vllm", compiled, shared, unreachable, "sccache")
