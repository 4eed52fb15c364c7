"""Copies a manifest from one reference to a tag inside a registry, through the Docker Registry HTTP API v2: the
manifest's own bytes are read from `repository@digest` (with its media type) and written, unchanged, under the
tag, so the tag names that very digest. (`docker buildx imagetools create` would not: buildx 0.13 wraps a lone
image manifest in a new index, of another digest; pushing a local image would publish the local bytes.)

It logs in with the credentials docker itself uses: the `auths` entry `docker login` wrote in
$DOCKER_CONFIG/config.json (publish's throw-away config, see epbuild/registry/credentials.py) or the credential helper
the config names, answering the registry's Basic or Bearer (token service) challenge. Loopback registries and
those the engine was told are insecure are spoken to over plain HTTP, as docker does; others over HTTPS.

Run as `python3 -m epbuild.registry.api SOURCE@DIGEST TAG_REF` (what replay.sh records)."""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import json
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from typing import BinaryIO

from epbuild.registry.credentials import docker_config_dir
from epbuild.registry.reads import RegistryAbsent, RegistryUnauthorised, RegistryUnreachable, RegistryUnreadable
from epbuild.util import timeouts
from epbuild.util.commands import query
from epbuild.util.errors import EpbuildError

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
DOCKER_HUB, DOCKER_HUB_API, DOCKER_HUB_AUTH_KEY = "docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"


@dataclass(frozen=True)
class Reference:
    host: str
    repository: str
    reference: str
    """A tag or a digest."""

    @classmethod
    def parse(cls, ref: str) -> Reference:
        """`host[:port]/path[:tag|@digest]`; the host part is required (epbuild always names its registry)."""
        host, _, rest = ref.partition("/")
        if not rest or not ("." in host or ":" in host or host == "localhost"):
            raise ValueError(f"{ref!r} names no registry host")
        if "@" in rest:
            repository, _, reference = rest.partition("@")
        else:
            repository, _, reference = rest.rpartition(":") if ":" in rest else (rest, "", "latest")
        return cls(host, repository, reference)


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0].strip("[]") if host.count(":") <= 1 or host.startswith("[") else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _insecure_in_engine(host: str) -> bool:
    """Whether the engine was configured with `host` as an insecure registry (daemon.json insecure-registries)."""
    proc = query(["docker", "info", "--format", "{{json .RegistryConfig.IndexConfigs}}"],
                 timeout=timeouts.REGISTRY.seconds(), setting=timeouts.REGISTRY.env)
    if proc.returncode != 0:
        return False
    configs = json.loads(proc.stdout or "{}") or {}
    return configs.get(host, {}).get("Secure") is False


@functools.lru_cache(maxsize=None)
def base_url(host: str) -> str:
    if host == DOCKER_HUB:
        return f"https://{DOCKER_HUB_API}"
    scheme = "http" if _is_loopback(host) or _insecure_in_engine(host) else "https"
    return f"{scheme}://{host}"


