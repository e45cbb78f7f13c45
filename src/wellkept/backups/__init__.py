"""Backups: the artifact pipeline (compression, encryption, checksum), manifests, storage,
the catalog in the history store, retention and verification. Engines plug in through the
connector's ``Dumpable`` capability; nothing here knows an engine."""
