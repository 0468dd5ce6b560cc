"""`rag keys`: make, list, rotate and revoke the API keys of the key file (RAG_API__KEYS_FILE), as /admin/keys does
over HTTP; the first admin key is made here, on the machine that holds the file."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from rag.cli.shared import JsonOption, app, err, out, user_errors
from rag.settings import Settings

keys_app = typer.Typer(help="API keys: the groups whose documents each may read, its collections, admins.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _store():  # noqa: ANN202 - KeyStore
    from rag.api.keys import KeyStore

    with user_errors():
        return KeyStore(Settings().api.keys_file)


def _issued(entry, key: str, as_json: bool) -> None:  # noqa: ANN001
    if as_json:
        print(json.dumps({"key": key, "entry": entry.public()}))
        return
    out.print(key)
    err.print(f"[dim]{entry.id} ({entry.name}): shown this once; the key file keeps only its hash[/dim]")


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Who or what uses the key.")],
    group: Annotated[list[str] | None, typer.Option("--group", help="A group whose documents it may read "
                                                    "(repeatable; public documents it reads anyway).")] = None,
    collection: Annotated[list[str] | None, typer.Option("--collection", help="A collection it may use "
                                                         "(repeatable; default: all).")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Reads everything and manages keys.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Make a key and print it (only its hash is stored)."""
    entry, key = _store().create(name, groups=tuple(group or ()), collections=tuple(collection or ("*",)),
                                 admin=admin)
    _issued(entry, key, as_json)


@keys_app.command("list")
def list_keys(as_json: JsonOption = False) -> None:
    """Every key: id, name, groups, collections, admin (never the keys themselves)."""
    entries = [entry.public() for entry in _store().entries()]
    if as_json:
        print(json.dumps(entries))
        return
    table = Table("id", "name", "groups", "collections", "admin")
    for entry in entries:
        table.add_row(entry["id"], entry["name"], ", ".join(entry["groups"]) or "-", ", ".join(entry["collections"]),
                      "yes" if entry["admin"] else "")
    out.print(table)


@keys_app.command("rotate")
def rotate(key_id: Annotated[str, typer.Argument(help="The key's id (rag keys list).")], as_json: JsonOption = False) -> None:
    """A new secret for the key; the old one stops working at once, with no restart."""
    from rag.api.keys import UnknownKeyError

    try:
        entry, key = _store().rotate(key_id)
    except UnknownKeyError:
        err.print(f"[red]error:[/red] no key {key_id!r}")
        raise typer.Exit(2) from None
    _issued(entry, key, as_json)


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id (rag keys list).")]) -> None:
    """Remove the key; it stops working at once."""
    from rag.api.keys import UnknownKeyError

    try:
        entry = _store().revoke(key_id)
    except UnknownKeyError:
        err.print(f"[red]error:[/red] no key {key_id!r}")
        raise typer.Exit(2) from None
    err.print(f"revoked {entry.id} ({entry.name})")
