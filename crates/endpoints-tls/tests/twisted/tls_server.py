"""Twisted's server endpoint (serverFromString), echoing every connection.

Usage: python3 tls_server.py DESCRIPTION
Prints `port <number>` once listening; stops when its standard input closes.
"""

import sys

from twisted.internet import defer, task
from twisted.internet.endpoints import serverFromString
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.stdio import StandardIO


class Echo(Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


class WatchStdin(Protocol):
    def __init__(self, done):
        self.done = done

    def connectionLost(self, reason):
        if not self.done.called:
            self.done.callback(None)


async def main(reactor, description):
    port = await serverFromString(reactor, description).listen(Factory.forProtocol(Echo))
    print("port", port.getHost().port, flush=True)
    done = defer.Deferred()
    StandardIO(WatchStdin(done), reactor=reactor)
    await done


def run(reactor, description):
    return defer.Deferred.fromCoroutine(main(reactor, description))


if __name__ == "__main__":
    task.react(run, [sys.argv[1]])
