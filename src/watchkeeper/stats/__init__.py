"""Statistics: pure functions from profiles to numbers. They never see raw rows."""
