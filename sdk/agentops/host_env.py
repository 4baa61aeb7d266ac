"""The host a session runs on, in the official SDK's shape, from the standard library alone."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import socket
import sys
from typing import Any, Callable

from ._version import __version__


def _safe(fn: Callable[[], Any]) -> Any:
    # Host data is a courtesy: no probe may fail a session start.
    try:
        return fn()
    except Exception:
        return {}


def _gb(n: float) -> str:
    return f"{n / 1024**3:.2f} GB"


def _memory() -> dict:
    info: dict[str, str] = {}
    try:
        with open("/proc/meminfo") as f:
            fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f if ":" in line}
        total, available = fields["MemTotal"], fields.get("MemAvailable", fields.get("MemFree", 0))
        info = {
            "Total": _gb(total),
            "Available": _gb(available),
            "Used": _gb(total - available),
            "Percentage": f"{100 * (total - available) / total:.1f}%",
        }
    except (OSError, KeyError, ValueError, ZeroDivisionError):
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            info = {"Total": _gb(total)}
        except (ValueError, OSError, AttributeError):
            pass
    return info


def _disk() -> dict:
    usage = shutil.disk_usage(os.getcwd())
    return {
        "/": {
            "Mountpoint": os.path.abspath(os.sep),
            "Total": _gb(usage.total),
            "Used": _gb(usage.used),
            "Free": _gb(usage.free),
            "Percentage": f"{100 * usage.used / usage.total:.1f}%" if usage.total else "0%",
        }
    }


def _cpu() -> dict:
    cores = os.cpu_count()
    details: dict[str, Any] = {"Total cores": cores}
    if hasattr(os, "sched_getaffinity"):
        details["Usable cores"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        details["Load average (1 min)"] = round(os.getloadavg()[0], 2)
    details["Processor"] = platform.processor() or platform.machine()
    return details


def _packages() -> dict:
    return {
        "Installed Packages": {
            str(d.metadata.get("Name")): str(d.version)
            for d in importlib.metadata.distributions()
            if d.metadata.get("Name")
        }
    }


def get_host_env(opt_out: bool = False) -> dict:
    """OS, Python, hostname, CPU, memory, disk, working directory and installed packages;
    nothing at all with opt_out (env_data_opt_out=True)."""
    if opt_out:
        return {}
    return {
        "SDK": _safe(
            lambda: {
                "AgentOps SDK Version": f"selfhosted-{__version__}",
                "Python Version": platform.python_version(),
                "Python Implementation": platform.python_implementation(),
                "Python Executable": sys.executable,
            }
        ),
        "OS": _safe(
            lambda: {
                "Hostname": socket.gethostname(),
                "OS": platform.system(),
                "OS Version": platform.version(),
                "OS Release": platform.release(),
            }
        ),
        "CPU": _safe(_cpu),
        "RAM": _safe(_memory),
        "Disk": _safe(_disk),
        "Installed Packages": _safe(_packages),
        "Project Working Directory": _safe(lambda: {"Project Working Directory": os.getcwd()}),
        "Virtual Environment": _safe(
            lambda: {"Virtual Environment": os.environ.get("VIRTUAL_ENV") or sys.prefix}
        ),
    }
