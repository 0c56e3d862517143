"""Scripted model organisms with declared profiles. Importing this package registers them."""

from agents.organisms import scripted
from agents.organisms.registry import ORGANISMS, Organism, Profile

__all__ = ["ORGANISMS", "Organism", "Profile", "scripted"]
