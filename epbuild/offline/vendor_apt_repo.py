"""The offline example's vendor apt repository: stand-in vendor packages built with dpkg-deb, indexed, signed with
the throwaway key, and served over HTTP on 127.0.0.1 while a build fetches from it.

The layout follows the real repositories vLLM's docker/Dockerfile.rocm (00305ee5, stage mori_base) names:
  broadcom/ethernet-nic-debian-public  jammy main: bnxt-rocelib 235.2.86.0 (libbnxt_re, exporting bnxt_re_dv_*,
      installed under /usr/local/lib/x86_64-linux-gnu like Broadcom's)
  amdainic/pensando/ubuntu/1.117.3-hydra  jammy main: libionic1 (libionic, exporting ionic_dv_*, with its libibverbs
      plugin and driver file: AMD's package is the whole ionic verbs provider), libionic-dev (header and link,
      depending on libionic1, which apt pulls in for the reference's `apt-get install libionic-dev ionic-common`)
      and ionic-common
Both are signed by one key (epbuild/offline/throwaway_key.py). What each stand-in models, and what is not known of
the real packages, is in examples/offline/fixtures/README.md ("Vendor packages").
"""

from __future__ import annotations

import contextlib
import errno
import functools
import gzip
import hashlib
import http.server
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from epbuild.offline import throwaway_key
from epbuild.offline.settings import OFFLINE_BASE_IMAGE, REPO_ROOT, OfflineError, _locked, _run

log = logging.getLogger(__name__)

REPO_DIR = REPO_ROOT / "build" / "offline" / "vendor-repo"
PORT = 8931
"""The example's matrix names http://127.0.0.1:8931/... (examples/offline/matrix.yaml)."""
STAMP = "epbuild-vendor-repo.json"
GENERATOR_VERSION = "3"


@dataclass(frozen=True)
class StandIn:
    name: str
    version: str
    arch: str
    depends: str
    description: str
    files: dict[str, str]
    """path in the package -> C source of a shared library (SONAME = its file name), or `-> target` for a link,
    or plain text."""


BNXT_SOURCE = """
/* Stand-in for Broadcom's libbnxt_re (bnxt-rocelib): the direct-verbs calls rdma-core's bnxt_re lacks. */
int bnxt_re_dv_create_cq(void *context, void *attr) { (void)context; (void)attr; return 0; }
int bnxt_re_dv_query_version(void) { return 2352860; }
"""
IONIC_SOURCE = """
/* Stand-in for AMD's libionic (ainic): the direct-verbs calls MoRI and rocSHMEM load. */
int ionic_dv_ctx_get_udma_count(void *context) { (void)context; return 2; }
int ionic_dv_query_version(void) { return 11173; }
"""
IONIC_HEADER = """/* Stand-in for AMD's ionic_dv.h (libionic-dev): the direct-verbs calls libionic exports. */
#ifndef IONIC_DV_H
#define IONIC_DV_H
int ionic_dv_ctx_get_udma_count(void *context);
int ionic_dv_query_version(void);
#endif
"""
IONIC_COMMON_NOTE = "Stand-in of AMD's ionic-common: what the real package holds is not known here.\n"
IONIC_PABI = "65"
"""The libibverbs private ABI the stand-in provider is built for: rdma-core 65.0's IBVERBS_PABI_VERSION
(CMakeLists.txt), the rdma-core the offline example builds. libibverbs loads only lib<p>-rdmav<its PABI>.so."""
BNXT_DIR = "usr/local/lib/x86_64-linux-gnu"
IONIC_DIR = "usr/lib/x86_64-linux-gnu"

REPOSITORIES: dict[str, tuple[str, list[StandIn]]] = {
    "broadcom/ethernet-nic-debian-public": ("jammy", [
        StandIn("bnxt-rocelib", "235.2.86.0", "amd64", "libc6, libibverbs1",
                "Broadcom RoCE userspace library (epbuild offline stand-in)",
                {f"{BNXT_DIR}/libbnxt_re-rdmav34.so": BNXT_SOURCE,
                 f"{BNXT_DIR}/libbnxt_re.so": "-> libbnxt_re-rdmav34.so"}),
    ]),
    "amdainic/pensando/ubuntu/1.117.3-hydra": ("jammy", [
        StandIn("ionic-common", "1.117.3-hydra", "all", "",
                "AMD Pensando ionic common files (epbuild offline stand-in)",
                {"usr/share/doc/ionic-common/README.epbuild": IONIC_COMMON_NOTE}),
        StandIn("libionic1", "1.117.3-hydra", "amd64", "libc6, libibverbs1",
                "AMD Pensando ionic verbs provider (epbuild offline stand-in)",
                {f"{IONIC_DIR}/libionic.so.1.1.117.3": IONIC_SOURCE,
                 f"{IONIC_DIR}/libionic.so.1": "-> libionic.so.1.1.117.3",
                 # rdma-core's layout of a shared provider (buildlib/rdma_functions.cmake, rdma_shared_provider):
                 # the plugin libibverbs loads is a relative link to the versioned library.
                 f"{IONIC_DIR}/libibverbs/libionic-rdmav{IONIC_PABI}.so": "-> ../libionic.so.1.1.117.3",
                 "etc/libibverbs.d/ionic.driver": "driver ionic\n"}),
        StandIn("libionic-dev", "1.117.3-hydra", "amd64",
                "libionic1 (= 1.117.3-hydra), ionic-common (= 1.117.3-hydra)",
                "AMD Pensando ionic verbs provider, development files (epbuild offline stand-in)",
                {f"{IONIC_DIR}/libionic.so": "-> libionic.so.1",
                 "usr/include/infiniband/ionic_dv.h": IONIC_HEADER}),
    ]),
}


