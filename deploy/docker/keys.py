"""Write the token key pair once (`entrypoint.sh keys`): a compose one-shot job.

Auth signs with the private half; every verifier mounts only the public half, so the two go
to two folders (two volumes). An existing private key is kept, and its public half rewritten
when missing, so the job is safe to run on every `docker compose up`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from services.common.tokens import ensure_keypair

KEYS = Path("/var/lib/breakwater/keys")


def public_pem_of(private_pem: bytes) -> str:
    """The SubjectPublicKeyInfo PEM of a PEM private key."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and make sure both halves exist."""
    parser = argparse.ArgumentParser(prog="keys", description=__doc__.splitlines()[0])
    parser.add_argument("--private", type=Path, default=KEYS / "private" / "token_ed25519.pem")
    parser.add_argument("--public", type=Path, default=KEYS / "public" / "token_ed25519.pub.pem")
    args = parser.parse_args(argv)
    created = not args.private.exists()
    ensure_keypair(args.private, args.public)
    if not args.public.exists():
        args.public.write_text(public_pem_of(args.private.read_bytes()))
    print(f"token keys {'created' if created else 'kept'}: {args.private}, {args.public}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
