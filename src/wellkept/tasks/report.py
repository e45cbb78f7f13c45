"""report: build the daily or weekly report and send it through the alert channels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator

from wellkept.context import RunContext
from wellkept.errors import TaskFailed
from wellkept.records import TaskResult
from wellkept.task import Task, TaskParams
from wellkept.types import RunStatus
from wellkept.units import plural


class ReportParams(TaskParams):
    type: Literal["daily", "weekly"] = Field("daily", description=(
        "the last 24 hours or the last 7 days, against the period before"))
    attach: list[Literal["html", "json", "csv"]] = Field([], description=(
        "files attached to the email (the HTML report is its body already); csv has one "
        "row per run"))
    channels: list[str] = Field([], description=(
        "channel URLs to send to (default: the config's alerts.channels)"))
    include_details: bool = Field(False, description=(
        "list every run of the period in the HTML and JSON (long for a busy week)"))
    save_to: str | None = Field(None, description=(
        "also write the report (and its attachments) into this folder"))

    @field_validator("channels")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if "://" not in url:
                raise ValueError(f"{url!r} is not a channel URL; write scheme://…, e.g. "
                                 "smtp://mail:25/?to=ops@example.com")
        return value


@dataclass(frozen=True)
class _Source:
    store: Any
    settings: Any


class Report(Task):
    """Build the daily or weekly report and send it through the alert channels.

    The report is the one `wellkept report` writes: a task summary with success rates,
    durations against the previous period, rows deleted and bytes freed, the failures with
    their errors, backups against their RPO, resource trends, the current advice and the
    charts. An `smtp://…` channel gets one email: a plain-text digest with the HTML report as
    its rich part, plus the `attach` files; a JSON webhook gets the digest and the report as
    data (`report`); Apprise channels (`mailto://…`, `slack://…`) get the title and the digest,
    with the `attach` files where the service takes files (`attach: [html]` mails the HTML
    report as a file through `mailto://`). Each channel is tried a few times at once. The run
    completes when every channel took it, is a partial failure when some did not, and fails
    when none did (naming each channel's error). A dry run builds the report and sends nothing.

    Schedule it like any task (it runs on the implicit `host` target), e.g. daily at 06:00:
    `schedules: {daily_report: {cron: "0 6 * * *", tasks: [mail-report]}}`. Read-only.
    """

    kind = "report"
    Params = ReportParams
    default_timeout = timedelta(minutes=10)
    default_target = "host"

    def run(self, ctx: RunContext) -> TaskResult:
        from wellkept.alerts import AlertCenter
        from wellkept.alerts.channels import Attachment, Digest
        from wellkept.config import AlertSettings
        from wellkept.reports import build_report, render
        from wellkept.reports.render import MEDIA_TYPES, filename, to_text

        p: Any = self.params
        if ctx.settings is None:
            raise TaskFailed("report needs the whole config (run it through the engine)")
        alerts = ctx.settings.alerts
        if p.channels:
            alerts = AlertSettings(channels=p.channels)
        if not alerts.channels and not p.save_to:
            raise TaskFailed("no channel to send the report to: configure alerts.channels, or "
                             "give this task `channels` or `save_to`")
        report = build_report(_Source(ctx.store, ctx.settings), p.type,
                              include_details=p.include_details)
        html = render(report, "html")
        files = [Attachment(filename(report, f), render(report, f).encode(), MEDIA_TYPES[f])
                 for f in p.attach]
        summary = report.summary
        rate = summary["success_rate"]
        title = (f"[wellkept] {p.type} report: {plural(summary['runs'], 'run')}, success "
                 + (f"{rate:g}%" if rate is not None else "n/a")
                 + f", {plural(summary['failures'], 'failure')}")
        metrics: dict[str, float | int] = {"runs_reported": summary["runs"],
                                           "failures_reported": summary["failures"]}
        details: dict[str, Any] = {"period": report.period.to_json(), "title": title}
        if ctx.dry_run:
            return TaskResult(message=f"would send {title!r} to {len(alerts.channels)} "
                              "channel(s)" + (f" and save it in {p.save_to}" if p.save_to
                                              else ""), metrics=metrics, details=details)
        if p.save_to:
            details["saved"] = self._save(ctx, p.save_to, filename(report, "html"), html, files)
        digest = Digest(title=title, body=to_text(report), html=html,
                        attachments=tuple(files), data=report.to_json())
        sent = AlertCenter(alerts, ctx.store).broadcast(digest)
        errors = [f"{label}: {error}" for label, error in sent.items() if error]
        delivered = sum(error is None for error in sent.values())
        metrics.update(channels_delivered=delivered, channels_failed=len(errors))
        details["channels"] = {label: error or "delivered" for label, error in sent.items()}
        status = (RunStatus.COMPLETED if not errors else
                  RunStatus.PARTIAL_FAILURE if delivered or p.save_to else RunStatus.FAILED)
        message = (f"sent the {p.type} report ({summary['runs']} runs) to {delivered} of "
                   f"{len(sent)} channel(s)")
        if "saved" in details:
            message += f"; saved {details['saved'][0]}"
        return TaskResult(status=status, message=message, metrics=metrics, details=details,
                          errors=errors)

    @staticmethod
    def _save(ctx: RunContext, folder: str, name: str, html: str,
              files: list[Any]) -> list[str]:
        path = ctx.resolve_path(folder)
        try:
            path.mkdir(parents=True, exist_ok=True)
            (path / name).write_text(html, encoding="utf-8")
            for item in files:
                (path / item.filename).write_bytes(item.content)
        except OSError as exc:
            raise TaskFailed(f"save_to: cannot write into {path}: {exc.strerror}") from None
        return [str(path / name), *(str(path / f.filename) for f in files)]
