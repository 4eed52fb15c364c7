"""Rust crates, hermetic: the crates a component's Cargo.lock names are vendored on the host (`cargo vendor
--locked`, once per pin, verified file by file on reuse), handed to the stage as the named context
`crates-<component>` with a cargo configuration pointing at them, and the stage builds `--offline --locked`.

Why: a RUN step must never reach the network (crates.io included); the reference's rust-build stage
(Dockerfile.rocm@00305ee5) fetches its crates while building, which makes the build unrepeatable and fails
without network.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

from epbuild.util import atomicfs
from epbuild.util.commands import CommandFailed, Runner, failure_reason
from epbuild.util.errors import EpbuildError

log = logging.getLogger(__name__)

CRATES_DIR = "build/crates"
IN_STAGE = "/epbuild/crates"
"""Where the stage mounts the context; the configuration names the vendored crates there."""
CONFIG_FILE = "config.toml"
VENDOR_DIR = "vendor"
RECORD_FILE = ".epbuild-crates.json"
_DIRECTORY = re.compile(r'^directory = ".*"$', re.MULTILINE)


class CargoVendorError(EpbuildError):
    pass


def context_name(component: str) -> str:
    return f"crates-{component}"


def crates_dir(component: str, commit: str) -> str:
    """Where the crates of `component` at `commit` are vendored, relative to the folder builds run from."""
    return f"{CRATES_DIR}/{component}-{commit}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): _sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != RECORD_FILE}


def verified(dest: Path, lock_sha256: str) -> bool:
    """Whether `dest` holds the crates of exactly this Cargo.lock, every file as vendored."""
    try:
        record = json.loads((dest / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return False
    return record.get("cargo_lock_sha256") == lock_sha256 and record.get("files") == _files(dest)


def stage_config(vendor_output: str) -> str:
    """`cargo vendor` prints the configuration that uses what it vendored (crates.io and any git source replaced
    by one directory source); the stage reads the crates at IN_STAGE, not where the host put them."""
    body = _DIRECTORY.sub(f'directory = "{IN_STAGE}/{VENDOR_DIR}"', vendor_output.strip())
    return ("# Written by epbuild (cargo vendor --locked on the host); the stage builds --offline --locked.\n"
            "[net]\noffline = true\n\n" + (body + "\n" if body else ""))


def ensure(root: Path, component: str, commit: str, workspace: Path, runner: Runner) -> Path:
    """The vendored crates of the Cargo workspace `workspace` (a folder of the exported source at the pin):
    reused while its record matches the pin's Cargo.lock and every file, else vendored again into a temporary
    folder and swapped into place."""
    where = f"{component} at {commit[:12]}"
    lock = workspace / "Cargo.lock"
    if not lock.is_file():
        raise CargoVendorError(f"{where}: {lock} is missing; its crates can only be vendored --locked")
    lock_sha256 = _sha256(lock)
    dest = root / crates_dir(component, commit)
    if verified(dest, lock_sha256):
        return dest
    if dest.exists():
        log.info("%s: %s does not match its record; vendoring again", where, dest)
    with atomicfs.filled_dir(dest, f".{dest.name}.") as tmp:
        # cargo runs from the temporary folder, not the tree: a rustup shim would otherwise read the pin's
        # rust-toolchain.toml and try to download that toolchain just to vendor.
        argv = ["cargo", "vendor", "--locked", "--versioned-dirs", "--manifest-path", str(workspace / "Cargo.toml"),
                str(tmp / VENDOR_DIR)]
        try:
            done = runner.run(argv, cwd=tmp, capture=True)
        except CommandFailed as exc:
            raise CargoVendorError(f"{where}: cargo vendor --locked failed: {failure_reason(exc.output)}") from None
        (tmp / VENDOR_DIR).mkdir(exist_ok=True)  # no dependency to vendor: cargo leaves no folder
        (tmp / CONFIG_FILE).write_text(stage_config(done.stdout))
        record = {"cargo_lock_sha256": lock_sha256, "files": _files(tmp)}
        (tmp / RECORD_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    log.info("%s: %d vendored crates in %s", where, sum(1 for p in (dest / VENDOR_DIR).iterdir() if p.is_dir()),
             dest)
    return dest
