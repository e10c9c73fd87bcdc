"""`breakwater admin create`: the local stack's admins (catalog writes need one).

Admins are never made by registering. In local mode this runs auth's own command,
`flask --app services.auth admin create`, against the stack's auth database; in compose or
Kubernetes run that command where auth runs.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `breakwater admin …` to the `breakwater` parser."""
    admin = subparsers.add_parser(
        "admin", help="make an admin of the local stack (catalog writes need one)",
        description="Admins are made by this command (or by `flask --app services.auth admin "
        "create` where auth runs), never by registering an email.")
    commands = admin.add_subparsers(dest="admin_command", metavar="ACTION", required=True)
    create = commands.add_parser(
        "create", help="create an admin account, or promote an existing one",
        description="Create the admin EMAIL in the local stack's auth database, or promote "
        "the account if it exists (its password is replaced by the one given).")
    create.add_argument("email", metavar="EMAIL", help="the admin's email (their login)")
    create.add_argument("--name", default="Admin", help="display name (default Admin)")
    create.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of standard input "
                        "(default: ask for it)")
    create.add_argument("--var-dir", metavar="PATH",
                        help="state folder of the stack (default $BREAKWATER_VAR_DIR, else ./var)")
    create.set_defaults(func=_create)


def _read_password(from_stdin: bool) -> str:
    from local_stack.options import StackError

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Repeat it: ") != password:
        raise StackError("the two passwords differ: run the command again")
    return password


def _create(args: argparse.Namespace) -> int:
    from local_stack.admins import create_admin
    from local_stack.options import StackError
    from services.common.settings import var_dir

    password = _read_password(args.password_stdin)
    if not password:
        raise StackError("no password given: type one, or send it with --password-stdin")
    var = Path(args.var_dir) if args.var_dir else var_dir()
    print(create_admin(var, args.email, password, name=args.name))
    return 0
