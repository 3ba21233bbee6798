"""One TLS handshake with Python's ssl module, the same client for every server compared.

Usage: python3 handshake.py PORT [SNI]
Connects to 127.0.0.1:PORT, sends SNI only if given, does not verify (the caller compares
certificates), prints `leaf <hex DER of the server's certificate>`.
"""

import socket
import ssl
import sys

port = int(sys.argv[1])
sni = sys.argv[2] if len(sys.argv) > 2 else None
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname=sni) as tls:
        print("leaf", tls.getpeercert(binary_form=True).hex(), flush=True)
