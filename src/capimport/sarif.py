"""``capimport audit --format sarif``: the CI gate's problems as SARIF 2.1.0.

One result per evidence location (so that GitHub code scanning shows each
use where it is), one per run-time observation, and one per stale manifest
(at the manifest's ``version`` line). Files inside a site-packages folder are
given relative to a ``uriBaseId`` per folder, declared in
``originalUriBaseIds``; files under the working directory (manifests, the
project's own code) relative to ``%SRCROOT%``, as code scanning expects.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable, Mapping, Optional

from .capabilities import CAPABILITIES, DESCRIPTIONS

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
VERSION = "2.1.0"
INFO_URI = "https://github.com/capimport/capimport"


def _rule(rule_id: str, name: str, short: str, full: str, level: str) -> dict:
    return {"id": rule_id, "name": name, "shortDescription": {"text": short}, "fullDescription": {"text": full},
            "defaultConfiguration": {"level": level}, "properties": {"tags": ["security", "supply-chain"]}}


def _rules() -> list:
    rules = []
    for capability in CAPABILITIES:
        title = "".join(p.title() for p in capability.split("-"))
        rules.append(_rule(
            f"exceeds/{capability}", f"Exceeds{title}", f"Code uses '{capability}' beyond its grant",
            f"The distribution's code uses '{capability}' ({DESCRIPTIONS[capability]}), which its effective "
            "grant does not hold. Review the use, then add the capability to its manifest or remove the "
            "dependency.", "error"))
        rules.append(_rule(
            f"narrowed/{capability}", f"Narrowed{title}",
            f"Code uses '{capability}' that its dependents do not pass on",
            f"The distribution's review grants '{capability}', but the packages that depend on it hold or pass "
            "less, so this code is denied if it is reached. Usually intended; `capimport why` shows the edge.",
            "note"))
        rules.append(_rule(
            f"recorded/{capability}", f"Recorded{title}", f"Used '{capability}' at run time beyond its grant",
            f"capimport's record mode saw the distribution use '{capability}', which its effective grant "
            "does not hold.", "error"))
    rules.append(_rule(
        "stale-manifest", "StaleManifest", "Manifest review does not cover the installed version",
        "The manifest's 'version' range does not include the installed version: the review is stale. "
        "Review what changed and update the range.", "warning"))
    return rules


RULES = _rules()
RULE_INDEX = {rule["id"]: i for i, rule in enumerate(RULES)}


class _Bases:
    """uriBaseIds for the folders results point into."""

    def __init__(self, srcroot: str):
        self.srcroot = os.path.realpath(srcroot)
        self.ids: dict[str, str] = {}

    def location(self, path: str, root: str = "") -> dict:
        full = os.path.realpath(os.path.join(root, path)) if root else os.path.realpath(path)
        if full == self.srcroot or full.startswith(self.srcroot + os.sep):
            return {"uri": _uri(os.path.relpath(full, self.srcroot)), "uriBaseId": "%SRCROOT%"}
        if root:
            base = self.ids.setdefault(os.path.realpath(root), f"ROOT{len(self.ids)}")
            return {"uri": _uri(path), "uriBaseId": base}
        return {"uri": Path(full).as_uri()}

    def declare(self) -> dict:
        out = {"%SRCROOT%": {"uri": Path(self.srcroot).as_uri() + "/"}}
        for folder, base in sorted(self.ids.items(), key=lambda item: item[1]):
            out[base] = {"uri": Path(folder).as_uri() + "/",
                         "description": {"text": "an installed distributions folder (site-packages)"}}
        return out


def _uri(relative: str) -> str:
    from urllib.parse import quote
    return quote(relative.replace(os.sep, "/"))


def _region(line: int, col: int) -> Optional[dict]:
    if line <= 0:
        return None
    region = {"startLine": line}
    if col > 0:
        region["startColumn"] = col
    return region


def _physical(bases: _Bases, path: str, line: int, col: int, root: str = "") -> dict:
    physical = {"artifactLocation": bases.location(path, root)}
    region = _region(line, col)
    if region:
        physical["region"] = region
    return {"physicalLocation": physical}


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:32]


def _parse_location(text: str) -> tuple[str, int]:
    path, sep, line = text.rpartition(":")
    if sep and line.isdigit():
        return path, int(line)
    return text, 0


def to_sarif(problems: Iterable, *, srcroot: Optional[str] = None, tool_version: Optional[str] = None) -> dict:
    """A SARIF 2.1.0 log for :func:`capimport.auditdiff.check`'s problems."""
    if tool_version is None:
        from . import __version__ as tool_version  # type: ignore[no-redef]
    bases = _Bases(srcroot or os.getcwd())
    results = []
    for problem in problems:
        if problem.kind in ("exceeds", "narrowed"):
            rule = f"{problem.kind}/{problem.capability}"
            beyond = "beyond its declared grant" if problem.kind == "exceeds" else "which its dependents narrow away"
            for evidence in problem.evidence:
                message = (f"{problem.name} {problem.version} uses '{evidence.capability}' through "
                           f"{evidence.api} in {evidence.function}, {beyond}.")
                result = _result(rule, "error" if problem.kind == "exceeds" else "note", message, [_physical(bases, evidence.file, evidence.line,
                                                                    evidence.col, problem.root)],
                                 _fingerprint(problem.name, evidence.capability, evidence.file, evidence.api,
                                              evidence.function))
                if problem.manifest:
                    result["relatedLocations"] = [dict(_physical(bases, problem.manifest, problem.manifest_line, 0),
                                                       id=1, message={"text": "the manifest that declares it"})]
                results.append(result)
        elif problem.kind == "recorded":
            rule = f"recorded/{problem.capability}"
            for observation in problem.observations:
                path, line = _parse_location(observation.location)
                locations = [_physical(bases, path, line, 0)] if path else (
                    [_physical(bases, problem.manifest, problem.manifest_line, 0)] if problem.manifest else [])
                results.append(_result(rule, "error", f"{problem.name} used '{observation.capability}' at run time: "
                                                      f"{observation.describe()}", locations,
                                       _fingerprint(problem.name, observation.capability, observation.api,
                                                    observation.location, observation.scope)))
        elif problem.kind == "stale":
            locations = [_physical(bases, problem.manifest, problem.manifest_line, 0)] if problem.manifest else []
            results.append(_result("stale-manifest", "warning", f"{problem.name}: {problem.message}", locations,
                                   _fingerprint(problem.name, "stale", problem.version)))
    run = {
        "tool": {"driver": {"name": "capimport", "version": tool_version, "informationUri": INFO_URI,
                            "rules": RULES}},
        "originalUriBaseIds": bases.declare(),
        "results": results,
    }
    return {"$schema": SCHEMA, "version": VERSION, "runs": [run]}


def _result(rule: str, level: str, message: str, locations: list, fingerprint: str) -> dict:
    result = {"ruleId": rule, "ruleIndex": RULE_INDEX[rule], "level": level, "message": {"text": message},
              "partialFingerprints": {"capimport/v1": fingerprint}}
    if locations:
        result["locations"] = locations
    return result
