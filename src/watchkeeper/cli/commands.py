"""The whole command line: the group from `main` with every command module's commands on it.

The one place that knows all the command modules; they import `main` for what they share
and nothing of each other, and `main` imports none of them.
"""

from __future__ import annotations

from watchkeeper.cli.alerts import COMMANDS as ALERTS
from watchkeeper.cli.base import main
from watchkeeper.cli.ingest import COMMANDS as INGEST
from watchkeeper.cli.monitor import COMMANDS as MONITOR
from watchkeeper.cli.service import COMMANDS as SERVICE

__all__ = ["main"]

for _command in (*INGEST, *MONITOR, *ALERTS, *SERVICE):
    main.add_command(_command)
