"""The default alerting section for a model's schema, made from the example config's rules
(config/example.py), so a threshold tuned there is the one ``init --from`` writes.

The rules' feature lists become the model's features and their score and prediction
columns the model's own. A rule whose inputs the schema lacks is left out (no latency
column: no latency rule); a condition that cannot hold is dropped from a rule that can do
without it (one that needs any, or some, of its conditions); a performance condition on a
metric the model's task does not measure stands in for the task's own estimable metrics
(roc_auc becomes mae and rmse for a regression model), with the same relative threshold.
Rules kept as they are keep their text and comments; a changed rule is written anew with
a comment saying what changed. Every change is returned as a note.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from watchkeeper.catalogue import ESTIMABLE, Metric, catalogue
from watchkeeper.config.example import EXAMPLE_CONFIG, EXAMPLE_TEMPLATE, FEATURES

_RULE = re.compile(r"^    - name: *([a-z][a-z0-9_]*)")
_COLUMN_LIST = re.compile(r"(column: *)\[([^\]]*)\]")
_HEADER = re.compile(r"^\s*# --")


@dataclass(frozen=True)
class RuleInputs:
    """What a model's schema offers the rules."""

    task: str
    features: tuple[str, ...]
    score: str | None = None
    prediction: str | None = None
    latency: bool = False
    status: bool = False
    model_version: bool = False
    segments: bool = False
    sensitive: bool = False
    outcomes: bool = False
    costs: bool = False


@dataclass
class Alerting:
    """The alerting section's YAML text, and what was left out or changed, one line each."""

    text: str
    notes: list[str] = field(default_factory=list)


def default_alerting(inputs: RuleInputs) -> Alerting:
    """The example config's alerting section, fitted to a model with these inputs."""
    lines = _alerting_lines(EXAMPLE_TEMPLATE)
    head, blocks, tail = _split(lines)
    example = _example_outputs()
    mapping = {example.get("score"): inputs.score, example.get("prediction"): inputs.prediction}
    known = _example_columns()
    out = list(head)
    notes: list[str] = []
    held: list[str] = []
    for block in blocks:
        if block.section:
            held = block.section
        text = _columns(
            "".join(block.body), mapping, known, inputs.features, inputs.score, inputs.prediction
        )
        rule = yaml.safe_load(textwrap.dedent(text))[0]
        fitted, why = _fit(rule, inputs)
        if fitted is None:
            notes.append(f"{rule['name']} rule left out: {why}")
            continue
        out += held
        held = []
        if why:
            notes.append(f"{rule['name']} rule changed: {why}")
            out += block.comments
            out.append(
                textwrap.fill(
                    why, 88, initial_indent="    # init --from: ", subsequent_indent="    #   "
                )
                + "\n"
            )
            out.append(_render(fitted))
        else:
            out += block.comments
            out.append(text)
    out += tail
    return Alerting("".join(out), notes)


# -- the template's text ----------------------------------------------------------------


@dataclass
class _Block:
    section: list[str]  # a section header (and what comes before it), if one precedes
    comments: list[str]  # the comment lines just above the rule
    body: list[str]


def _alerting_lines(template: str) -> list[str]:
    start = template.index("\nalerting:\n") + 1
    return template[start:].splitlines(keepends=True)


def _split(lines: list[str]) -> tuple[list[str], list[_Block], list[str]]:
    """The lines up to ``rules:``, the rules one block each, and the rest (inhibit,
    receivers). Comment lines above a rule belong to it; a section header
    (``# -- data --``) and anything above it belong to the section."""
    at = next(i for i, line in enumerate(lines) if line.rstrip() == "  rules:") + 1
    head, blocks = lines[:at], []
    pending: list[str] = []
    i = at
    for i in range(at, len(lines)):
        line = lines[i]
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            pending.append(line)
            continue
        if _RULE.match(line):
            cut = max((j + 1 for j, c in enumerate(pending) if _HEADER.match(c)), default=0)
            blocks.append(_Block(pending[:cut], pending[cut:], [line]))
            pending = []
            continue
        if len(line) - len(line.lstrip()) <= 2:  # the end of the rules: inhibit, receivers
            return head, blocks, pending + lines[i:]
        blocks[-1].body += [*pending, line]
        pending = []
    return head, blocks, pending


