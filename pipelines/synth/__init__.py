"""The synthetic audio-visual world (SPEC section 11): scenes, rendering, encoding, upstream lists, orchestration."""

from pipelines.synth.world import generate_world, plan_world, write_specs

__all__ = ["generate_world", "plan_world", "write_specs"]
