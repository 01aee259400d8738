"""Emulators of the services, served on 127.0.0.1: ``toolkit.sandbox.start()``; ``discover()`` finds one
running in this process or another (``toolkit sandbox``, ``./run lab``)."""

from .server import (EMULATORS, Emulator, FaultConfig, Sandbox, available_services, discover, running_sandboxes,
                     start)

__all__ = ["start", "discover", "Sandbox", "Emulator", "FaultConfig", "EMULATORS", "available_services",
           "running_sandboxes"]