def _digest() -> str:
    spec = {path: [suite, [p.__dict__ for p in pkgs]] for path, (suite, pkgs) in REPOSITORIES.items()}
    return hashlib.sha256(json.dumps([GENERATOR_VERSION, throwaway_key.fingerprint(), spec],
                                     sort_keys=True).encode()).hexdigest()


def _soname(name: str) -> str:
    """libionic.so.1.1.117.3 -> libionic.so.1 (the name ldconfig links to the highest version it finds);
    an unversioned name (libbnxt_re-rdmav34.so, like rdma-core's provider plugins) is its own soname."""
    match = re.match(r"^(.*\.so\.[0-9]+)(\.|$)", name)
    return match.group(1) if match else name


def _build_script(pkgs: list[StandIn]) -> str:
    """Shell run in the example's base image: compile each library, lay out each package, dpkg-deb --build."""
    lines = ["set -eu", "cd /work"]
    for pkg in pkgs:
        root = f"/work/{pkg.name}"
        lines.append(f"mkdir -p {root}/DEBIAN")
        for path, content in pkg.files.items():
            folder, name = os.path.split(path)
            lines.append(f"mkdir -p {root}/{folder}")
            if content.startswith("-> "):
                lines.append(f"ln -s {content[3:]} {root}/{path}")
            elif path.endswith(".so") or ".so." in name:
                lines.append(f"gcc -shared -fPIC -O2 -Wl,-soname,{_soname(name)} -o {root}/{path} /work/src/{name}.c")
            else:
                lines.append(f"cp /work/src/{name} {root}/{path}")
        lines.append(f"dpkg-deb --root-owner-group --build {root} /work/out/{pkg.name}_{pkg.version}_{pkg.arch}.deb")
    return "\n".join(lines) + "\n"


def _control(pkg: StandIn) -> str:
    depends = f"Depends: {pkg.depends}\n" if pkg.depends else ""
    return (f"Package: {pkg.name}\nVersion: {pkg.version}\nArchitecture: {pkg.arch}\n"
            f"Maintainer: epbuild <vendor@epbuild.invalid>\n{depends}Section: libs\nPriority: optional\n"
            f"Description: {pkg.description}\n")


def _build_debs(pkgs: list[StandIn], out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="epbuild-vendor-debs-") as tmp:
        work = Path(tmp)
        (work / "src").mkdir()
        (work / "out").mkdir()
        for pkg in pkgs:
            (work / pkg.name / "DEBIAN").mkdir(parents=True)
            (work / pkg.name / "DEBIAN" / "control").write_text(_control(pkg))
            # Files under /etc are conffiles, as debhelper marks them in a real package.
            conffiles = [f"/{path}" for path in pkg.files if path.startswith("etc/")]
            if conffiles:
                (work / pkg.name / "DEBIAN" / "conffiles").write_text("".join(f"{c}\n" for c in conffiles))
            for path, content in pkg.files.items():
                if not content.startswith("-> "):
                    (work / "src" / (os.path.basename(path) + (".c" if ".so" in path else ""))).write_text(content)
        (work / "build.sh").write_text(_build_script(pkgs))
        _run(["docker", "run", "--rm", "--network", "none", "-e", "SOURCE_DATE_EPOCH=1735689600",
              "-v", f"{work}:/work", "--entrypoint", "sh", OFFLINE_BASE_IMAGE, "/work/build.sh"])
        for deb in sorted((work / "out").iterdir()):
            shutil.copyfile(deb, out / deb.name)


