"""The synthetic audio-visual world (docs/SPEC.md section 11): scenes, rendering, encoding, upstream lists,
orchestration (``pipelines.synth.world``), and small fake shard sets for model tests (``pipelines.synth.fakeshards``)."""
