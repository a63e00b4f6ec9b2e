"""An SMTP relay that speaks TLS and AUTH, for the mail tests (server/src/mail/tests.rs, beside it):
aiosmtpd (scripts/test installs it into .tools/smtp) on a loopback port, with STARTTLS required
before anything, or TLS from the first byte, and AUTH PLAIN/LOGIN required before MAIL. Each
message it takes is written whole into the dump directory.

    tls_relay.py --mode starttls|tls --port N --cert PEM --key PEM --user U --password P --dump DIR

It prints "ready" once it listens, and runs until its standard input closes.
"""

import argparse
import os
import ssl
import sys
import uuid

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Keep:
    def __init__(self, dump):
        self.dump = dump

    async def handle_DATA(self, server, session, envelope):
        path = os.path.join(self.dump, uuid.uuid4().hex)
        with open(path, "wb") as kept:
            kept.write(envelope.original_content or envelope.content)
        return "250 2.0.0 Ok: kept"


def main():
    parser = argparse.ArgumentParser()
    for name in ("--mode", "--port", "--cert", "--key", "--user", "--password", "--dump"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()

    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == args.user.encode()
            and auth_data.password == args.password.encode()
        )
        return AuthResult(success=ok)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    common = dict(
        hostname="127.0.0.1",
        port=int(args.port),
        authenticator=check,
        auth_required=True,
        server_hostname="localhost",
    )
    if args.mode == "starttls":
        controller = Controller(
            Keep(args.dump),
            tls_context=context,
            require_starttls=True,
            auth_require_tls=True,
            **common,
        )
    else:
        # TLS from the first byte: the connection is TLS before the greeting, so AUTH needs no
        # STARTTLS.
        controller = Controller(
            Keep(args.dump),
            ssl_context=context,
            auth_require_tls=False,
            **common,
        )
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
