"""Comparing keyed records between two sources: reading each side as records (`sources`),
spilling them to a scratch SQLite file and comparing there (`compare`), so that neither side
is ever held whole in memory."""
