"""``tqs keys create|list|revoke`` and ``tqs rotate-key``: the API's keys, and the key of personal data."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from engine import apikeys
from engine.personal import UnreadableSecret, cipher_for
from engine.rekey import rotate_personal_data, values_not_under
from engine.services import Services
from engine.terminal import print_table, progress_bars


def add_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    keys = command("keys", _usage, "make, list and revoke named API keys (each stored only as a digest)")
    actions = keys.add_subparsers(metavar="ACTION")
    create_cmd = actions.add_parser("create", help="make a key and print it (the only time it is shown)")
    create_cmd.add_argument("name", help="what logs and the audit trail call it, e.g. rails-production")
    create_cmd.add_argument("--scope", choices=apikeys.SCOPES, default="ingest",
                            help="ingest: send sessions; read: read them; admin: both, and change rule settings "
                                 "(default: ingest)")
    create_cmd.set_defaults(command=create_key)
    list_cmd = actions.add_parser("list", help="every key's name, scope, and when it was made or revoked")
    list_cmd.set_defaults(command=list_keys)
    revoke_cmd = actions.add_parser("revoke", help="refuse a key from now on (within a few seconds everywhere)")
    revoke_cmd.add_argument("name")
    revoke_cmd.set_defaults(command=revoke_key)
    command("rotate-key", rotate_key, "re-seal every stored student name and reason under the first key of "
            "TQS_SECRET_KEY (after putting a new key in front of the old one)")


def _usage(services: Services, args: argparse.Namespace) -> int:
    print("tqs keys: name an action: create NAME [--scope ingest|read|admin], list, or revoke NAME", file=sys.stderr)
    return 2


def create_key(services: Services, args: argparse.Namespace) -> int:
    try:
        key = apikeys.create_key(services.database, args.name, args.scope, services.clock())
    except apikeys.ApiKeyError as exc:
        print(f"tqs keys create: {exc}", file=sys.stderr)
        return 1
    print(key)
    print(f"Key {args.name!r} ({args.scope}) made. It is shown only now: store it in your secrets manager.",
          file=sys.stderr)
    return 0


def list_keys(services: Services, args: argparse.Namespace) -> int:
    rows = [(key.name, key.scope, key.created_at.strftime("%Y-%m-%d %H:%M"),
             key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "")
            for key in apikeys.list_keys(services.database)]
    print_table([("name", "left"), ("scope", "left"), ("created (UTC)", "left"), ("revoked (UTC)", "left")], rows,
                caption=None if rows else "No named keys yet: tqs keys create NAME --scope ingest")
    return 0


def revoke_key(services: Services, args: argparse.Namespace) -> int:
    try:
        apikeys.revoke_key(services.database, args.name, services.clock())
    except apikeys.ApiKeyError as exc:
        print(f"tqs keys revoke: {exc}", file=sys.stderr)
        return 1
    print(f"Key {args.name!r} revoked: the API refuses it within {apikeys.CACHE_SECONDS:g} s.", file=sys.stderr)
    return 0


def rotate_key(services: Services, args: argparse.Namespace) -> int:
    settings = services.settings
    try:
        with progress_bars() as progress:
            counts = rotate_personal_data(services.database, cipher_for(settings.secret_keys, settings.data_dir),
                                          progress)
    except UnreadableSecret as exc:
        print(f"tqs rotate-key: {exc}: list the old key after the new one in TQS_SECRET_KEY and run it again "
              "(the rows done so far stay done)", file=sys.stderr)
        return 1
    print("Re-sealed under the first key: " + ", ".join(f"{rows} {table} rows" for table, rows in counts.items())
          + ".")
    left = values_not_under(services.database, cipher_for(settings.secret_keys[:1], settings.data_dir))
    if left:
        print(f"tqs rotate-key: {left} values were written meanwhile by a process still sealing with an old key: "
              "deploy the new TQS_SECRET_KEY to every service, then run tqs rotate-key again before dropping "
              "the old key", file=sys.stderr)
        return 1
    print("Every stored value opens with the first key alone: the old keys may now be dropped from TQS_SECRET_KEY.")
    return 0
