"""Everything fitted once per reference version and stored as data: the bins every window
is counted in, the calibration maps and the loss model that estimate performance without
labels, and the metrics' values on the reference."""

from watchkeeper.reference.profile import (
    ColumnRole,
    ReferenceProfile,
    column_roles,
    fit,
    latency_binning,
    top_values,
)

__all__ = [
    "ColumnRole",
    "ReferenceProfile",
    "column_roles",
    "fit",
    "latency_binning",
    "top_values",
]
