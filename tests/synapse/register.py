#!/usr/bin/env python3
"""Register a Matrix user on a test Synapse via the shared-secret admin API.

    register.py --url http://127.0.0.1:PORT --secret-file DIR/shared_secret \\
                --user alice --password pw [--admin] [--login-if-exists]

Prints the server's JSON answer on stdout, e.g.
    {"user_id": "@alice:localhost", "access_token": "...", "device_id": "...",
     "home_server": "localhost"}

Protocol (https://element-hq.github.io/synapse/latest/admin_api/register_api.html):
GET /_synapse/admin/v1/register -> {"nonce": N}; then POST the same path with
nonce, username, password, admin and
mac = hex(HMAC-SHA1(secret, N \\0 user \\0 password \\0 "admin"|"notadmin")).
A nonce is single-use and expires after 60 s.

With --login-if-exists, a user that is already registered (M_USER_IN_USE, e.g.
after a restart on the same DIR) is logged in with the password instead,
printing the same fields (a new device/access token).

Standard library only. Exit status: 0 ok, 1 HTTP/Matrix error, 2 usage.
"""

import argparse
import hashlib
import hmac
import json
import sys
import urllib.error
import urllib.request


class MatrixError(Exception):
    def __init__(self, status, body):
        self.status = status
        self.body = body
        try:
            self.errcode = json.loads(body).get("errcode")
        except (ValueError, AttributeError):
            self.errcode = None
        super().__init__(f"HTTP {status}: {body}")


def request(method, url, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        raise MatrixError(e.code, e.read().decode("utf-8", "replace")) from None


def register(base, secret, user, password, admin):
    endpoint = f"{base}/_synapse/admin/v1/register"
    nonce = request("GET", endpoint)["nonce"]
    mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha1)
    mac.update(nonce.encode("utf-8"))
    mac.update(b"\x00")
    mac.update(user.encode("utf-8"))
    mac.update(b"\x00")
    mac.update(password.encode("utf-8"))
    mac.update(b"\x00")
    mac.update(b"admin" if admin else b"notadmin")
    return request(
        "POST",
        endpoint,
        {
            "nonce": nonce,
            "username": user,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        },
    )


def login(base, user, password):
    return request(
        "POST",
        f"{base}/_matrix/client/v3/login",
        {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password,
        },
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8008")
    p.add_argument("--secret-file", required=True, help="file holding registration_shared_secret")
    p.add_argument("--user", required=True, help="localpart, e.g. alice")
    p.add_argument("--password", required=True)
    p.add_argument("--admin", action="store_true", help="make the user a server admin")
    p.add_argument(
        "--login-if-exists",
        action="store_true",
        help="if the user already exists, log in with the password instead",
    )
    a = p.parse_args()
    base = a.url.rstrip("/")
    try:
        with open(a.secret_file, encoding="utf-8") as f:
            secret = f.read().strip()
    except OSError as e:
        print(f"register.py: cannot read secret: {e}", file=sys.stderr)
        return 2
    if not secret:
        print(f"register.py: {a.secret_file} is empty", file=sys.stderr)
        return 2
    try:
        try:
            out = register(base, secret, a.user, a.password, a.admin)
        except MatrixError as e:
            if not (a.login_if_exists and e.errcode == "M_USER_IN_USE"):
                raise
            out = login(base, a.user, a.password)
    except MatrixError as e:
        print(f"register.py: {e}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as e:
        print(f"register.py: cannot reach {base}: {e}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
