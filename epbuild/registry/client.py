"""The Docker Registry HTTP API v2 client: every request epbuild makes of a registry (reads in
epbuild/registry/reads.py, the manifest copy in epbuild/registry/api.py, pushes in epbuild/registry/push.py) goes
through a Session here; no read parses the text of `docker buildx imagetools`.

It logs in with the credentials docker itself uses: the `auths` entry `docker login` wrote in
$DOCKER_CONFIG/config.json (publish's throw-away config, which hands EPBUILD_REGISTRY_USER/_PASSWORD to docker
through a credential helper, see epbuild/registry/credentials.py) or the credential helper the config names,
answering the registry's `WWW-Authenticate` challenge as the distribution spec describes: Basic, or Bearer from
the realm's token service (anonymous without a login, as Docker Hub and ghcr.io allow readers). A read session
asks the token service for `pull` only; a session that writes asks for `pull,push`. Docker Hub names
(`rocm/vllm-dev`, `ubuntu`) are read as docker reads them: registry-1.docker.io, `library/` for one-word names.
Loopback registries and those the engine was told are insecure are spoken to over plain HTTP, as docker does;
others over HTTPS."""

from __future__ import annotations

import base64
import functools
import hashlib
import http.client
import ipaddress
import json
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from typing import IO, BinaryIO

from epbuild.registry.credentials import docker_config_dir
from epbuild.registry.errors import RegistryAbsent, RegistryUnauthorised, RegistryUnreachable, RegistryUnreadable
from epbuild.util import timeouts
from epbuild.util.commands import ToolMissing, query

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
DOCKER_HUB, DOCKER_HUB_API, DOCKER_HUB_AUTH_KEY = "docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"
# What a registry's 404 says when it holds no such manifest (or no such repository at all): "absent".
ABSENT_CODES = {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"}


@dataclass(frozen=True)
class Reference:
    host: str
    repository: str
    reference: str
    """A tag or a digest."""

    @classmethod
    def parse(cls, ref: str) -> Reference:
        """`[host[:port]/]path[:tag][@digest]`, read as docker reads it: a first part with no `.` or `:` (and not
        `localhost`) is a Docker Hub path, where a one-word name is under `library/` (ubuntu ->
        docker.io/library/ubuntu); a digest wins over a tag."""
        name, at, digest = ref.partition("@")
        host, slash, rest = name.partition("/")
        if not slash or not ("." in host or ":" in host or host == "localhost"):
            host, rest = DOCKER_HUB, name
        if host == "index.docker.io":
            host = DOCKER_HUB
        repository, _, tag = rest.rpartition(":") if ":" in rest.rsplit("/", 1)[-1] else (rest, "", "")
        if host == DOCKER_HUB and "/" not in repository:
            repository = f"library/{repository}"
        if not repository.strip("/") or (at and not digest) or " " in ref:
            raise ValueError(f"{ref!r} is not an image reference (host/repository:tag or host/repository@digest)")
        return cls(host, repository, digest if at else (tag or "latest"))


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0].strip("[]") if host.count(":") <= 1 or host.startswith("[") else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _insecure_in_engine(host: str) -> bool:
    """Whether the engine was configured with `host` as an insecure registry (daemon.json insecure-registries);
    without docker on this machine, no registry is (a read needs no engine)."""
    try:
        proc = query(["docker", "info", "--format", "{{json .RegistryConfig.IndexConfigs}}"],
                     timeout=timeouts.REGISTRY.seconds(), setting=timeouts.REGISTRY.env)
    except ToolMissing:
        return False
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


class _SameHostAuthorization(urllib.request.HTTPRedirectHandler):
    """Follows a redirect (registries send blobs to a storage host: S3, a CDN) without handing our login to
    another host, as docker does; the storage URL carries its own signature."""

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: http.client.HTTPMessage, newurl: str) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_SameHostAuthorization())


