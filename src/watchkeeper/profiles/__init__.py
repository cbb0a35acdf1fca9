"""Profiles: mergeable aggregates of a window × segment, and the engine queries that build them."""

from watchkeeper.profiles.binning import Binning
from watchkeeper.profiles.compute import ALL, Key, Segment, Source, Windowing, compute_profiles
from watchkeeper.profiles.types import ColumnProfile, Profile, merge_all

__all__ = [
    "ALL",
    "Binning",
    "ColumnProfile",
    "Key",
    "Profile",
    "Segment",
    "Source",
    "Windowing",
    "compute_profiles",
    "merge_all",
]
