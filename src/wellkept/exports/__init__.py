"""Writing a query's rows to files: column mapping and value formats (`columns`), streaming
CSV / JSONL / Parquet writers with compression (`writers`), dated names and their retention
(`naming`)."""
