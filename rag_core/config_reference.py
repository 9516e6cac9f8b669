"""Renders config.template.yaml and docs/configuration.md from the field descriptions in rag_core.config.

A setting is described once, on its field, so the template and the reference can never miss a key or show a stale
default. ``python -m rag_core.config_reference`` writes both files; ``--check`` (run by ``make lint``) exits 1,
naming each stale file, when a committed copy differs from what the descriptions render now.
"""

import argparse
import json
import math
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, get_args, get_origin

import yaml
from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from rag_core.config import (
    ENV_PREFIX,
    GUIDE_VARIABLES,
    HOST_PORT_VARIABLES,
    PATHS_UNDER_DATA_DIR,
    SECRET_VARIABLES,
    RAGConfig,
)

ROOT = Path(__file__).resolve().parents[1]  # the checkout whose config.py the files describe
TEMPLATE = "config.template.yaml"
REFERENCE = "docs/configuration.md"
COMMAND = "python -m rag_core.config_reference"
WIDTH = 120  # the project's line length
COMMENT_COLUMN = 33  # where a key's comment starts in the template, so the values read as one column
BOUNDS = ((Gt, "gt", ">"), (Ge, "ge", "≥"), (Lt, "lt", "<"), (Le, "le", "≤"))


def _item_model(info: FieldInfo) -> type[BaseModel] | None:
    """The model a list field holds (security.tokens: TokenConfig), whose fields are described too."""
    args = get_args(info.annotation)
    if get_origin(info.annotation) is list and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0]
    return None


def _is_secret(info: FieldInfo) -> bool:
    return info.annotation is SecretStr


def _is_computed(info: FieldInfo) -> bool:
    """A string default made by a factory is computed where the config is loaded (embedding.onnx_cache_dir: the
    user's cache folder); showing no value for it keeps the generated files the same on every machine."""
    return info.default_factory is not None and isinstance(info.get_default(call_default_factory=True), str)


def _yaml(value: object) -> str:
    """A default as written in YAML, on one line. A string that needs quotes, or holds a space (a cron expression:
    edited to ``*/5 * * * *`` it must stay a string), gets double quotes (JSON is YAML)."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    dumped = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=math.inf)
    dumped = dumped.removesuffix("...\n").strip()
    return json.dumps(value) if isinstance(value, str) and (dumped != value or " " in value) else dumped


def _allowed(info: FieldInfo) -> str:
    """The values a field accepts beyond its type (Literal choices, numeric bounds), so a user need not guess."""
    if get_origin(info.annotation) is Literal:
        return "Allowed: " + ", ".join(str(choice) for choice in get_args(info.annotation)) + "."
    bounds = [
        f"{symbol} {getattr(rule, attribute)}"
        for kind, attribute, symbol in BOUNDS
        for rule in info.metadata
        if isinstance(rule, kind)
    ]
    return f"Allowed: {', '.join(bounds)}." if bounds else ""


def _describe(info: FieldInfo) -> str:
    return " ".join(part for part in (info.description or "", _allowed(info)) if part)


def _from_environment(key: str, info: FieldInfo) -> bool:
    """Whether RAG__SECTION__KEY can set a key: the loader lower-cases the key it reads from the variable's name,
    and a variable's text is parsed into a single value, never a mapping or a list."""
    return key == key.lower() and get_origin(info.annotation) not in (dict, list)


def _variables(section: str, key: str, info: FieldInfo) -> list[tuple[str, ...]]:
    """The environment variables that set a key, the one that wins first (a tuple: variables used together)."""
    if section == "milvus" and key in SECRET_VARIABLES:
        return [(variable,) for variable in SECRET_VARIABLES[key]]
    if not _from_environment(key, info):
        return []
    variables = [(f"{ENV_PREFIX}{section}__{key}".upper(),)]
    if section == "milvus" and key in GUIDE_VARIABLES:
        variables.append((GUIDE_VARIABLES[key],))
    if section == "milvus" and key == "uri":
        variables.append(HOST_PORT_VARIABLES)
    return variables


def _commented(code: str, comment: str) -> list[str]:
    """``code`` with ``comment`` beside it from COMMENT_COLUMN on, wrapped to the line length."""
    if not comment:
        return [code]
    return textwrap.wrap(
        comment,
        WIDTH,
        initial_indent=code.ljust(COMMENT_COLUMN - 1) + " # ",
        subsequent_indent=" " * COMMENT_COLUMN + "# ",
        break_long_words=False,
        break_on_hyphens=False,
    )


def _template_key(section: str, key: str, info: FieldInfo) -> list[str]:
    if _is_computed(info):
        return _commented(f"  # {key}:", _describe(info))
    comment = _describe(info)
    if _is_secret(info):
        variables = " or ".join(variable for (variable,) in _variables(section, key, info))
        comment += f" Secret: set {variables} in the environment, never here."
    value = f"{key}: {_yaml(info.get_default(call_default_factory=True))}"
    # Commented out: a copied template that set it would pin the path and leave data.dir no say over it.
    lines = _commented(f"  # {value}" if (section, key) in PATHS_UNDER_DATA_DIR else f"  {value}", comment)
    if item := _item_model(info):
        for position, (item_key, item_info) in enumerate(item.model_fields.items()):
            lines += _commented(f"  # {'  ' if position else '- '}{item_key}:", _describe(item_info))
    return lines


