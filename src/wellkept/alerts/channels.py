"""Where notifications go, each named by a URL.

Two senders are built in and need nothing installed:

- ``json://host[:port]/path`` (``jsons://`` for HTTPS): POSTs one JSON document with Apprise's
  ``version``/``title``/``message``/``type`` fields and the alert itself under ``alert``;
- ``smtp://[user:password@]host[:port]/?to=a@x,b@y[&from=…][&starttls=yes]`` (``smtps://`` for
  implicit TLS): one plain-text email.

``django-email://?to=…`` sends through Django's email backend (the Django integration).
Every other scheme (``mailto://``, ``slack://``, ``ntfy://``, ``msteams://``, ``form://``…) is
handed to Apprise, installed with ``pip install 'wellkept[apprise]'``.
"""

from __future__ import annotations

import hashlib
import json
import smtplib
import socket
import ssl
import urllib.request
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from wellkept.errors import WellkeptError
from wellkept.redact import redact


@dataclass(frozen=True)
class Notice:
    """One notification: an alert that fired (again) or resolved."""

    event: str
    name: str
    target: str
    severity: str
    message: str
    value: float | None = None
    subject: str = ""
    since: str | None = None
    resolved_at: str | None = None
    host: str = field(default_factory=socket.gethostname)

    @property
    def title(self) -> str:
        where = f"{self.target} {self.subject}".strip()
        state = {"resolved": "RESOLVED", "test": "TEST"}.get(self.event, self.severity.upper())
        return f"[wellkept] {state}: {self.name} on {where}"

    @property
    def body(self) -> str:
        lines = [self.message, "", f"alert:    {self.name}", f"target:   {self.target}"]
        if self.subject:
            lines.append(f"subject:  {self.subject}")
        lines += [f"severity: {self.severity}", f"state:    {self.event}"]
        if self.value is not None:
            lines.append(f"value:    {self.value:g}")
        if self.since:
            lines.append(f"since:    {self.since}")
        if self.resolved_at:
            lines.append(f"resolved: {self.resolved_at}")
        lines.append(f"host:     {self.host}")
        return "\n".join(lines) + "\n"

    @property
    def kind(self) -> str:
        """Apprise's notification type."""
        if self.event == "resolved":
            return "success"
        if self.event == "test":
            return "info"
        return "failure" if self.severity == "critical" else "warning"

    def payload(self) -> dict[str, Any]:
        return {"version": "1.0", "title": self.title, "message": self.body, "type": self.kind,
                "alert": {"event": self.event, "name": self.name, "target": self.target,
                          "subject": self.subject, "severity": self.severity,
                          "value": self.value, "message": self.message, "since": self.since,
                          "resolved_at": self.resolved_at, "host": self.host}}


@dataclass(frozen=True)
class Attachment:
    """A file sent with a digest."""

    filename: str
    content: bytes
    media_type: str


@dataclass(frozen=True)
class Digest:
    """A document sent through the channels, such as the scheduled report: a plain-text body,
    and optionally an HTML version (the email's rich part), attachments, and the document as
    data (the JSON webhook's ``report``)."""

    title: str
    body: str
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    data: dict[str, Any] | None = None
    name: str = "report"
    kind: str = "info"

    def payload(self) -> dict[str, Any]:
        return {"version": "1.0", "title": self.title, "message": self.body,
                "type": self.kind, "report": self.data}


#: what a channel sends: an alert's notification or a digest
Message = Notice | Digest


class ChannelError(WellkeptError):
    """A channel could not deliver (the outbox keeps the notification for a later try)."""


class Channel(ABC):
    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def label(self) -> str:
        return redact(self.url)

    @property
    def key(self) -> str:
        """Stable across runs (the outbox matches pending rows to configured channels)."""
        return hashlib.sha256(self.url.encode()).hexdigest()[:32]

    @abstractmethod
    def send(self, notice: Message, timeout: float) -> None:
        """Deliver or raise ChannelError."""