def _index_entry(deb: Path, rel: str) -> str:
    control = subprocess.run(["dpkg-deb", "--field", str(deb)], capture_output=True, text=True, check=True).stdout
    data = deb.read_bytes()
    return (control.rstrip("\n") + f"\nFilename: {rel}\nSize: {len(data)}\n"
            f"SHA256: {hashlib.sha256(data).hexdigest()}\n")


def _release(suite: str, files: dict[str, bytes]) -> str:
    sums = "".join(f" {hashlib.sha256(d).hexdigest()} {len(d)} {p}\n" for p, d in sorted(files.items()))
    return (f"Origin: epbuild offline example\nLabel: stand-in vendor repository\nSuite: {suite}\nCodename: {suite}\n"
            f"Date: Wed, 01 Jan 2025 00:00:00 UTC\nArchitectures: amd64 all\nComponents: main\nSHA256:\n{sums}")


def _sign(folder: Path, home: Path) -> None:
    gpg = ["gpg", "--homedir", str(home), "--batch", "--yes", "--no-tty", "--quiet", "--local-user",
           throwaway_key.fingerprint()]
    _run([*gpg, "--clearsign", "--output", str(folder / "InRelease"), str(folder / "Release")])
    _run([*gpg, "--detach-sign", "--armor", "--output", str(folder / "Release.gpg"), str(folder / "Release")])


def _make(dest: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="epbuild-throwaway-gnupg-") as home:
        os.chmod(home, 0o700)
        key = Path(home) / "secret.gpg"
        key.write_bytes(throwaway_key.secret_key())
        _run(["gpg", "--homedir", home, "--batch", "--quiet", "--import", str(key)])
        _run(["gpg", "--homedir", home, "--batch", "--yes", "--armor", "--output", str(dest / "key.asc"),
              "--export", throwaway_key.fingerprint()])
        for path, (suite, pkgs) in REPOSITORIES.items():
            root = dest / path
            pool = root / "pool" / "main"
            pool.mkdir(parents=True)
            _build_debs(pkgs, pool)
            entries = [_index_entry(deb, f"pool/main/{deb.name}") for deb in sorted(pool.glob("*.deb"))]
            packages = "\n".join(entries).encode()
            dists = root / "dists" / suite
            (dists / "main" / "binary-amd64").mkdir(parents=True)
            files = {"main/binary-amd64/Packages": packages,
                     "main/binary-amd64/Packages.gz": gzip.compress(packages, mtime=0)}
            for rel, data in files.items():
                (dists / rel).write_bytes(data)
            (dists / "Release").write_text(_release(suite, files))
            _sign(dists, Path(home))
        # Signing started a gpg-agent for this throwaway home; it must not outlive it.
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], capture_output=True, check=False)


def ensure_vendor_repo(dest: Path = REPO_DIR) -> Path:
    """Makes the signed stand-in repository under `dest` unless its stamp says it is up to date."""
    digest = _digest()
    with _locked(dest.parent):
        stamp = dest / STAMP
        if stamp.is_file() and json.loads(stamp.read_text()).get("digest") == digest:
            log.info("vendor repository %s up to date", dest)
            return dest
        tmp = Path(tempfile.mkdtemp(prefix=".vendor-repo-", dir=dest.parent))
        try:
            _make(tmp)
            (tmp / STAMP).write_text(json.dumps({"digest": digest, "fingerprint": throwaway_key.fingerprint()}) + "\n")
            if dest.exists():
                shutil.rmtree(dest)
            tmp.rename(dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    return dest


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        log.debug("vendor repository: " + format, *args)


PORT_WAIT_SECONDS = 600.0
"""How long a run waits for the port while another run of the example serves it (a build holds it only while it
fetches its inputs, seconds to minutes)."""


def _bind(port: int, handler: Any, wait: float) -> http.server.ThreadingHTTPServer:
    """The server on 127.0.0.1:`port`, waiting while another run holds the port. Never the other run's server:
    it stops when that run has fetched, which may be in the middle of this run's fetch."""
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                raise OfflineError(f"cannot serve the example's vendor repository on 127.0.0.1:{port}: "
                                   f"{exc.strerror}" + (f" (waited {wait:g} s for it to be free)"
                                                        if exc.errno == errno.EADDRINUSE else "")) from None
            if not told:
                log.info("127.0.0.1:%d is in use (another run of the example fetching?): waiting up to %g s", port, wait)
                told = True
            time.sleep(0.5)


@contextlib.contextmanager
def serve(folder: Path = REPO_DIR, port: int = PORT, wait: float = PORT_WAIT_SECONDS) -> Iterator[str]:
    """Serves `folder` on 127.0.0.1:`port` (0: any free port) for the duration; yields the base URL."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = _bind(port, handler, wait)
    thread = threading.Thread(target=server.serve_forever, name="vendor-repo", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
