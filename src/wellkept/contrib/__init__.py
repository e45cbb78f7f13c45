"""Integrations with frameworks that wellkept runs inside (``wellkept.contrib.django``)."""