class JsonWebhook(Channel):
    def send(self, notice: Message, timeout: float) -> None:
        u = urlsplit(self.url)
        scheme = "https" if u.scheme == "jsons" else "http"
        url = f"{scheme}://{u.netloc.rsplit('@', 1)[-1]}{u.path or '/'}"
        if u.query:
            url += f"?{u.query}"
        request = urllib.request.Request(
            url, data=json.dumps(notice.payload()).encode(), method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "wellkept"})
        if u.username:
            import base64

            token = base64.b64encode(f"{unquote(u.username)}:{unquote(u.password or '')}"
                                     .encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
        except OSError as exc:  # URLError, HTTPError, timeouts are all OSErrors
            raise ChannelError(f"{self.label}: {exc}") from None


class Smtp(Channel):
    def send(self, notice: Message, timeout: float) -> None:
        u = urlsplit(self.url)
        query = {k: v[-1] for k, v in parse_qs(u.query).items()}
        recipients = [a.strip() for a in query.get("to", "").split(",") if a.strip()]
        if not recipients:
            raise ChannelError(f"{self.label}: name the recipients with ?to=a@example.com")
        host = u.hostname or "localhost"
        sender = query.get("from") or f"wellkept@{socket.gethostname()}"
        msg = EmailMessage()
        msg["Subject"], msg["From"], msg["To"] = notice.title, sender, ", ".join(recipients)
        msg.set_content(notice.body)
        if isinstance(notice, Digest):
            if notice.html:
                msg.add_alternative(notice.html, subtype="html")
            for item in notice.attachments:
                main, _, sub = item.media_type.partition(";")[0].partition("/")
                msg.add_attachment(item.content, maintype=main, subtype=sub or "octet-stream",
                                   filename=item.filename)
        try:
            if u.scheme == "smtps":
                client: smtplib.SMTP = smtplib.SMTP_SSL(host, u.port or 465, timeout=timeout,
                                                        context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(host, u.port or 25, timeout=timeout)
            with client:
                if query.get("starttls", "").lower() in ("1", "yes", "true"):
                    client.starttls(context=ssl.create_default_context())
                if u.username:
                    client.login(unquote(u.username), unquote(u.password or ""))
                client.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelError(f"{self.label}: {exc}") from None


class AppriseChannel(Channel):
    def send(self, notice: Message, timeout: float) -> None:
        import tempfile
        from pathlib import Path

        from wellkept.connectors._drivers import require

        apprise = require("apprise", "apprise", f"The alert channel {self.label}")
        sender = apprise.Apprise()
        if not sender.add(self.url):
            raise ChannelError(f"{self.label}: Apprise does not understand this URL")
        kind = {"success": apprise.NotifyType.SUCCESS, "warning": apprise.NotifyType.WARNING,
                "failure": apprise.NotifyType.FAILURE, "info": apprise.NotifyType.INFO
                }[notice.kind]
        files = notice.attachments if isinstance(notice, Digest) else ()
        with tempfile.TemporaryDirectory(prefix="wellkept-") as folder:
            attach = None
            if files:  # Apprise attaches files by path
                attach = apprise.AppriseAttachment()
                for item in files:
                    path = Path(folder) / item.filename
                    path.write_bytes(item.content)
                    attach.add(str(path))
            if not sender.notify(body=notice.body, title=notice.title, notify_type=kind,
                                 attach=attach):
                raise ChannelError(f"{self.label}: Apprise could not deliver (see its log)")


BUILTIN: dict[str, type[Channel]] = {"json": JsonWebhook, "jsons": JsonWebhook, "smtp": Smtp,
                                     "smtps": Smtp}
#: channels of optional integrations, imported only when a URL uses them
LAZY: dict[str, str] = {"django-email": "wellkept.contrib.django.email:DjangoEmail"}


def channel_for(url: str) -> Channel:
    scheme = urlsplit(url).scheme.lower()
    if scheme in LAZY:
        import importlib

        module, _, name = LAZY[scheme].partition(":")
        cls: type[Channel] = getattr(importlib.import_module(module), name)
        return cls(url)
    return BUILTIN.get(scheme, AppriseChannel)(url)
