"""Twisted's `ssl:` server endpoint, echoing: the peer of our `tls:` client in tests/twisted.rs.

Usage: ssl_echo.py DESCRIPTION
Listens on DESCRIPTION with serverFromString, prints "port N" once listening, and exits when
its standard input closes (the test ends) or after 120 seconds at most.
"""
import sys

from twisted.internet import reactor, stdio
from twisted.internet.endpoints import serverFromString
from twisted.internet.protocol import Factory, Protocol


class Echo(Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


class StopOnClose(Protocol):
    def connectionLost(self, reason):
        if reactor.running:
            reactor.stop()


def listening(port):
    print(f"port {port.getHost().port}", flush=True)


def failed(failure):
    print(f"error {failure.getErrorMessage()}", flush=True)
    reactor.stop()


def main():
    endpoint = serverFromString(reactor, sys.argv[1])
    endpoint.listen(Factory.forProtocol(Echo)).addCallbacks(listening, failed)
    stdio.StandardIO(StopOnClose())
    reactor.callLater(120, reactor.stop)
    reactor.run()


if __name__ == "__main__":
    main()