def _example_outputs() -> dict[str, str]:
    columns = yaml.safe_load(EXAMPLE_CONFIG)["models"][0]["columns"]
    return {role: columns[role] for role in ("score", "prediction") if columns.get(role)}


def _example_columns() -> set[str]:
    """Every column name the example model declares (its features, outputs, segments...)."""
    columns = yaml.safe_load(EXAMPLE_CONFIG)["models"][0]["columns"]
    found: set[str] = set()
    for value in columns.values():
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, list):
            found |= {v["name"] if isinstance(v, dict) else str(v) for v in value}
    return found


def _columns(
    text: str,
    mapping: dict[str | None, str | None],
    known: set[str],
    features: tuple[str, ...],
    score: str | None,
    prediction: str | None,
) -> str:
    """A rule's column lists for this model: the placeholder becomes its features, the
    example's score and prediction its own, and other example columns it lacks go."""
    present = {*features, score, prediction}

    def replace(match: re.Match[str]) -> str:
        items: list[str] = []
        for item in (s.strip() for s in match.group(2).split(",")):
            if not item:
                continue
            if item == FEATURES:
                items += [flow_item(f) for f in features]
            elif item in mapping:
                if mapping[item] is not None:
                    items.append(flow_item(str(mapping[item])))
            elif item not in known or item in present:
                items.append(item)
        indent = " " * (match.start() - text.rfind("\n", 0, match.start()) + 1)
        listed = textwrap.fill(
            ", ".join(items), width=90 - len(indent), break_on_hyphens=False, break_long_words=False
        ).replace("\n", "\n" + indent)
        return f"{match.group(1)}[{listed}]"

    return _COLUMN_LIST.sub(replace, text)


def flow_item(name: str) -> str:
    """A column name as an item of a YAML flow list (quoted when it must be)."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name) and name.lower() not in _YAML_WORDS:
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


_YAML_WORDS = frozenset(("true", "false", "yes", "no", "on", "off", "null", "y", "n"))


class _Dumper(yaml.SafeDumper):
    """Block lists indented under their key, and no anchors for repeated values."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _render(rule: dict[str, Any]) -> str:
    text = yaml.dump([rule], Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=88)
    return textwrap.indent(text, "    ")


def _renamed(description: str, c: dict[str, Any], stand_ins: list[dict[str, Any]]) -> str:
    """The description with the replaced metric's name turned into its stand-ins'."""
    name = str(c["metric"]).removeprefix("estimated_").replace("_", " ")
    own = " or ".join(str(s["metric"]).removeprefix("estimated_").upper() for s in stand_ins)
    return re.sub(re.escape(name), own, description, flags=re.IGNORECASE)


# -- fitting a rule ----------------------------------------------------------------------


