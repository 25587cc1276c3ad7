"""Dataset specs of the synthetic world: the real manifests with every URL pointed at the world on loopback."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from pipelines.io import atomic_write_text, sha256_file
from pipelines.spec import DatasetSpec, load_spec
from pipelines.synth.plan import FAIRPLAY_ARCHIVE_DIR, MEDIA_EXT, UPSTREAM_DIRS, WORLD_DATASETS


def spec_for_world(out: Path, dataset: str, port: int) -> DatasetSpec:
    """The real manifest of ``dataset`` with every URL pointed at the world served on ``port``."""
    real = load_spec(dataset=dataset)
    base = f"http://127.0.0.1:{port}"
    lists = []
    for lf in real.lists:
        rel = f"{UPSTREAM_DIRS[dataset]}/{lf.path}"
        path = out / rel
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the world has no file for list {lf.path!r} of manifests/{dataset}.toml")
        lists.append(replace(lf, url=f"{base}/{rel}", sha256=sha256_file(path)))
    archives = []
    for ar in real.archives:
        rel = f"{FAIRPLAY_ARCHIVE_DIR}/{ar.name}"
        path = out / rel
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the world has no archive {ar.name!r} of manifests/{dataset}.toml")
        archives.append(replace(ar, url=f"{base}/{rel}", sha256=sha256_file(path)))
    media_url = None
    if real.media_url is not None:
        media_url = f"{base}/media/{{id}}.{MEDIA_EXT[dataset]}"
    return replace(
        real,
        lists=tuple(lists),
        archives=tuple(archives),
        media_url=media_url,
        description=f"Synthetic world (ccs-data synth) mirroring: {real.description}",
        path=None,
    )


def write_specs(
    out: str | Path, port: int, specs_dir: str | Path | None = None, *, skip_missing: bool = False
) -> dict[str, Path]:
    """(Re)write the four world specs for ``port`` (default folder ``out/specs``); fast (hashes files only).

    ``skip_missing``: leave out a dataset whose upstream files are absent (a partial world) instead of raising.
    """
    out = Path(out)
    specs_dir = Path(specs_dir) if specs_dir is not None else out / "specs"
    paths = {}
    for dataset in WORLD_DATASETS:
        try:
            spec = spec_for_world(out, dataset, port)
        except FileNotFoundError:
            if skip_missing:
                continue
            raise
        path = specs_dir / f"{dataset}.toml"
        atomic_write_text(path, spec_to_toml(spec))
        paths[dataset] = path
    return paths


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def spec_to_toml(spec: DatasetSpec) -> str:
    """A spec in the schema of ``pipelines/spec.py`` (keys with value None are left out)."""
    lines = ["# Written by `ccs-data synth` / write_specs: the real manifest pointed at the loopback world."]
    top = {
        "name": spec.name,
        "description": spec.description,
        "source": spec.source,
        "media_url": spec.media_url,
        "audio": spec.audio,
        "id_format": spec.id_format,
        "min_lr_diff": spec.min_lr_diff,
    }
    lines += [f"{k} = {_toml_value(v)}" for k, v in top.items() if v is not None]
    for ar in spec.archives:
        lines += ["", "[[archives]]"] + [f"{k} = {_toml_value(v)}" for k, v in asdict(ar).items() if v is not None]
    for lf in spec.lists:
        lines += ["", "[[lists]]"] + [f"{k} = {_toml_value(v)}" for k, v in asdict(lf).items() if v is not None]
    for pr in spec.protocols:
        lines += ["", "[[protocols]]"] + [f"{k} = {_toml_value(v)}" for k, v in asdict(pr).items() if v is not None]
    return "\n".join(lines) + "\n"
