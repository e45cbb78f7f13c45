"""Daily data files merged into monthly ones with DuckDB: find them by a date in their name
(`naming`), merge one month with its exact duplicates dropped and the counts proven
(`merge`)."""
