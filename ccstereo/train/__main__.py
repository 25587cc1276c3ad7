"""``python -m ccstereo.train`` runs ``ccs-train``: what ``torchrun --nproc_per_node N -m ccstereo.train ...`` starts
on every rank."""

from ccstereo.cli import train_command

if __name__ == "__main__":
    train_command()
