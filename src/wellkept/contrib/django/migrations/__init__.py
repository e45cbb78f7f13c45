"""The app's Django migrations: its models are unmanaged (wellkept's own migrations create the
tables), so these only record the models' state for Django."""
