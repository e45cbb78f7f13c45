"""``maintenance``, ``maintenance_status`` and ``start_maintenance_coordinator``."""
