"""A Dockerfile read as data: its stages, each stage's ARG defaults, ENV values and RUN commands split into shell
words, with `${VAR}` expanded from the ARG defaults in scope. The instructions come from a real Dockerfile parser
(dockerfile-parse: line continuations, comments, instruction boundaries) and the RUN lines from Python's shell
lexer (quotes, `&&`, `;`, `|`), so the shapes vLLM's docker/Dockerfile.rocm@00305ee5 uses (`RUN --mount=...`,
`bash -lc '...'` scripts, inline comments after an ARG) are read as a shell and BuildKit would read them."""

from __future__ import annotations

import re
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dockerfile_parse import DockerfileParser

from epbuild.util.errors import EpbuildError

SEPARATORS = {"&&", "||", ";", "|", "&", ";;", "(", ")", "()", "{", "}"}
SHELLS = {"bash", "/bin/bash", "sh", "/bin/sh"}
KEYWORDS = {"then", "do", "else", "!"}
"""Words that start a compound command's body: the simple command is what follows them."""
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class DockerfileError(EpbuildError):
    pass


@dataclass
class Stage:
    name: str
    base: str
    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    """The stage's own ENV instructions (what it declares, not what it inherits)."""
    inherited_env: dict[str, str] = field(default_factory=dict)
    """The ENV of the stage it is built FROM, where that is a stage of this file."""
    commands: list[list[str]] = field(default_factory=list)
    """Every simple command of the stage's RUN lines (and of the `bash -c` scripts they run), ARGs expanded."""


@dataclass
class Dockerfile:
    source: str
    global_args: dict[str, str]
    stages: list[Stage]

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)

    def arg(self, name: str) -> str | None:
        """An ARG's default, from the global scope or any stage that sets one."""
        if name in self.global_args:
            return self.global_args[name]
        return next((s.args[name] for s in self.stages if s.args.get(name)), None)


def expand(text: str, values: dict[str, str]) -> str:
    """`${X}`, `$X`, `${X:-word}` and `${X:+word}` from `values`, the word itself expanded (Dockerfile variable
    substitution, which vLLM's docker/Dockerfile.rocm@00305ee5 uses as `ENV MAX_JOBS=${max_jobs}` after an ARG with no
    default, `${USE_SCCACHE:+${SCCACHE_BUCKET_NAME}}` and `${ARG_PYTORCH_ROCM_ARCH:-${PYTORCH_ROCM_ARCH}}`). A name
    declared without a value is empty, as BuildKit makes it; unknown names stay as they are (a shell would see them)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
            continue
        if text.startswith("${", i):
            close = _closing_brace(text, i + 2)
            if close is None:
                out.append(text[i:])
                break
            out.append(_substitute(text[i:close + 1], text[i + 2:close], values))
            i = close + 1
            continue
        name = _NAME.match(text, i + 1)
        if name is None:
            out.append("$")
            i += 1
            continue
        out.append(values[name.group(0)] if name.group(0) in values else text[i:name.end()])
        i = name.end()
    return "".join(out)


def _closing_brace(text: str, start: int) -> int | None:
    """The index of the `}` that closes a `${` whose body starts at `start` (nested `${...}` counted)."""
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


def _substitute(whole: str, body: str, values: dict[str, str]) -> str:
    name = _NAME.match(body)
    if name is None:
        return whole
    rest = body[name.end():]
    value = values.get(name.group(0))
    if rest == "":
        return whole if value is None else value
    if rest.startswith(":-"):
        return value if value else expand(rest[2:], values)
    if rest.startswith(":+"):
        if value is None:
            return whole
        return expand(rest[2:], values) if value else ""
    return whole


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell script, as words; a `bash -c SCRIPT` command is read into its own commands."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        words = list(lexer)
    except ValueError as exc:
        raise DockerfileError(f"unreadable shell line ({exc}): {script[:120]}") from None
    out: list[list[str]] = []
    current: list[str] = []
    for word in words + [";"]:
        if word in SEPARATORS:
            if current:
                out.append(current)
            current = []
            if word == "{":
                out.append(["{"])  # a function body starts: readers may reset what they collect
        elif current or word not in KEYWORDS:
            current.append(word)
    nested: list[list[str]] = []
    for command in out:
        nested.append(command)
        if command[0] in SHELLS:
            flag = next((i for i, w in enumerate(command[1:], 1) if w.startswith("-") and "c" in w[1:]), None)
            if flag is not None and flag + 1 < len(command):
                nested += shell_commands(command[flag + 1])
    return nested


def _assignments(value: str, comments: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for word in shlex.split(value, comments=comments):
        name, sep, default = word.partition("=")
        out[name] = default if sep else ""
    return out


def _env(value: str) -> dict[str, str]:
    words = shlex.split(value)
    if words and "=" not in words[0]:  # the legacy `ENV NAME value` form
        return {words[0]: " ".join(words[1:])}
    return _assignments(value, comments=False)


def _run_script(value: str) -> str:
    """The shell part of a RUN line: without BuildKit's leading `--mount=...`/`--network=...` options."""
    words = value.split(" ")
    while words and (words[0].startswith("--") or words[0] == ""):
        words.pop(0)
    return " ".join(words)


def parse(text: str, source: str) -> Dockerfile:
    with tempfile.TemporaryDirectory(prefix="epbuild-dockerfile-") as tmp:
        parser = DockerfileParser(path=str(Path(tmp) / "Dockerfile"))
        parser.content = text
        structure = parser.structure
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for item in structure:
        instruction, value = item["instruction"], item["value"]
        stage = stages[-1] if stages else None
        try:
            if instruction == "FROM":
                words = value.split()
                name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else f"#{len(stages)}"
                base = words[0] if words else ""
                parent = next((s for s in stages if s.name == base), None)
                stages.append(Stage(name=name, base=base,
                                    inherited_env={**parent.inherited_env, **parent.env} if parent else {}))
            elif instruction == "ARG":
                declared = _assignments(value, comments=True)
                if stage is None:
                    global_args.update(declared)
                else:
                    # An ARG without a default inside a stage takes the global one (Dockerfile semantics).
                    stage.args.update({k: v or global_args.get(k, "") for k, v in declared.items()})
            elif stage is not None and instruction == "ENV":
                # ENV wins over ARG; global ARGs count only where a stage redeclares them (Dockerfile semantics).
                scope = {**stage.args, **stage.inherited_env, **stage.env}
                stage.env.update({k: expand(v, scope) for k, v in _env(value).items()})
            elif stage is not None and instruction == "RUN":
                # ENV wins over ARG; global ARGs count only where a stage redeclares them (Dockerfile semantics).
                scope = {**stage.args, **stage.inherited_env, **stage.env}
                stage.commands += [[expand(w, scope) for w in cmd] for cmd in shell_commands(_run_script(value))]
        except ValueError as exc:
            raise DockerfileError(f"{source}:{item['startline'] + 1}: unreadable {instruction} ({exc})") from None
    if not stages:
        raise DockerfileError(f"{source}: no FROM instruction; not a Dockerfile")
    return Dockerfile(source, global_args, stages)