def _fit(rule: dict[str, Any], inputs: RuleInputs) -> tuple[dict[str, Any] | None, str]:
    """The rule for this model (None: left out) and why it was changed or left out."""
    conditions: list[dict[str, Any]] = []
    dropped: list[str] = []
    replaced: list[str] = []
    added: list[str] = []
    for c in rule["conditions"]:
        lacks = _lacks(c, inputs)
        if lacks is None:
            conditions.append(c)
            continue
        candidates = list(_stand_ins(c, inputs.task))
        if not candidates:
            dropped.append(lacks)
            continue
        replaced.append(str(c["metric"]))
        have = {str(k["metric"]) for k in conditions}
        stand_ins = [s for s in candidates if s["metric"] not in have]
        if stand_ins:  # the first condition replaced sets the thresholds
            conditions += stand_ins
            added += [str(s["metric"]) for s in stand_ins]
            rule = dict(rule, description=_renamed(rule.get("description", ""), c, stand_ins))
    before = len(rule["conditions"])
    require = rule.get("require", "all")
    if not conditions:
        return None, "; ".join(dict.fromkeys(dropped))
    if dropped and (require == "all" or (isinstance(require, int) and len(conditions) < require)):
        return None, "; ".join(dict.fromkeys(dropped))
    if not dropped and not replaced:
        return rule, ""
    fitted = dict(rule, conditions=conditions)
    why: list[str] = []
    if replaced:
        why.append(
            f"{', '.join(replaced)} → {', '.join(added)} ({inputs.task}'s metrics, with the "
            "relative threshold of the first)"
        )
        if require == "all" and len(conditions) > before:
            fitted["require"] = "any"
    if dropped:
        why.append("without the condition on " + "; ".join(dict.fromkeys(dropped)))
    escalate = fitted.get("escalate")
    if escalate and escalate.get("require", 0) > len(conditions):
        del fitted["escalate"]
        why.append("no escalation (too few conditions left)")
    return fitted, "; ".join(why)


def _lacks(c: dict[str, Any], inputs: RuleInputs) -> str | None:
    """Why the condition cannot hold for this model, or None when it can."""
    column = c.get("column", "*")
    if isinstance(column, list) and not column:
        return f"{c['metric']} (none of its columns exist)"
    reasons = [_metric_lacks(m, inputs) for m in catalogue.matching(str(c["metric"]))]
    if reasons and all(reasons):
        return reasons[0]
    return None


def _metric_lacks(m: Metric, inputs: RuleInputs) -> str | None:
    if inputs.task not in m.tasks:
        return f"{m.key} (not measured for {inputs.task})"
    if m.column == "the latency column" and not inputs.latency:
        return f"{m.key} (no latency column)"
    if m.key == "error_rate" and not inputs.status:
        return f"{m.key} (no status column)"
    if m.key == "version_shift" and not inputs.model_version:
        return f"{m.key} (no model_version column)"
    if m.family == "segments" and not inputs.segments:
        return f"{m.key} (no segment columns)"
    if m.family == "fairness" and not inputs.sensitive:
        return f"{m.key} (no sensitive columns)"
    if m.family == "business" and m.key.startswith("outcome") and not inputs.outcomes:
        return f"{m.key} (no outcomes configured)"
    if m.family == "business" and not m.key.startswith("outcome") and not inputs.costs:
        return f"{m.key} (no costs configured)"
    if m.family in ("estimation", "proxies") and inputs.task != "regression" and not inputs.score:
        return f"{m.key} (no score column)"
    return None


def _stand_ins(c: dict[str, Any], task: str) -> Iterator[dict[str, Any]]:
    """Conditions on the task's own estimable metrics for one on another task's (realized
    or estimated), with the same relative threshold turned to the metric's direction."""
    key = str(c["metric"])
    if key not in catalogue.entries or task not in ESTIMABLE:
        return
    m = catalogue.get(key)
    realized = m.estimates or m.key
    if not any(realized in keys for keys in ESTIMABLE.values()):
        return
    if c.get("against") == "reference" and c.get("change", "relative") != "relative":
        return  # an absolute change means nothing on another metric's scale
    for own in ESTIMABLE[task]:
        target = catalogue.get(f"estimated_{own}" if m.estimates else own)
        flip = target.lower_is_better != m.lower_is_better
        if not flip:
            yield dict(c, metric=target.key)
            continue
        turned = {"above": "below", "below": "above"}
        yield {
            turned.get(k, k): (-v if k in (*turned, "resolve_at") else v)
            for k, v in dict(c, metric=target.key).items()
        }


__all__ = ["Alerting", "RuleInputs", "default_alerting", "flow_item"]
