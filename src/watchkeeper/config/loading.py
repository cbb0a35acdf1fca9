"""Reading watchkeeper.yaml: YAML, then the models' structure (pydantic's errors mapped to
paths such as ``models[0].columns.features[3].kind`` and their lines), then, if the
structure is sound, the cross-field checks. Every mistake is reported, all together."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from watchkeeper.config.checks import check_config
from watchkeeper.config.models import Config
from watchkeeper.errors import ConfigError, ConfigProblem


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; raises ConfigError naming every mistake."""
    source = Path(path)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise ConfigError([ConfigProblem("", f"cannot read {source}: {exc.strerror}")]) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problem = ConfigProblem(
            "", f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8", line
        )
        raise ConfigError([problem], str(source)) from None
    return parse_config(text, source=str(source), base_dir=source.resolve().parent)


def parse_config(text: str, source: str = "<config>", base_dir: Path | None = None) -> Config:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = str(getattr(exc, "problem", None) or exc)
        raise ConfigError([ConfigProblem("", f"not valid YAML: {problem}", line)], source) from exc
    if data is None:
        raise ConfigError(
            [ConfigProblem("", "the config is empty; `watchkeeper init` writes an example")],
            source,
        )
    duplicates = list(_duplicate_keys(node))
    if duplicates:
        raise ConfigError(duplicates, source)
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem("", "the top level must be a mapping")], source)
    data = {**data, "base_dir": base_dir or Path(".")}
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = [_problem_from_pydantic(err, node) for err in exc.errors()]
        raise ConfigError(problems, source) from None
    problems = [
        ConfigProblem(path, message, _line_of(node, path)) for path, message in check_config(config)
    ]
    if problems:
        raise ConfigError(problems, source)
    return config


def _duplicate_keys(node: yaml.Node | None, path: str = "") -> Iterator[ConfigProblem]:
    """Keys given twice in one mapping (YAML keeps the last silently)."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            here = f"{path}.{name}" if path else name
            if name in seen:
                yield ConfigProblem(
                    here,
                    f"a duplicate key (first on line {seen[name]}); YAML would keep only the last",
                    key.start_mark.line + 1,
                )
            else:
                seen[name] = key.start_mark.line + 1
            yield from _duplicate_keys(value, here)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, f"{path}[{i}]")


def _format_loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _problem_from_pydantic(err: Any, node: yaml.Node | None) -> ConfigProblem:
    # Pydantic appends the validator's name (e.g. "function-before[...]") for
    # annotated types; it is not a place in the file.
    loc = [p for p in err["loc"] if not (isinstance(p, str) and "[" in p)]
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        message = f"must be one of {expected}"
    elif kind == "missing":
        message = "is required"
    elif kind == "extra_forbidden":
        message = "is not a known setting"
    elif kind == "string_pattern_mismatch":
        message = "must be lowercase letters, digits and underscores, starting with a letter"
    elif kind in ("value_error", "assertion_error"):
        message = str(ctx.get("error", err["msg"]))
    else:
        message = err["msg"][0].lower() + err["msg"][1:]
    path = _format_loc(loc)
    return ConfigProblem(path, message, _line_of_loc(node, loc))


def _line_of(node: yaml.Node | None, path: str) -> int | None:
    loc: list[int | str] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        loc.append(int(part[1:-1]) if part.startswith("[") else part)
    return _line_of_loc(node, loc)


def _line_of_loc(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the deepest YAML node that ``loc`` reaches."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if getattr(key, "value", None) == part:
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


__all__ = ["load_config", "parse_config"]
