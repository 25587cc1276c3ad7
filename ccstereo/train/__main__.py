"""``python -m ccstereo.train`` runs ``ccs-train``: what ``torchrun --nproc_per_node N -m ccstereo.train ...`` starts
on every rank (through ``pipelines.entry.launch``, so that Ctrl-C while torch is imported is the one line too)."""

from pipelines.entry import launch

if __name__ == "__main__":
    launch("ccstereo.cli:train_command", "ccs-train")
