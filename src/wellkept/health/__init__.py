"""Health checks: every target and the host at once (check), the score and overall status
(score), and each target's state kept and its changes logged once (transitions)."""

from wellkept.health.check import check_health

__all__ = ["check_health"]
