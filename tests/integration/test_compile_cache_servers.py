"""The fleet's shared compile cache (epbuild/build/compile_cache.py) on real servers bound to 127.0.0.1: Debian's
redis-server, and nginx's WebDAV module as the HTTP back-end (GET/PUT, the setup ccache's manual gives for HTTP
storage). The build steps reach them through BuildKit's network.host entitlement (the run's compose overlay).

What each compiled step did is read from the line it prints (`epbuild: compile cache: N compiled, M from the
shared cache, K unreachable`, ccache's own statistics log); what it should have done is known independently: the
objects its CMake built (ninja's `Building CXX object` lines), what the servers hold (redis-cli, nginx's folder),
and which source each fresh commit changed.

The rocSHMEM stand-in is the compiled stage used for C++ and HIP: four objects, its device source compiled by hipcc
for the cell's GPU arch, about 40 s a build. vLLM's Rust frontend goes through sccache (`epbuild: compile cache
(sccache): ...`, from sccache's own statistics). Each test makes fresh commits, so no engine's cache has them."""

from __future__ import annotations

import getpass
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import OFFLINE, ROOT, invoke
from registry import Registry, free_port

sys.path.insert(0, str(ROOT))
from bench.engines import private_engine  # noqa: E402
from bench.results import build_summary  # noqa: E402
from bench.shared_compile_cache import CELL, fresh_rocshmem_commits, redis_on_loopback  # noqa: E402
from bench.standin_work import StandInWork  # noqa: E402
from epbuild.build.compile_cache import StepStats  # noqa: E402
from epbuild.offline import matrix_variant  # noqa: E402

pytestmark = pytest.mark.docker

DEVICE_SOURCE = "rocshmem_device.cpp"


@pytest.fixture(scope="module")
def work() -> Iterator[Path]:
    (ROOT / "build").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="module")
def stage_cache(work: Path, docker_engine: None) -> Iterator[str]:
    (work / "registry").mkdir()
    registry = Registry(work / "registry")
    try:
        yield f"127.0.0.1:{registry.port}"
    finally:
        registry.stop()


@pytest.fixture(scope="module")
def redis(work: Path) -> Iterator[str]:
    (work / "redis").mkdir()
    with redis_on_loopback(work / "redis") as url:
        yield url


@pytest.fixture(scope="module")
def nginx(work: Path) -> Iterator[tuple[str, Path]]:
    """nginx serving a WebDAV folder on 127.0.0.1: ccache's HTTP storage GETs, PUTs and HEADs its entries there,
    sccache's WebDAV storage also PROPFINDs and MKCOLs."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(binary).exists(), "nginx is missing (ci/setup.sh installs nginx-light)"
    folder, store = work / "nginx", work / "nginx" / "store"
    (folder / "tmp").mkdir(parents=True)
    store.mkdir()
    port = free_port()
    # `user`: nginx's workers run as nobody under a root master, and could not write into this test's folder; as
    # any other user the master ignores the line.
    # sccache's WebDAV client checks the store with PROPFIND and makes folders with MKCOL: nginx's own dav module
    # has MKCOL, the dav-ext module (Debian's libnginx-mod-http-dav-ext) PROPFIND.
    dav_ext = Path("/usr/lib/nginx/modules/ngx_http_dav_ext_module.so")
    assert dav_ext.exists(), "nginx's dav-ext module is missing (ci/setup.sh installs libnginx-mod-http-dav-ext)"
    (folder / "nginx.conf").write_text(f"""
