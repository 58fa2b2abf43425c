"""The 'ldap' connector (being written)."""

from connectors.base import ActionSpec, Connector


class LdapConnector(Connector):
    name = "ldap"
    actions = {"ping": ActionSpec(name="ping")}

    def ping(self, *, timeout: float) -> dict[str, object]:
        return {}
