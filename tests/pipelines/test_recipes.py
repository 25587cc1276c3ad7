"""The recipe registry (pipelines/recipes): the dataset names derive from it, the stages take their recipe from it,
and a name it does not know is one clear error in every stage."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.fetch import fetch_dataset
from pipelines.prepare import prepare_dataset
from pipelines.recipes import DATASETS, RECIPES, UnknownDataset, datasets_with_360_video, recipe_for
from pipelines.recipes.base import Recipe
from pipelines.spec import SpecError, load_spec
from pipelines.status import dataset_status

UNKNOWN = re.escape("unknown dataset 'nope' (known: music-stereo, yt-music, yt-clean, fair-play)")
GENERIC_STAGES = ("fetch", "prepare", "prepared", "clips", "prepare_checks", "status", "chain", "lists", "cli")


def test_dataset_names_are_the_registered_recipes_in_order():
    assert DATASETS == tuple(RECIPES) == ("music-stereo", "yt-music", "yt-clean", "fair-play")
    for name in DATASETS:
        assert isinstance(recipe_for(name), Recipe) and recipe_for(name).name == name
    assert datasets_with_360_video() == ("yt-music", "yt-clean")


def test_the_cli_offers_the_registered_names():
    for command in ("fetch", "status", "prepare", "shard", "verify"):
        assert tuple(main.commands[command].params[0].type.choices) == DATASETS, command
    assert tuple(main.commands["projections"].params[0].type.choices) == datasets_with_360_video()


def test_generic_stages_never_name_a_dataset():
    root = Path(__file__).resolve().parents[2] / "pipelines"
    for module in GENERIC_STAGES:
        text = (root / f"{module}.py").read_text(encoding="utf-8")
        for name in DATASETS:
            assert f'"{name}"' not in text and f"'{name}'" not in text, (module, name)


def test_every_stage_refuses_an_unknown_name_before_writing(tmp_path):
    with pytest.raises(UnknownDataset, match=UNKNOWN):
        recipe_for("nope")
    with pytest.raises(SpecError, match=UNKNOWN):
        load_spec(dataset="nope")
    spec = replace(load_spec(dataset="music-stereo"), name="nope")
    with pytest.raises(UnknownDataset, match=UNKNOWN):
        fetch_dataset(spec, tmp_path, progress=False)
    with pytest.raises(UnknownDataset, match=UNKNOWN):
        prepare_dataset(spec, tmp_path)
    with pytest.raises(UnknownDataset, match=UNKNOWN):
        dataset_status(tmp_path, "nope")
    assert not any(tmp_path.iterdir())
    result = CliRunner().invoke(main, ["status", "nope", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "'nope' is not one of" in result.output