def render_template() -> str:
    """config.template.yaml: every section and key with its default, its description as a comment."""
    secrets = [(f"milvus.{key}", variables[0]) for key, variables in SECRET_VARIABLES.items()]
    lines = [
        f"# advanced-rag-milvus configuration, generated from rag_core/config.py by `{COMMAND}`.",
        "# Copy to config.yaml (or point RAG_CONFIG at another file). Every key is optional: the values shown are the "
        "defaults.",
        "# Precedence, highest first: environment variables, .env in the working directory, this file, built-in "
        "defaults.",
        "# Most keys can be set from the environment as RAG__SECTION__KEY, e.g. RAG__EMBEDDING__BATCH_SIZE=32;",
        f"# {REFERENCE} names the variables of every key and the values it allows.",
        f"# Secrets ({', '.join(name for name, _ in secrets)}) belong in the environment "
        f"({', '.join(variable for _, variable in secrets)}), never here.",
    ]
    for section, info in RAGConfig.model_fields.items():
        lines += ["", *_commented(f"{section}:", info.description or "")]
        for key, field in info.annotation.model_fields.items():
            lines += _template_key(section, key, field)
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Text in a Markdown table cell: a ``|`` would end the cell, a ``<`` start an HTML tag (``<collection>``)."""
    return text.replace("|", "\\|").replace("<", "&lt;")


def _default_cell(info: FieldInfo) -> str:
    if info.is_required():
        return "*required*"
    if _is_computed(info):
        return "*computed when loaded*"
    return f"`{_yaml(info.get_default(call_default_factory=True))}`"


def _variables_cell(variables: Sequence[tuple[str, ...]]) -> str:
    return ", else ".join(" + ".join(f"`{name}`" for name in group) for group in variables) or "–"


def _row(key: str, default: str, variables: str, info: FieldInfo) -> str:
    return f"| `{key}` | {_cell(default)} | {variables} | {_cell(_describe(info))} |"


def render_reference() -> str:
    """docs/configuration.md: per section, a table of every key's default, environment variables and description."""
    lines = [
        "# Configuration reference",
        "",
        f"Generated from the field descriptions in `rag_core/config.py` by `{COMMAND}`, which also writes",
        f"`{TEMPLATE}`: edit the descriptions, not this file (`make lint` fails when it is stale).",
        "",
        "Every command reads `config.yaml` (or the file `--config` or `$RAG_CONFIG` names), then `.env` in the working",
        "directory, then the environment; a later source wins, and every key is optional. A key is set from the",
        "environment as `RAG__SECTION__KEY`, its text parsed as the key's type (`true`, `32`, `0.5`). Where the table",
        "names several variables, the first one set wins; `–` marks a key that only the file can set (a mapping, a",
        "list, or a key with capitals, which the loader lower-cases). Secrets are read from the environment only.",
    ]
    for section, section_info in RAGConfig.model_fields.items():
        lines += [
            "",
            f"## {section}",
            "",
            section_info.description or "",
            "",
            "| key | default | environment variable | description |",
            "|---|---|---|---|",
        ]
        for key, info in section_info.annotation.model_fields.items():
            lines.append(
                _row(f"{section}.{key}", _default_cell(info), _variables_cell(_variables(section, key, info)), info)
            )
            if item := _item_model(info):
                lines += [
                    _row(f"{section}.{key}[].{item_key}", _default_cell(item_info), "–", item_info)
                    for item_key, item_info in item.model_fields.items()
                ]
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[], str]] = {TEMPLATE: render_template, REFERENCE: render_reference}


def write(root: Path) -> list[Path]:
    """Write every generated file under ``root``; returns their paths."""
    paths = []
    for name, render in RENDERERS.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(), encoding="utf-8")
        paths.append(path)
    return paths


def stale(root: Path) -> list[Path]:
    """The generated files under ``root`` that are missing or differ from what the descriptions render now."""
    paths = [(root / name, render) for name, render in RENDERERS.items()]
    return [path for path, render in paths if not path.is_file() or path.read_text(encoding="utf-8") != render()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 naming each stale file")
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the checkout to write or check (default: the one this module is in)"
    )
    args = parser.parse_args(argv)
    if not args.check:
        for path in write(args.root):
            print(f"wrote {path}")
        return 0
    outdated = stale(args.root)
    for path in outdated:
        print(f"{path} is stale: run `{COMMAND}` to regenerate it from rag_core/config.py", file=sys.stderr)
    return 1 if outdated else 0


if __name__ == "__main__":
    sys.exit(main())
