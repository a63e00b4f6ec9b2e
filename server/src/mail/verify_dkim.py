#!/usr/bin/env python3
"""Verifies the DKIM signature of the message on standard input with dkimpy (an implementation
independent of Assent's signer), answering the key's DNS lookup with the TXT record given.

    verify_dkim.py <selector> <domain> <txt record>  < message

Prints the signed header list and exits 0 when the signature verifies, 1 when it does not."""
import sys

import dkim

selector, domain, record = sys.argv[1], sys.argv[2], sys.argv[3]
message = sys.stdin.buffer.read()
wanted = f"{selector}._domainkey.{domain}.".encode()


def dns(name, timeout=5):
    return record.encode() if name == wanted else None


verifier = dkim.DKIM(message)
ok = verifier.verify(dnsfunc=dns)
print(b":".join(name.lower() for name, _ in verifier.signed_headers).decode() if ok else "not verified")
sys.exit(0 if ok else 1)