def stored_login(host: str) -> tuple[str, str] | None:
    """(user, secret) for `host` from docker's config: its credential helper, or the entry `docker login` wrote."""
    path = docker_config_dir() / "config.json"
    config = json.loads(path.read_text()) if path.is_file() else {}
    keys = [DOCKER_HUB_AUTH_KEY] if host == DOCKER_HUB else [host, f"https://{host}", f"http://{host}"]
    helper = next((config.get("credHelpers", {}).get(k) for k in keys if k in config.get("credHelpers", {})),
                  config.get("credsStore"))
    if helper:
        program = f"docker-credential-{helper}"
        try:
            proc = subprocess.run([program, "get"], input=keys[0], capture_output=True, text=True,
                                  timeout=timeouts.REGISTRY.seconds())
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RegistryUnauthorised(f"docker could not get credentials for {host}: {program}: {exc}; fix the "
                                       f"credential helper in {path}") from None
        if proc.returncode == 0:  # else (no entry for this host) the registry is asked without a login
            found = json.loads(proc.stdout)
            return str(found["Username"]), str(found["Secret"])
    for key in keys:
        entry = config.get("auths", {}).get(key) or {}
        if entry.get("auth"):
            user, _, secret = base64.b64decode(entry["auth"]).decode().partition(":")
            return user, secret
    return None


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="...",service="...",scope="..."` -> ("bearer", {realm, service, scope})."""
    scheme, _, params = header.strip().partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', params))


def reason_of(body: bytes, status: int) -> str:
    """The registry's own message (its JSON `errors`), else the HTTP status."""
    try:
        errors = json.loads(body)["errors"]
        return "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors)
    except (ValueError, KeyError, TypeError):
        return f"HTTP {status}"


@dataclass
class _Response:
    status: int
    headers: Message
    body: bytes


@dataclass
class Session:
    """Requests to one repository of one registry, answering its auth challenge once and reusing the answer."""

    host: str
    repository: str
    login: tuple[str, str] | None = None
    _authorization: str | None = field(default=None, repr=False)

    def _send(self, method: str, url: str, body: bytes | BinaryIO | None, headers: dict[str, str]) -> _Response:
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeouts.REGISTRY.seconds()) as answer:
                return _Response(answer.status, answer.headers, answer.read())
        except urllib.error.HTTPError as exc:
            return _Response(exc.code, exc.headers, exc.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RegistryUnreachable(f"cannot reach the registry {self.host} ({url}): {reason}") from None

    def _basic(self) -> str:
        if self.login is None:
            raise RegistryUnauthorised(f"the registry {self.host} asks for a login and docker has none for it; log "
                                       "in (docker login, or EPBUILD_REGISTRY_USER/_PASSWORD)")
        return "Basic " + base64.b64encode(f"{self.login[0]}:{self.login[1]}".encode()).decode()

    def _authorize(self, challenge: str) -> None:
        scheme, params = _challenge(challenge)
        if scheme == "basic":
            self._authorization = self._basic()
            return
        if scheme != "bearer" or "realm" not in params:
            raise RegistryUnauthorised(f"the registry {self.host} asks for an unknown login scheme: {challenge}")
        query_string = urllib.parse.urlencode(
            {"service": params.get("service", ""), "scope": f"repository:{self.repository}:pull,push"})
        headers = {"Authorization": self._basic()} if self.login else {}
        answer = self._send("GET", f"{params['realm']}?{query_string}", None, headers)
        if answer.status != 200:
            raise RegistryUnauthorised(f"the token service of {self.host} refused us: "
                                       f"{reason_of(answer.body, answer.status)}")
        token = json.loads(answer.body)
        self._authorization = "Bearer " + str(token.get("token") or token["access_token"])

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> _Response:
        """`path` under /v2/<repository>/."""
        return self.request_url(method, f"{base_url(self.host)}/v2/{self.repository}/{path}", body, headers)

    def request_url(self, method: str, url: str, body: bytes | BinaryIO | None = None,
                    headers: dict[str, str] | None = None) -> _Response:
        """A request, with the login the registry asked for (a readable body is sent once: ask for something
        small first, so the login is known by then)."""
        path = url.split("/v2/", 1)[-1]
        for _ in range(2):
            sent = dict(headers or {})
            if self._authorization:
                sent["Authorization"] = self._authorization
            answer = self._send(method, url, body, sent)
            if answer.status != 401 or self._authorization:
                break
            self._authorize(answer.headers.get("WWW-Authenticate", "Basic"))
        if answer.status in (401, 403):
            raise RegistryUnauthorised(f"the registry refused {method} {self.host}/v2/{path.split('?')[0]} "
                                       f"({reason_of(answer.body, answer.status)}); log in with an account that may "
                                       "write it (docker login, or EPBUILD_REGISTRY_USER/_PASSWORD)")
        return answer


def copy_manifest(source: str, tag: str) -> str:
    """Writes the manifest `source` (`host/repository@digest`) under `tag` (`host/repository:tag`, the same
    repository) byte for byte, and returns the digest the registry gives the tag (always `source`'s)."""
    src, dst = Reference.parse(source), Reference.parse(tag)
    if (src.host, src.repository) != (dst.host, dst.repository) or not src.reference.startswith("sha256:"):
        raise ValueError(f"copy_manifest copies repository@sha256:... to a tag of the same repository, not "
                         f"{source} -> {tag}")
    session = Session(src.host, src.repository, stored_login(src.host))
    got = session.request("GET", f"manifests/{src.reference}", headers={"Accept": ", ".join(MANIFEST_TYPES)})
    if got.status == 404:
        raise RegistryAbsent(f"the registry has no {source} ({reason_of(got.body, got.status)}); nothing was moved")
    if got.status != 200:
        raise RegistryUnreadable(f"cannot read {source} from its registry: {reason_of(got.body, got.status)}")
    if "sha256:" + hashlib.sha256(got.body).hexdigest() != src.reference:
        raise RegistryUnreadable(f"the registry served {source} with bytes of another digest; nothing was moved")
    media_type = got.headers.get("Content-Type") or json.loads(got.body).get("mediaType", "")
    put = session.request("PUT", f"manifests/{dst.reference}", got.body, {"Content-Type": media_type})
    if put.status not in (200, 201):
        raise RegistryUnreadable(f"the registry did not take {tag}: {reason_of(put.body, put.status)}")
    written = put.headers.get("Docker-Content-Digest") or src.reference
    if written != src.reference:
        raise RegistryUnreadable(f"the registry stored {tag} as {written}, not {src.reference}")
    return written


def has_manifest(ref: str) -> bool:
    """Whether the registry holds a manifest under `ref` (`host/repository:tag`): a HEAD request, no body read.
    A BuildKit cache export writes the manifest last, after every blob it names, so a ref that is there is whole."""
    where = Reference.parse(ref)
    session = Session(where.host, where.repository, stored_login(where.host))
    answer = session.request("HEAD", f"manifests/{where.reference}", headers={"Accept": ", ".join(MANIFEST_TYPES)})
    if answer.status == 404:
        return False
    if answer.status != 200:
        raise RegistryUnreadable(f"cannot ask the registry {where.host} for {ref}: HTTP {answer.status}")
    return True


def replay_line(source: str, tag: str) -> str:
    """The command replay.sh records for a copy (it runs from the project root, so `epbuild` imports)."""
    from epbuild.util.commands import shell_line

    return shell_line(["python3", "-m", "epbuild.registry.api", source, tag])


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python3 -m epbuild.registry.api REPOSITORY@DIGEST REPOSITORY:TAG", file=sys.stderr)
        return 2
    try:
        print(copy_manifest(argv[0], argv[1]))
    except (EpbuildError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
