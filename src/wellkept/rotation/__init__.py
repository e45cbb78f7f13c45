"""logrotate's semantics: when a log is due (`due`), what rotating it does (`plan`), doing it
(`execute`) and remembering when it was last done (`state`)."""
