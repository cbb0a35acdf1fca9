"""Profiles: mergeable aggregates of a window × segment, and the engine queries that build them."""

from watchkeeper.profiles.base import ALL, Key, Segment, Source, Windowing
from watchkeeper.profiles.binning import Binning
from watchkeeper.profiles.columns import compute_profiles
from watchkeeper.profiles.counts import BinaryCounts, MulticlassCounts, RankingSums, RegressionSums
from watchkeeper.profiles.types import ColumnProfile, Profile, merge_all

__all__ = [
    "ALL",
    "BinaryCounts",
    "Binning",
    "ColumnProfile",
    "Key",
    "MulticlassCounts",
    "Profile",
    "RankingSums",
    "RegressionSums",
    "Segment",
    "Source",
    "Windowing",
    "compute_profiles",
    "merge_all",
]
