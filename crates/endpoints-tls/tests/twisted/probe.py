"""Exit 0 when Twisted 26.10 with TLS support (pyOpenSSL, service_identity) is importable."""
import sys

try:
    import twisted
    from OpenSSL import SSL  # noqa: F401
    import service_identity  # noqa: F401
except ImportError as e:
    print(f"missing: {e}", file=sys.stderr)
    sys.exit(1)

version = tuple(int(p) for p in twisted.__version__.split(".")[:2])
if version < (26, 10):
    print(f"Twisted {twisted.__version__} is older than 26.10", file=sys.stderr)
    sys.exit(1)
