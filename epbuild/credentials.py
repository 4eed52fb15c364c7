"""Registry credentials for one publish or pull: with EPBUILD_REGISTRY_USER/_PASSWORD set, docker runs with a
throw-away DOCKER_CONFIG for the whole command, so `docker login` never leaves `user:password` in the user's
(or the CI agent's) $DOCKER_CONFIG/config.json. The password reaches docker on standard input only; replay.sh
gets a line that reads it from the variable it names, so the replay logs in the same way."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from epbuild import timeouts
from epbuild.commands import Runner
from epbuild.errors import EpbuildError
from epbuild.render import RenderedCell
from epbuild.tags import published_name

USER_ENV, PASSWORD_ENV = "EPBUILD_REGISTRY_USER", "EPBUILD_REGISTRY_PASSWORD"


def docker_config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def _throwaway_config(registry_host: str, into: Path) -> None:
    """The user's settings (proxies, other registries' helpers, CLI plugins) without a credential store that
    would keep our login for `registry_host` after the command."""
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
    folder = Path(tempfile.mkdtemp(prefix="epbuild-docker-config-"))
    previous = os.environ.get("DOCKER_CONFIG")
    try:
        _throwaway_config(registry_host, folder)
        os.environ["DOCKER_CONFIG"] = str(folder)
        runner.run(["docker", "login", registry_host, "--username", user, "--password-stdin"], stdin=password,
                   capture=True, record=False, timeout=timeouts.REGISTRY.seconds(),
                   timeout_setting=timeouts.REGISTRY.env)
        yield
    finally:
        if previous is None:
            os.environ.pop("DOCKER_CONFIG", None)
        else:
            os.environ["DOCKER_CONFIG"] = previous
        shutil.rmtree(folder, ignore_errors=True)


def cell_registry_login(rc: RenderedCell, registry: str | None,
                        runner: Runner) -> contextlib.AbstractContextManager[None]:
    """registry_login for the registry the cell is published to (`registry` overrides the matrix's)."""
    return registry_login(published_name(rc, registry).split("/", 1)[0], runner)
