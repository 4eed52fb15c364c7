"""The Jinja side of rendering: one environment per template folder, templates compiled once per process, and
a render that skips what jinja repeats on every call but a 1,000-cell render (some 5,000 templates) cannot afford."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from epbuild.render.compile_cache_lines import GLOBALS
from epbuild.util.resources import resource

TEMPLATES = resource("templates")
STAGE_TEMPLATES = TEMPLATES / "stages"


@cache
def _environment(folder: Path) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        # Templates are read once per process: checking each one's mtime on every render (jinja's default) cost a
        # stat per stage per cell.
        auto_reload=False,
    )
    environment.globals.update(GLOBALS)  # what every compiled step writes for the shared compile cache
    return environment


@cache
def template_in(folder: Path, name: str) -> jinja2.Template:
    """The compiled template, by folder and name: looked up without joining a path for each stage of each cell."""
    return _environment(folder).get_template(name)


@cache
def _globals(template: jinja2.Template) -> dict[str, Any]:
    return dict(template.globals)


def render(template: jinja2.Template, context: dict[str, Any]) -> str:
    """template.render(**context), with the template's globals merged into the context once per template instead
    of on every call (jinja merges them into a new dict each time: more than half the cost of rendering a small
    stage, and a 1,000-cell render renders 5,000 templates)."""
    try:
        # What template.new_context(..., shared=True) makes, but given the globals as the plain dict: jinja lists
        # the keys of its ChainMap of globals for every context, a tenth of a stage's render.
        globals_ = _globals(template)
        ctx = template.environment.context_class(template.environment, {**globals_, **context}, template.name,
                                                 template.blocks, globals=globals_)
        return template.environment.concat(template.root_render_func(ctx))
    except Exception:
        template.environment.handle_exception()  # raises it, its traceback pointing into the template
        raise
