"""Build real installed distributions in a folder, for tests.

Each distribution gets a ``<name>-<version>.dist-info`` with METADATA,
RECORD (with hashes, as pip writes it), top_level.txt and INSTALLER, plus its
package files, exactly as an installer would leave them in site-packages. No
``importlib.metadata`` mocking anywhere: the code under test reads these files.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import textwrap
from pathlib import Path
from typing import Iterable, Mapping, Optional

from packaging.utils import canonicalize_name


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def make_dist(site: os.PathLike, name: str, version: str = "1.0", *,
              requires: Iterable[str] = (), extras: Iterable[str] = (),
              files: Optional[Mapping[str, str]] = None, top_level: Optional[Iterable[str]] = None,
              manifest: Optional[str] = None, editable_project: Optional[os.PathLike] = None,
              dedent: bool = True) -> Path:
    """Install a distribution called *name* into the folder *site*; returns its dist-info path.

    ``files`` maps paths relative to *site* to their text. By default one
    package named after the distribution (``foo_bar/__init__.py``) is created.
    ``manifest`` is written as ``<package>/capimport.toml`` (a shipped declaration).
    """
    site = Path(site)
    site.mkdir(parents=True, exist_ok=True)
    package = canonicalize_name(name).replace("-", "_")
    files = dict(files) if files is not None else {f"{package}/__init__.py": ""}
    if manifest is not None:
        files[f"{package}/capimport.toml"] = manifest
    if top_level is None:
        top_level = sorted({p.split("/", 1)[0].removesuffix(".py") for p in files if not p.endswith(".pth")})
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    metadata = [f"Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Provides-Extra: {e}" for e in extras]
    metadata += [f"Requires-Dist: {r}" for r in requires]
    written: dict[str, bytes] = {}
    for rel, text in files.items():
        data = (textwrap.dedent(text) if dedent else text).encode()
        target = site / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written[rel] = data
    info_rel = info.name
    meta_files = {
        "METADATA": ("\n".join(metadata) + "\n\n").encode(),
        "INSTALLER": b"pip\n",
        "top_level.txt": ("\n".join(top_level) + "\n").encode(),
    }
    if editable_project is not None:
        meta_files["direct_url.json"] = json.dumps(
            {"url": Path(editable_project).resolve().as_uri(), "dir_info": {"editable": True}}).encode()
    for rel, data in meta_files.items():
        (info / rel).write_bytes(data)
        written[f"{info_rel}/{rel}"] = data
    lines = [f"{rel},{_record_hash(data)},{len(data)}" for rel, data in written.items()]
    lines.append(f"{info_rel}/RECORD,,")
    (info / "RECORD").write_text("\n".join(lines) + "\n")
    return info


def write_config(folder: os.PathLike, body: str, *, name: str = "pyproject.toml") -> Path:
    """Write a configuration file (dedented) into *folder*; returns its path."""
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body).lstrip())
    return path
