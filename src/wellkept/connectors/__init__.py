"""Connectors, one module per engine. Only these modules know drivers and SQL dialects."""