@dataclass
class Session:
    """Requests to one repository of one registry, answering its auth challenge once and reusing the answer.
    `push`: the session writes, so a token service is asked for `pull,push`; else for `pull` only."""

    host: str
    repository: str
    login: tuple[str, str] | None = None
    push: bool = False
    _authorization: str | None = field(default=None, repr=False)

    def _send(self, method: str, url: str, body: bytes | BinaryIO | None, headers: dict[str, str]) -> _Response:
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        limit = timeouts.REGISTRY.seconds()
        try:
            with _OPENER.open(request, timeout=limit) as answer:
                return _Response(answer.status, answer.headers, answer.read())
        except urllib.error.HTTPError as exc:
            return _Response(exc.code, exc.headers, exc.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
                raise RegistryUnreachable(f"`{method} {url.split('?')[0]}` did not finish within {limit:g} s and was "
                                          f"stopped (raise it with {timeouts.REGISTRY.env})") from None
            where = url.split("?")[0]
            raise RegistryUnreachable(f"cannot reach the registry {self.host} ({where}): {reason}") from None

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
        actions = "pull,push" if self.push else "pull"
        query_string = urllib.parse.urlencode(
            {"service": params.get("service", ""), "scope": f"repository:{self.repository}:{actions}"})
        headers = {"Authorization": self._basic()} if self.login else {}
        separator = "&" if "?" in params["realm"] else "?"
        answer = self._send("GET", f"{params['realm']}{separator}{query_string}", None, headers)
        if answer.status != 200:
            raise RegistryUnauthorised(f"the token service of {self.host} refused us: "
                                       f"{reason_of(answer.body, answer.status)}")
        try:
            token = json.loads(answer.body)
            self._authorization = "Bearer " + str(token.get("token") or token["access_token"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise RegistryUnauthorised(f"the token service of {self.host} ({params['realm']}) answered no "
                                       "token") from None

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
            challenge = answer.headers.get("WWW-Authenticate", "Basic")
            if _challenge(challenge)[0] == "basic" and self.login is None:
                break  # nothing to answer it with: the refusal below says so, with the registry's reason
            self._authorize(challenge)
        if answer.status in (401, 403) and method == "HEAD":
            answer = self._send("GET", url, None, sent)  # a HEAD answer has no body: ask for the registry's reason
        if answer.status in (401, 403):
            may = "write" if self.push else "read"
            how = (f"docker has no login for {self.host}: log in" if self.login is None and not self._authorization
                   else f"log in with an account that may {may} it")
            raise RegistryUnauthorised(f"the registry refused access to {self.host}/v2/{path.split('?')[0]} "
                                       f"({method}: {reason_of(answer.body, answer.status)}); {how} (docker login, "
                                       "or EPBUILD_REGISTRY_USER/_PASSWORD)")
        return answer


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    body: bytes
    """Empty when only asked whether it is there (HEAD)."""


def _error_codes(body: bytes) -> set[str]:
    try:
        return {str(e.get("code", "")) for e in json.loads(body)["errors"]}
    except (ValueError, KeyError, TypeError, AttributeError):
        return set()


def read_manifest(session: Session, reference: str, *, body: bool = True) -> Manifest:
    """The manifest under `reference` (a tag or digest of the session's repository); RegistryAbsent when the
    registry says it has none (404 with MANIFEST_UNKNOWN, NAME_UNKNOWN or no body). Without `body`, a HEAD request
    (Docker Hub counts no pull for it), asking again by GET when the registry names no digest, or for the
    registry's reason when it has no such manifest or fails (a HEAD answer has no body). The digest is the
    registry's Docker-Content-Digest, else the sha256 of the bytes; bytes asked for by digest must hash to it."""
    accept = {"Accept": ", ".join(MANIFEST_TYPES)}
    answer = session.request("GET" if body else "HEAD", f"manifests/{reference}", headers=accept)
    where = f"{session.host}/{session.repository}{'@' if reference.startswith('sha256:') else ':'}{reference}"
    if answer.status != 200 and not body:
        return read_manifest(session, reference)
    if answer.status == 404 and _error_codes(answer.body) <= ABSENT_CODES:
        said = f" ({reason_of(answer.body, 404)})" if answer.body else ""
        raise RegistryAbsent(f"the registry has no {where}{said}")
    if answer.status != 200:
        raise RegistryUnreadable(f"the registry did not give {where}: {reason_of(answer.body, answer.status)}")
    digest = answer.headers.get("Docker-Content-Digest", "")
    if not body and not digest:
        return read_manifest(session, reference)
    if body:
        computed = "sha256:" + hashlib.sha256(answer.body).hexdigest()
        if reference.startswith("sha256:") and computed != reference:
            raise RegistryUnreadable(f"the registry served {where} with bytes of another digest ({computed})")
        digest = digest or computed
    media_type = (answer.headers.get("Content-Type") or "").split(";")[0].strip()
    if body and media_type not in MANIFEST_TYPES:
        try:
            media_type = str(json.loads(answer.body).get("mediaType", "")) or media_type
        except (ValueError, AttributeError):
            raise RegistryUnreadable(f"the registry served {where} as something other than a manifest "
                                     f"({media_type or 'no media type'})") from None
    return Manifest(digest, media_type, answer.body)
