"""``ccs-data``: the command-line layer over the pipeline library (argument parsing only).

Each stage's commands live in ``pipelines/commands_<stage>.py`` and are registered here.
"""

from __future__ import annotations

import click

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
def main() -> None:
    """Acquire, clean and shard the binaural audio-visual datasets (MUSIC-Stereo, YT-MUSIC, YT-CLEAN,
    FAIR-Play), or generate and serve the built-in synthetic world that mirrors them offline.

    Data flow: fetch -> prepare -> shard -> verify; status reports each stage.
    """


def _register() -> None:
    # one import per stage; each module defines its click commands and adds them to ``main``
    import pipelines.commands_fetch  # noqa: F401  (fetch, status)
    import pipelines.commands_prepare  # noqa: F401  (prepare, shard, verify, projections)
    import pipelines.commands_world  # noqa: F401  (synth, serve)


_register()
