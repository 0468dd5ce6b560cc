"""API keys kept in a file, hashed: each belongs to groups (which documents it may read), may be limited to some
collections, and may be an admin key (which manages the others). The file is re-read when it changes, so keys
made, revoked or rotated by `rag keys` or `/admin/keys` take effect without a restart."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from filelock import FileLock

KEY_PREFIX = "rag_"


def key_hash(key: str) -> str:
    """What the file keeps of a key. Keys are 32 random bytes, so one SHA-256 is as good as a slow hash here."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class KeyEntry:
    """One key as stored: never the key itself."""

    id: str
    name: str
    hash: str
    groups: tuple[str, ...] = ()  # the documents it may read: public ones and those of these groups
    collections: tuple[str, ...] = ("*",)
    admin: bool = False  # reads everything and manages keys
    created: float = field(default_factory=time.time)

    def public(self) -> dict:
        """The entry as `/admin/keys` and `rag keys list` show it: without the hash."""
        return {k: v for k, v in asdict(self).items() if k != "hash"}


class UnknownKeyError(KeyError):
    pass


class KeyStore:
    """The key file: read again whenever it changed on disk, written atomically under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = FileLock(str(self.path) + ".lock")
        self._entries: dict[str, KeyEntry] = {}
        self._seen: tuple[int, int, int] | None = None  # (inode, mtime_ns, size) of the file when last read
        self._read_lock = threading.Lock()

    def entries(self) -> list[KeyEntry]:
        self._refresh()
        return list(self._entries.values())

    def __bool__(self) -> bool:
        return bool(self.entries())

    def create(self, name: str, *, groups: tuple[str, ...] = (), collections: tuple[str, ...] = ("*",),
               admin: bool = False) -> tuple[KeyEntry, str]:
        """A new key: (its entry, the key itself, shown this once)."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        entry = KeyEntry(f"k_{secrets.token_hex(6)}", name, key_hash(key), tuple(sorted(set(groups))),
                         tuple(collections) or ("*",), admin)
        with self._lock:
            entries = self._read()
            entries[entry.id] = entry
            self._write(entries)
        return entry, key

    def revoke(self, key_id: str) -> KeyEntry:
        with self._lock:
            entries = self._read()
            if key_id not in entries:
                raise UnknownKeyError(key_id)
            entry = entries.pop(key_id)
            self._write(entries)
        return entry

    def rotate(self, key_id: str) -> tuple[KeyEntry, str]:
        """A new secret for the same key (id, groups, collections): the old one stops working at once."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self._lock:
            entries = self._read()
            if key_id not in entries:
                raise UnknownKeyError(key_id)
            entry = entries[key_id] = replace(entries[key_id], hash=key_hash(key))
            self._write(entries)
        return entry, key

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._entries, self._seen = {}, None
            return
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)  # os.replace gives every write a new inode
        if seen != self._seen:
            with self._read_lock:
                self._entries, self._seen = self._read(), seen

    def _read(self) -> dict[str, KeyEntry]:
        try:
            rows = json.loads(self.path.read_text(encoding="utf-8"))["keys"]
        except FileNotFoundError:
            return {}
        entries = {}
        for row in rows:
            row = {**row, "groups": tuple(row.get("groups", ())), "collections": tuple(row.get("collections", ("*",)))}
            entries[row["id"]] = KeyEntry(**row)
        return entries

    def _write(self, entries: dict[str, KeyEntry]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps({"keys": [asdict(e) for e in entries.values()]}, indent=2), encoding="utf-8")
        os.chmod(partial, 0o600)
        os.replace(partial, self.path)
        self._refresh()


def find_key(entries: list[KeyEntry], key: str) -> KeyEntry | None:
    """The entry of `key` among `entries`, comparing hashes in constant time."""
    digest = key_hash(key)
    found = None
    for entry in entries:
        if hmac.compare_digest(entry.hash, digest):
            found = entry
    return found
