"""The machine wellkept runs on: CPU, memory, load and disks (the implicit ``host`` target)."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from wellkept.connector import Connector, Ping, StatsReport
from wellkept.records import Metrics


class HostConnector(Connector):
    """This machine (``host://localhost``); always present as the target named ``host``."""

    name = "host"
    summary = "this machine: CPU, memory, load and disks (psutil)"

    def identity(self) -> str:
        return f"host:{socket.gethostname()}"

    def file_root(self) -> None:
        """File kinds on the host take paths relative to the config file's folder."""
        return None

    def ping(self) -> Ping:
        t0 = time.perf_counter()
        hostname = socket.gethostname()
        return Ping(latency_ms=(time.perf_counter() - t0) * 1000, version=os.uname().sysname,
                    details={"hostname": hostname})

    @staticmethod
    def cpu_percent(interval: float = 0.25) -> float:
        """The machine's CPU use over ``interval`` seconds, leaving out wellkept's own process:
        a health check measured while it starts its drivers would otherwise see itself."""
        import time

        import psutil

        me = psutil.Process()

        def busy() -> tuple[float, float, float]:
            t = psutil.cpu_times()
            own = me.cpu_times()
            total = sum(t)
            idle = t.idle + getattr(t, "iowait", 0.0)
            return total, total - idle, own.user + own.system

        total0, busy0, own0 = busy()
        time.sleep(interval)
        total1, busy1, own1 = busy()
        elapsed = total1 - total0
        if elapsed <= 0:
            return 0.0
        others = max((busy1 - busy0) - (own1 - own0), 0.0)
        return round(min(100.0 * others / elapsed, 100.0), 1)

    @staticmethod
    def figures(disks: list[str]) -> dict[str, Any]:
        """CPU (see ``cpu_percent``), memory, load and the usage of the filesystem holding
        each path in ``disks``; a path that cannot be read is reported in ``errors`` rather
        than failing the rest."""
        import psutil

        mem = psutil.virtual_memory()
        load1, load5, load15 = os.getloadavg()
        rows: list[dict[str, Any]] = []
        errors: list[str] = []
        for path in disks:
            try:
                usage = psutil.disk_usage(path)
            except OSError as exc:
                errors.append(f"host: disk {path}: {exc.strerror or exc}")
                continue
            rows.append({"path": path, "percent": usage.percent, "total_bytes": usage.total,
                         "free_bytes": usage.free})
        return {"cpu_percent": HostConnector.cpu_percent(0.2),
                "memory_percent": mem.percent, "load": [round(v, 2) for v in
                                                        (load1, load5, load15)],
                "cpu_count": psutil.cpu_count(), "disk": rows, "errors": errors}

    def collect_stats(self, params: Any) -> StatsReport:
        import psutil

        mem = psutil.virtual_memory()
        disks: list[dict[str, Any]] = []
        seen = set()
        for part in psutil.disk_partitions(all=False):
            if part.mountpoint in seen:
                continue
            seen.add(part.mountpoint)
            try:
                usage = psutil.disk_usage(part.mountpoint)
            except OSError:  # a mount we may not read (permissions, stale network share)
                continue
            disks.append({"path": part.mountpoint, "percent": usage.percent,
                          "total_bytes": usage.total, "free_bytes": usage.free})
        disks.sort(key=lambda d: d["percent"], reverse=True)
        load1, load5, load15 = os.getloadavg()
        metrics: Metrics = {
            "cpu_percent": psutil.cpu_percent(interval=0.2),
            "memory_percent": mem.percent,
            "load_1m": round(load1, 2),
            "disk_percent_max": max((d["percent"] for d in disks), default=0.0),
        }
        details = {"hostname": socket.gethostname(), "cpu_count": psutil.cpu_count(),
                   "load": [load1, load5, load15], "memory_total_bytes": mem.total,
                   "disk": disks[:params.top]}
        return StatsReport(metrics=metrics, details=details)
