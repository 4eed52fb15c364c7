"""`invoke schema`: the matrix schema as JSON Schema, for editors (yaml-language-server) and CI."""

from __future__ import annotations

import json
from pathlib import Path

from epbuild.model.matrix import Matrix
from epbuild.util import atomicfs

SCHEMA_FILE = "matrix.schema.json"


def json_schema() -> str:
    schema = Matrix.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "epbuild build matrix"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(path: Path) -> None:
    atomicfs.write_text(path, json_schema())
