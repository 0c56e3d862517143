"""Scripted model organisms with declared profiles. Importing this package registers them:
the XC suite's in `scripted`, the CO suite's in `colluders`, the code setting's in `coders`, the
TG suite's in `training_gamers`."""

from agents.organisms import coders, colluders, sandbaggers, scripted, training_gamers
from agents.organisms.registry import ORGANISMS, Organism, Profile

__all__ = [
    "ORGANISMS",
    "Organism",
    "Profile",
    "coders",
    "colluders",
    "sandbaggers",
    "scripted",
    "training_gamers",
]