load_module {dav_ext};
user {getpass.getuser()};
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{}}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/tmp;
    proxy_temp_path {folder}/tmp;
    fastcgi_temp_path {folder}/tmp;
    uwsgi_temp_path {folder}/tmp;
    scgi_temp_path {folder}/tmp;
    server {{
        listen 127.0.0.1:{port};
        location /ccache/ {{
            alias {store}/;
            dav_methods PUT DELETE MKCOL;
            dav_ext_methods PROPFIND OPTIONS;
            create_full_put_path on;
            client_max_body_size 100m;
        }}
    }}
}}
""")
    proc = subprocess.Popen([binary, "-c", str(folder / "nginx.conf"), "-p", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(port)
        yield f"http://127.0.0.1:{port}/ccache", store
    finally:
        proc.terminate()
        proc.wait()


def _wait_for(port: int) -> None:
    for _ in range(100):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def _redis_keys(url: str) -> int:
    port = url.rsplit(":", 1)[1]
    return int(subprocess.run(["redis-cli", "-p", port, "dbsize"], capture_output=True, text=True,
                              check=True).stdout)


def _build(work: Path, name: str, repo: str, commit: str, registry: str, *extra: str,
           stage: bool = True) -> dict[str, object]:
    """`invoke build` of CELL (its rocshmem stage alone with `stage`) with rocSHMEM at `commit`."""
    matrix = work / name / "matrix.yaml"
    if not matrix.exists():
        matrix = matrix_variant(work / name, image_name=f"epbuild-offline/compile-cache-{name}",
                                options={"rocshmem": {"repo": repo, "commit": commit}})
        invoke("render", "--matrix", str(matrix), check=True)
    args = ["--matrix", str(matrix), "--cell", CELL, "--cache", f"{registry}/{name}", *extra]
    return build_summary(*args, *(("--stage", "rocshmem") if stage else ()))


def _rocshmem_step(summary: dict[str, object]) -> StepStats:
    found = [s for s in summary["compile_steps"] if s["stage"] == "rocshmem" and s["tool"] == "ccache"]  # type: ignore[union-attr]
    assert len(found) == 1, f"the rocshmem step did not run once in {summary['run_dir']}: {found}"
    return StepStats(**found[0])


def _objects_built(summary: dict[str, object]) -> list[str]:
    """The objects CMake built in the rocshmem step, from its own output (not ccache's)."""
    log = (Path(str(summary["run_dir"])) / "bake.log").read_text()
    step = re.search(r"^#(\d+) \[rocshmem \d+/\d+\] RUN ", log, re.M)
    assert step, "no rocshmem step in the bake log"
    return re.findall(rf"^#{step[1]} [\d.]+ \[\s*\d+%\] Building CXX object (\S+)", log, re.M)


def test_a_fresh_engine_takes_what_another_compiled_from_redis_device_objects_included(
        work: Path, stage_cache: str, redis: str) -> None:
    invoke("sources", "--matrix", OFFLINE, "--cell", CELL, check=True)
    repo, start, move = fresh_rocshmem_commits(work / "redis-commits")
    # Engine A, the shared one: `start` changed the device source, new to every cache.
    a = _rocshmem_step(_build(work, "engine-a", repo, start, stage_cache, "--compile-cache", redis))
    assert a.unreachable == 0 and a.compiled >= 1, a
    assert _redis_keys(redis) >= 4, "engine A wrote fewer results than rocSHMEM's four objects to Redis"
    # Engine B, fresh (its ccache mount empty): `move` changes the host source on top of `start`.
    (work / "b").mkdir()
    with private_engine(OFFLINE, work / "b", [CELL]):
        summary = _build(work, "engine-b", repo, move, stage_cache, "--compile-cache", redis)
    b, objects = _rocshmem_step(summary), _objects_built(summary)
    assert len(objects) == 4 and any(DEVICE_SOURCE in o for o in objects), objects
    # Only the moved host source compiles; everything else, the hipcc device object among it, comes from Redis
    # (B's own cache is empty, so nothing else could have answered).
    assert (b.compiled, b.shared, b.unreachable) == (1, len(objects) - 1, 0), b


def test_one_image_with_and_without_the_http_cache_and_a_dead_server_only_slows(
        work: Path, stage_cache: str, nginx: tuple[str, Path], offline_build: object) -> None:
    url, store = nginx
    invoke("sources", "--matrix", OFFLINE, "--cell", CELL, check=True)
    repo, start, move = fresh_rocshmem_commits(work / "http-commits")
    # The whole cell, cold for rocSHMEM and what builds on it, with the HTTP store.
    with_cache = _build(work, "http", repo, start, stage_cache, "--compile-cache", url, stage=False)
    step = _rocshmem_step(with_cache)
    assert step.unreachable == 0 and step.compiled >= 1, step
    assert len([p for p in store.rglob("*") if p.is_file()]) >= 4, "nginx holds none of the step's results"
    # The same cell without the cache: every step is the one just built (the secret is no part of a step's key,
    # and the network mode is the same), so BuildKit runs nothing and the image is the same.
    without = _build(work, "http", repo, start, stage_cache, stage=False)
    assert without["executed_run_steps"] == [], without["executed_run_steps"]
    # Each build's image as the engine held it right after that build (the tag moves to the second).
    digests = [_image_id(summary) for summary in (with_cache, without)]
    assert digests[0] == digests[1], digests
    # A dead server (nothing listens on the port): the step compiles locally, the image is built, the summary
    # says so.
    dead = f"redis://127.0.0.1:{free_port()}"
    summary = _build(work, "dead", repo, move, stage_cache, "--compile-cache", dead)
    step = _rocshmem_step(summary)
    assert step.unreachable >= 1 and step.compiled >= 1, step
    assert summary["ok"], summary
    table = (Path(str(summary["run_dir"])) / "summary.txt").read_text()
    assert "compile cache unreachable" in table, table
    for path in Path(str(summary["run_dir"])).rglob("*"):
        if path.is_file():
            assert dead not in path.read_text(errors="replace"), f"{path} holds the cache's URL"


def _image_id(summary: dict[str, object]) -> str:
    [cell] = [c for c in summary["cells"] if c["cell"] == CELL]  # type: ignore[union-attr]
    assert cell["ok"] and cell["image_id"], cell
    return str(cell["image_id"])


RUST_SOURCES = ("rust/src/pyo3/src/lib.rs", "rust/src/cmd/src/main.rs", "rust/src/pyo3/src/lib.rs",
                "rust/src/cmd/src/main.rs")
"""What each fresh vLLM commit changes: the library crate (the one result sccache can keep: rustc's rlib; linking
the vllm-rs binary and the tool parser's cdylib always runs), the binary, the library again, the binary again."""


def _fresh_rust_commits(folder: Path) -> tuple[str, list[str]]:
    work = StandInWork("vllm", folder)
    return work.url, work.appending_commits(
        RUST_SOURCES, lambda n: f'#[allow(dead_code)]\nconst EPBUILD_TEST_{n}: &str = "{time.time_ns()}";', "test")


def _rust_step(work: Path, name: str, repo: str, commit: str, registry: str, cache_url: str
               ) -> tuple[StepStats, dict[str, object]]:
    """The vLLM stage of CELL at `commit`, with the compile cache at `cache_url`; its Rust step's statistics."""
    matrix = matrix_variant(work / name, image_name=f"epbuild-offline/compile-cache-{name}",
                            options={"vllm": {"repo": repo, "commit": commit}})
    invoke("render", "--matrix", str(matrix), check=True)
    summary = build_summary("--matrix", str(matrix), "--cell", CELL, "--stage", "vllm", "--cache",
                            f"{registry}/{name}", "--compile-cache", cache_url)
    found = [s for s in summary["compile_steps"] if s["stage"] == "vllm" and s["tool"] == "sccache"]  # type: ignore[union-attr]
    assert len(found) == 1, f"the Rust step did not run once in {summary['run_dir']}: {found}"
    return StepStats(**found[0]), summary


def _redis_sccache_keys(url: str) -> int:
    port = url.rsplit(":", 1)[1]
    out = subprocess.run(["redis-cli", "-p", port, "--scan", "--pattern", "sccache*"], capture_output=True,
                         text=True, check=True).stdout
    return len(out.split())


def test_the_rust_frontend_takes_from_the_shared_store_what_another_build_compiled(
        work: Path, stage_cache: str, redis: str, nginx: tuple[str, Path]) -> None:
    invoke("sources", "--matrix", OFFLINE, "--cell", CELL, check=True)
    repo, (start, move, webdav, later) = _fresh_rust_commits(work / "rust-commits")
    # `start` changed the library crate: new to every cache, so the step compiles it and writes it to Redis.
    a, _ = _rust_step(work, "rust-a", repo, start, stage_cache, redis)
    assert a.compiled >= 1 and (a.shared, a.unreachable) == (0, 0), a
    held = _redis_sccache_keys(redis)
    assert held >= a.compiled, f"Redis holds {held} sccache entries for {a.compiled} compiles"
    # `move` changed only the binary, which sccache never caches: every result it can keep is the one `start`
    # compiled. With a store, sccache's server uses that store alone (compile_cache_lines: no local level), so
    # each of these hits was answered by Redis.
    b, _ = _rust_step(work, "rust-b", repo, move, stage_cache, redis)
    assert (b.compiled, b.shared, b.unreachable) == (0, a.compiled, 0), b
    assert _redis_sccache_keys(redis) == held
    # The HTTP back-end, WebDAV for sccache: `webdav` changed the library again, so it compiles and lands there,
    # under sccache's own prefix.
    url, store = nginx
    w, _ = _rust_step(work, "rust-webdav", repo, webdav, stage_cache, url)
    assert w.compiled >= 1 and (w.shared, w.unreachable) == (0, 0), w
    assert len([p for p in (store / "sccache").rglob("*") if p.is_file()]) >= w.compiled, "nginx holds no sccache entry"
    # A dead store: sccache's server refuses it, the step falls back to its local cache, the image stage is built
    # and the summary names the Rust step's compiles.
    dead = f"redis://127.0.0.1:{free_port()}"
    c, summary = _rust_step(work, "rust-dead", repo, later, stage_cache, dead)
    assert summary["ok"] and c.shared == 0 and c.unreachable >= 1, (c, summary)
    table = (Path(str(summary["run_dir"])) / "summary.txt").read_text()
    assert "compile cache unreachable" in table and "vllm" in table, table
    for path in Path(str(summary["run_dir"])).rglob("*"):
        if path.is_file():
            assert dead not in path.read_text(errors="replace"), f"{path} holds the cache's URL"
