"""Daily and weekly reports: one data model (``model``) built from the store (``builder``,
``sections``, ``stats``, ``charts``) and rendered to HTML, JSON or CSV (``render``, ``svg``).

``wellkept report``, ``POST /maintenance/reports/generate`` and the ``report`` task kind (which
mails it through the alert channels) all go through :func:`build_report` and :func:`render`.
"""

from wellkept.reports.builder import build_report
from wellkept.reports.model import REPORT_FORMATS, REPORT_TYPES, Report
from wellkept.reports.render import render

__all__ = ["REPORT_FORMATS", "REPORT_TYPES", "Report", "build_report", "render"]
