"""Emulators of the five services, served on 127.0.0.1: ``toolkit.sandbox.start()``."""

from .server import EMULATORS, Emulator, FaultConfig, Sandbox, available_services, running_sandboxes, start

__all__ = ["start", "Sandbox", "Emulator", "FaultConfig", "EMULATORS", "available_services", "running_sandboxes"]
