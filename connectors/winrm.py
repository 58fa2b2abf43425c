"""The 'winrm' connector (being written)."""

from connectors.base import ActionSpec, Connector


class WinrmConnector(Connector):
    name = "winrm"
    actions = {"ping": ActionSpec(name="ping")}

    def ping(self, *, timeout: float) -> dict[str, object]:
        return {}
