"""Registry credentials for one publish or pull: with EPBUILD_REGISTRY_USER/_PASSWORD set, docker runs with a
throw-away DOCKER_CONFIG for the whole command, so `docker login` never leaves `user:password` in the user's
(or the CI agent's) $DOCKER_CONFIG/config.json. The password reaches docker on standard input only; replay.sh
gets a line that reads it from the variable it names, so the replay logs in the same way.

The credentials are never written to disk, not even to the throw-away folder: a command killed with SIGKILL runs
no clean-up, and a config.json holding `user:password` in /tmp would outlive it. Instead the folder's config
names, for the registry, a credential helper of ours (docker-credential-epbuild-env, written beside it) that
answers docker's `get` from the two variables of the process asking, and drops what `docker login` asks it to
`store`; `docker login` still checks the password with the registry first. What a kill leaves is a config and
that script, no secret; the next login removes the folders whose owning process is gone."""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from epbuild.util import timeouts
from epbuild.util.commands import Runner
from epbuild.util.errors import EpbuildError

log = logging.getLogger(__name__)

USER_ENV, PASSWORD_ENV = "EPBUILD_REGISTRY_USER", "EPBUILD_REGISTRY_PASSWORD"


def docker_config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


HELPER = "epbuild-env"
FOLDER_PREFIX = "epbuild-docker-config-"
# docker's credential-helper protocol (docker/docker-credential-helpers): the action is the argument, the server
# on standard input; `get` prints {ServerURL, Username, Secret}, anything it cannot answer exits 1 saying so.
HELPER_SCRIPT = f"""#!{sys.executable}
import json, os, sys
action = sys.argv[1] if len(sys.argv) > 1 else ""
server = sys.stdin.read().strip()
if action == "get" and os.environ.get("{USER_ENV}") and os.environ.get("{PASSWORD_ENV}"):
    print(json.dumps({{"ServerURL": server, "Username": os.environ["{USER_ENV}"],
                      "Secret": os.environ["{PASSWORD_ENV}"]}}))
elif action == "list":
    print("{{}}")
elif action not in ("store", "erase"):  # a login is never kept: the variables are the only store
    print("credentials not found in native keychain")
    sys.exit(1)
"""


def _owner_gone(folder: Path) -> bool:
    """Whether the process that made `folder` (its pid and start time are in the name) no longer runs."""
    owner = folder.name[len(FOLDER_PREFIX):].split("-")[0]
    pid, _, started = owner.partition(".")
    return not (pid.isdigit() and started.isdigit() and _start_time(int(pid)) == started)


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22): a pid reused by a later
    process has another."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def remove_stale_folders() -> list[Path]:
    """Removes the throw-away folders of commands that were killed (their owner is gone); returns them."""
    stale = [f for f in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*") if f.is_dir() and _owner_gone(f)]
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    return stale


def _throwaway_config(registry_host: str, into: Path) -> None:
    """The user's settings (proxies, other registries' helpers, CLI plugins), with our helper, which keeps
    nothing, for `registry_host` instead of any credential store that would keep our login after the command."""
    source = docker_config_dir()
    config: dict[str, object] = {}
    if (source / "config.json").is_file():
        config = json.loads((source / "config.json").read_text())
    config.pop("credsStore", None)
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        helpers.pop(registry_host, None)
    auths = config.get("auths")
    if isinstance(auths, dict):
        auths.pop(registry_host, None)
    config["credHelpers"] = {**(helpers if isinstance(helpers, dict) else {}), registry_host: HELPER}
    helper = into / "bin" / f"docker-credential-{HELPER}"
    helper.parent.mkdir()
    helper.write_text(HELPER_SCRIPT)
    helper.chmod(0o755)
    (into / "config.json").write_text(json.dumps(config, indent=1))
    (into / "config.json").chmod(0o600)
    if (source / "cli-plugins").is_dir():
        (into / "cli-plugins").symlink_to(source / "cli-plugins")


def login_line(registry_host: str) -> str:
    """The replay's equivalent of our login: its own throw-away DOCKER_CONFIG, removed when the replay ends, and
    the secrets read from the environment variables, never written into the script."""
    # Only the variable's name may appear: replay.sh runs with `set -x`, which prints every expanded word.
    secret = f'{{ printenv {PASSWORD_ENV} | grep . || {{ echo "set {PASSWORD_ENV}" >&2; exit 1; }}; }}'
    return (f'export DOCKER_CONFIG="$(mktemp -d)"; trap \'rm -rf "$DOCKER_CONFIG"\' EXIT; '
            f'{secret} | docker login {shlex.quote(registry_host)} '
            f'--username "${{{USER_ENV}:?set {USER_ENV}}}" --password-stdin')


@contextmanager
def registry_login(registry_host: str, runner: Runner) -> Iterator[None]:
    """Within the block, docker uses a throw-away DOCKER_CONFIG logged in to `registry_host` when both variables
    are set (and is left alone otherwise: docker's own login is used). The folder goes when the block ends."""
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if bool(user) != bool(password):
        given, missing = (USER_ENV, PASSWORD_ENV) if user else (PASSWORD_ENV, USER_ENV)
        raise EpbuildError(f"{given} is set but {missing} is not (or is empty): set both to log in to "
                           f"{registry_host}, or neither to use docker's own login")
    if not (user and password):
        yield
        return
    runner.record(login_line(registry_host))
    if runner.dry_run:
        yield
        return
    for stale in remove_stale_folders():
        log.info("removed %s, left by a killed command", stale)
    folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}.{_start_time(os.getpid())}-"))
    previous = {name: os.environ.get(name) for name in ("DOCKER_CONFIG", "PATH")}
    try:
        _throwaway_config(registry_host, folder)
        os.environ["DOCKER_CONFIG"] = str(folder)
        os.environ["PATH"] = os.pathsep.join(filter(None, [str(folder / "bin"), previous["PATH"]]))
        runner.run(["docker", "login", registry_host, "--username", user, "--password-stdin"], stdin=password,
                   capture=True, record=False, timeout=timeouts.REGISTRY.seconds(),
                   timeout_setting=timeouts.REGISTRY.env)
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(folder, ignore_errors=True)

