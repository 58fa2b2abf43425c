"""The 'ssh' connector (being written)."""

from connectors.base import ActionSpec, Connector


class SshConnector(Connector):
    name = "ssh"
    actions = {"ping": ActionSpec(name="ping")}

    def ping(self, *, timeout: float) -> dict[str, object]:
        return {}
