"""An alert channel that sends through Django's email backend (``MAINTENANCE_NOTIFICATION_EMAILS``).

The channel URL is ``django-email://?to=dba@example.com,devops@example.com`` (``&from=…``
overrides ``DEFAULT_FROM_EMAIL``). Whatever ``EMAIL_BACKEND`` the project uses (SMTP with its
``EMAIL_HOST``/``EMAIL_PORT``/TLS settings, a console or file backend, an API backend such as
Anymail's) carries the message, so alerts go out the way the project's own mail does.
"""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

from wellkept.alerts.channels import Channel, ChannelError, Digest, Message

SCHEME = "django-email"


def channel_url(recipients: list[str]) -> str:
    return f"{SCHEME}://?to=" + ",".join(quote(r, safe="@+") for r in recipients)


class DjangoEmail(Channel):
    """One message per notice or digest, through ``django.core.mail`` (a digest's HTML
    part and attachments included)."""

    def send(self, notice: Message, timeout: float) -> None:
        from django.core.mail import EmailMultiAlternatives, get_connection

        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.url).query).items()}
        recipients = [a.strip() for a in query.get("to", "").split(",") if a.strip()]
        if not recipients:
            raise ChannelError(f"{self.label}: name the recipients with ?to=a@example.com")
        try:
            # the SMTP backend takes a timeout; a backend that does not is built without one
            try:
                connection = get_connection(fail_silently=False, timeout=timeout)
            except TypeError:
                connection = get_connection(fail_silently=False)
            mail = EmailMultiAlternatives(notice.title, notice.body,
                                          query.get("from") or None, recipients,
                                          connection=connection)
            if isinstance(notice, Digest):
                if notice.html:
                    mail.attach_alternative(notice.html, "text/html")
                for item in notice.attachments:
                    mail.attach(item.filename, item.content, item.media_type)
            mail.send()
        except Exception as exc:  # any backend's failure: the outbox retries it later
            raise ChannelError(f"{self.label}: {type(exc).__name__}: {exc}") from None
