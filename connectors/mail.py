"""The 'mail' connector (being written)."""

from connectors.base import ActionSpec, Connector


class MailConnector(Connector):
    name = "mail"
    actions = {"ping": ActionSpec(name="ping")}

    def ping(self, *, timeout: float) -> dict[str, object]:
        return {}
