"""Per-task binary labels of a manifest: its ``label:<task>`` columns, or a finding read off its tags.

A multi-task experiment (``tasks = [...]`` in the experiment TOML) asks one binary question
per finding. Each task's label per row comes from

* the manifest's column ``label:<task>`` when it has one (a CSV's own columns, or columns
  written from CheXpert/MeSH findings). A cell is positive (``1``, ``1.0``, ``true``,
  ``yes``, ``positive`` or the task's name), negative (``0``, ``0.0``, ``false``, ``no``,
  ``negative``, ``other``), uncertain (``-1``, ``-1.0``, ``uncertain``: the CheXpert -1,
  read under the uncertain policy) or missing (empty, NaN spellings: the row is left out of
  *that task only*); anything else is an error naming the row and the column;
* else the row's finding tags (OpenI MeSH findings, MIMIC's CheXpert findings) under the rule
  ``finding_vs_rest:<task>``, with the row's ``uncertain_tags`` (CheXpert -1) read under the
  policy (:func:`pipeline.labels.rules.apply_label_rule`).

Labels are ``<task>`` (positive) and ``other``, as the single-task rule ``finding_vs_rest``
names them. Uncertain policies: ``zeros`` (U-Zeros, -1 is negative), ``ones`` (U-Ones, -1 is
positive), ``ignore`` (U-Ignore, the row is left out of that task).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from pipeline.errors import ConfigError, ManifestError
from pipeline.labels.rules import UNCERTAIN_POLICY_NAMES, apply_label_rule
from pipeline.labels.vocabulary import OTHER
from pipeline.manifest import is_missing_label

#: prefix of a manifest's per-task label columns: ``label:<task>``.
TASK_PREFIX = "label:"
_TASK_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_POSITIVE = frozenset({"1", "1.0", "true", "yes", "positive"})
_NEGATIVE = frozenset({"0", "0.0", "false", "no", "negative", OTHER})
_UNCERTAIN = frozenset({"-1", "-1.0", "uncertain"})
_SHOW = 5


@dataclass(frozen=True)
class TaskLabels:
    """One task's labels: ``labels[i]`` is ``task``, ``other`` or ``""`` (left out, because
    ``reasons[i]``); ``source`` says where they come from (part of the task's rule id)."""

    task: str
    labels: tuple[str, ...]
    reasons: tuple[str | None, ...]
    source: str

    @property
    def rule_id(self) -> str:
        """The label rule id of the task (enters its split plan's name and its cell keys)."""
        return f"task:{self.task}|{self.source}"


def check_task_name(task: str, where: str) -> str:
    """``task`` if it is a valid task name (lower-case letters, digits, ``_.-``)."""
    if not isinstance(task, str) or not _TASK_NAME.fullmatch(task):
        raise ConfigError(f"{where}: task {task!r} is not a valid task name; use lower-case "
                          "finding names such as 'cardiomegaly' or 'effusion'")
    return task


def task_columns(frame: pd.DataFrame) -> tuple[str, ...]:
    """The tasks of the manifest's ``label:<task>`` columns, in column order."""
    return tuple(str(c)[len(TASK_PREFIX):] for c in frame.columns
                 if str(c).startswith(TASK_PREFIX) and len(str(c)) > len(TASK_PREFIX))


def _check_policy(policy: str) -> str:
    if policy not in UNCERTAIN_POLICY_NAMES:
        raise ConfigError(f"uncertain policy {policy!r} is invalid; use one of "
                          f"{', '.join(UNCERTAIN_POLICY_NAMES)}")
    return policy


def _from_column(frame: pd.DataFrame, task: str, policy: str, source: str) -> TaskLabels:
    column = TASK_PREFIX + task
    labels: list[str] = []
    reasons: list[str | None] = []
    bad: list[str] = []
    for sid, raw in zip(frame["sample_id"].astype(str), frame[column], strict=True):
        value = "" if raw is None or (isinstance(raw, float) and raw != raw) else str(raw)
        key = value.strip().lower()
        if is_missing_label(value):
            labels.append("")
            reasons.append(f"{column}: missing")
        elif key in _POSITIVE or key == task:
            labels.append(task)
            reasons.append(None)
        elif key in _NEGATIVE:
            labels.append(OTHER)
            reasons.append(None)
        elif key in _UNCERTAIN:
            if policy == "ignore":
                labels.append("")
                reasons.append(f"{column}: uncertain (policy ignore)")
            else:
                labels.append(task if policy == "ones" else OTHER)
                reasons.append(None)
        else:
            labels.append("")
            reasons.append(None)
            bad.append(f"{sid}={value!r}")
    if bad:
        more = f" (+{len(bad) - _SHOW} more)" if len(bad) > _SHOW else ""
        raise ManifestError(
            f"{source}: column {column!r} has values that are not a binary label: "
            f"{', '.join(bad[:_SHOW])}{more}. Use 1/0 (or true/false, positive/negative, "
            f"'{task}'/'other'), -1 for uncertain, or leave the cell empty for unknown"
        )
    return TaskLabels(task, tuple(labels), tuple(reasons), f"column:{column}|uncertain={policy}")


def _from_tags(frame: pd.DataFrame, task: str, policy: str, source: str) -> TaskLabels:
    if "tags" not in frame.columns:
        raise ManifestError(
            f"{source} has neither a column '{TASK_PREFIX}{task}' nor a 'tags' column, so task "
            f"{task!r} has no labels; add the column or drop the task from `tasks`"
        )
    uncertain = None
    if "uncertain_tags" in frame.columns:  # CheXpert -1 findings, read under the policy
        uncertain = frame["uncertain_tags"].fillna("").astype(str).tolist()
    tags = frame["tags"].fillna("").astype(str).tolist()
    try:
        assign = apply_label_rule(f"finding_vs_rest:{task}", tags, uncertain=uncertain,
                                  policy=policy)
    except ConfigError as exc:
        raise ConfigError(f"{source}: task {task!r}: {exc}") from None
    reasons = tuple(None if r is None else f"task {task}: {r}" for r in assign.reasons)
    return TaskLabels(task, tuple(lab or "" for lab in assign.labels), reasons,
                      f"finding_vs_rest:finding={task}|uncertain={policy}")


def task_labels(frame: pd.DataFrame, task: str, *, policy: str = "zeros",
                source: str = "manifest") -> TaskLabels:
    """The labels of ``task`` for every row of ``frame`` (see the module docstring)."""
    _check_policy(policy)
    if TASK_PREFIX + task in frame.columns:
        return _from_column(frame, task, policy, source)
    return _from_tags(frame, task, policy, source)


def chexpert_findings() -> tuple[str, ...]:
    """The 13 CheXpert findings (not 'No Finding') as the tags name them, in CheXpert order."""
    from pipeline.labels.tags import normalize_tag
    from pipeline.sources.chexpert import CHEXPERT_COLUMNS

    return tuple(t for t in (normalize_tag(c) for c in CHEXPERT_COLUMNS) if t != "normal")


def resolve_tasks(requested: Sequence[str] | str, frame: pd.DataFrame, source: str) -> tuple[str, ...]:
    """The experiment's tasks. ``"all"``: every ``label:<task>`` column of the manifest; without
    any, on a CheXpert-labelled manifest (MIMIC-CXR: it has ``uncertain_tags``), every CheXpert
    finding that occurs in its tags or uncertain tags."""
    if requested != "all":
        return tuple(requested)
    found = task_columns(frame)
    if found:
        return found
    if "uncertain_tags" in frame.columns and "tags" in frame.columns:
        seen = {t for col in ("tags", "uncertain_tags")
                for cell in frame[col].fillna("").astype(str) for t in cell.split(";") if t}
        found = tuple(t for t in chexpert_findings() if t in seen)
        if found:
            return found
    raise ConfigError(
        f"tasks = \"all\" but {source} has no '{TASK_PREFIX}<task>' column (and no CheXpert "
        "findings); list the findings by name, e.g. tasks = [\"cardiomegaly\", \"effusion\"] "
        "(read off the tags), or add label:<task> columns to the manifest"
    )


def manifest_policy(meta: dict, chosen: str | Sequence[tuple[str, str]] | None = None,
                    task: str | None = None) -> str:
    """The uncertain policy of ``task``: ``chosen`` (the experiment's ``uncertain``: one policy,
    or ``(task, policy)`` pairs, e.g. U-Ones for atelectasis and edema only), else the one the
    manifest was built with (its sidecar's ``uncertain_policy``, e.g. ``U-Ones``), else
    ``zeros``."""
    if isinstance(chosen, str):
        return _check_policy(chosen)
    per_task = dict(chosen or ())
    if task in per_task:
        return _check_policy(per_task[task])
    recorded = str(meta.get("uncertain_policy") or "").strip().lower().removeprefix("u-")
    return recorded if recorded in UNCERTAIN_POLICY_NAMES else "zeros"


def task_of_rule(rule_id: str) -> str | None:
    """The task of a task rule id (:attr:`TaskLabels.rule_id`), None for any other rule."""
    if not str(rule_id).startswith("task:"):
        return None
    return str(rule_id)[len("task:"):].split("|", 1)[0] or None


def labels_for_rule(frame: pd.DataFrame, rule_id: str, source: str = "manifest") -> TaskLabels:
    """The labels of a task rule id on another table (e.g. new data scored by ``predict``),
    read the same way, under the uncertain policy the rule id records."""
    task = task_of_rule(rule_id)
    if task is None:
        raise ConfigError(f"{rule_id!r} is not a task rule id (task:<task>|...)")
    policy = rule_id.rsplit("uncertain=", 1)[-1] if "uncertain=" in rule_id else "zeros"
    return task_labels(frame, task, policy=policy, source=source)
