"""The recipe registry: one module per corpus, registered here; the set of dataset names is derived from it.

``RECIPES`` maps a dataset name to its recipe, in the order the project lists the datasets; ``DATASETS`` is that
order. Adding a corpus: a recipe module, a manifest and one entry below (``docs/ADDING_A_CORPUS.md``).
"""

from __future__ import annotations

from pipelines.recipes.base import Recipe
from pipelines.recipes.fair_play import FAIR_PLAY
from pipelines.recipes.music_stereo import MUSIC_STEREO
from pipelines.recipes.youtube360 import YT_CLEAN, YT_MUSIC

RECIPES: dict[str, Recipe] = {r.name: r for r in (MUSIC_STEREO, YT_MUSIC, YT_CLEAN, FAIR_PLAY)}
DATASETS: tuple[str, ...] = tuple(RECIPES)


class UnknownDataset(ValueError):
    """A dataset name no recipe is registered for."""


def recipe_for(dataset: str) -> Recipe:
    """The recipe of ``dataset``; :class:`UnknownDataset` names the known ones otherwise."""
    try:
        return RECIPES[dataset]
    except (KeyError, TypeError):
        raise UnknownDataset(f"unknown dataset {dataset!r} (known: {', '.join(DATASETS)})") from None


def datasets_with_360_video() -> tuple[str, ...]:
    """The datasets whose videos are 360 (they have projection decisions to list)."""
    return tuple(name for name, recipe in RECIPES.items() if recipe.has_360_video)
