"""txtorcon's own endpoints as the peer of `endpoints-tor`'s tests.

    peer.py server DESCRIPTION   serve an echo on `serverFromString(DESCRIPTION)` (txtorcon's
                                 `onion:`), print `ADDRESS NAME.onion` once published, run
                                 until stdin closes
    peer.py client DESCRIPTION   connect with `clientFromString(DESCRIPTION)` (txtorcon's
                                 `tor:`), send a line, print `ECHO <what came back>`
"""

import sys

from twisted.internet import defer, endpoints, protocol, task
from twisted.internet.stdio import StandardIO

import txtorcon  # noqa: F401  (registers the `onion:` and `tor:` endpoint parsers)


class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data)

    def readConnectionLost(self):
        self.transport.loseWriteConnection()


class Quit(protocol.Protocol):
    def __init__(self, done):
        self.done = done

    def connectionLost(self, reason):
        if not self.done.called:
            self.done.callback(None)


class Line(protocol.Protocol):
    def __init__(self, done):
        self.done = done
        self.got = b""

    def connectionMade(self):
        # No half-close: Tor would end the whole stream before the echo came back.
        self.transport.write(b"hello from txtorcon\n")

    def dataReceived(self, data):
        self.got += data
        if b"\n" in self.got:
            self.transport.loseConnection()

    def connectionLost(self, reason):
        if not self.done.called:
            self.done.callback(self.got)


@defer.inlineCallbacks
def main(reactor, mode, description):
    if mode == "server":
        ep = endpoints.serverFromString(reactor, description)
        port = yield ep.listen(protocol.Factory.forProtocol(Echo))
        host = port.getHost()
        print("ADDRESS", host.onion_uri, flush=True)
        done = defer.Deferred()
        StandardIO(Quit(done), reactor=reactor)
        yield done
        yield port.stopListening()
    else:
        ep = endpoints.clientFromString(reactor, description)
        done = defer.Deferred()
        f = protocol.Factory()
        f.protocol = lambda: Line(done)
        yield ep.connect(f)
        got = yield done
        print("ECHO", got.decode(errors="replace").strip(), flush=True)


if __name__ == "__main__":
    task.react(main, sys.argv[1:])
