"""Twisted's client endpoint (clientFromString) to one server: send "ping", read it back.

Usage: python3 tls_client.py DESCRIPTION
Prints `leaf <hex DER of the server's certificate>` and exits 0, or prints the failure and
exits 1. Gives up after 15 seconds.
"""

import sys

from OpenSSL import crypto
from twisted.internet import defer, task
from twisted.internet.endpoints import clientFromString
from twisted.internet.protocol import Factory, Protocol


class Ping(Protocol):
    def __init__(self):
        self.got = b""
        self.done = defer.Deferred()

    def connectionMade(self):
        self.transport.write(b"ping")

    def dataReceived(self, data):
        self.got += data
        if len(self.got) >= 4 and not self.done.called:
            cert = self.transport.getPeerCertificate()
            self.done.callback((self.got, cert))
            self.transport.loseConnection()

    def connectionLost(self, reason):
        if not self.done.called:
            self.done.errback(reason)


async def main(reactor, description):
    endpoint = clientFromString(reactor, description)
    proto = await endpoint.connect(Factory.forProtocol(Ping)).addTimeout(15, reactor)
    got, cert = await proto.done.addTimeout(15, reactor)
    if got != b"ping":
        raise RuntimeError(f"echo was {got!r}")
    print("leaf", crypto.dump_certificate(crypto.FILETYPE_ASN1, cert).hex(), flush=True)


def run(reactor, description):
    return defer.Deferred.fromCoroutine(main(reactor, description))


if __name__ == "__main__":
    task.react(run, [sys.argv[1]])
