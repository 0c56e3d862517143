"""Monitors. Importing this package registers every monitor in `MONITORS`."""

from control.monitors import builtin
from control.monitors.base import Monitor, MonitorInput, MonitorVerdict
from control.monitors.registry import MONITORS

__all__ = ["MONITORS", "Monitor", "MonitorInput", "MonitorVerdict", "builtin"]
