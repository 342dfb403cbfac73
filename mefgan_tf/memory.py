"""Memory available to this process: the host's, or less inside a container.

A container's limit (``docker --memory``, Kubernetes limits) is a control group's: cgroup v2
(``memory.max`` and ``memory.current``) or v1 (``memory.limit_in_bytes`` and
``memory.usage_in_bytes``). The kernel kills a process that goes past it, whatever the host has
free, so the memory available is the least of the host's ``MemAvailable`` and, for this process's
group and each group above it, the limit less what the group uses (its reclaimable page cache,
``inactive_file``, not counted as used). No TensorFlow here: every command may ask before loading it.
"""
from __future__ import annotations

import os
from pathlib import Path

NO_LIMIT = 2**60  # cgroup v1 writes "no limit" as a page-rounded 2**63 - 1


def read_number(path: Path) -> int | None:
    """The integer in a one-value file (None: absent, unreadable, or ``max``)."""
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def stat_value(path: Path, key: str) -> int:
    """A value of a ``memory.stat`` file (0 when absent)."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except (OSError, UnicodeDecodeError):
        pass
    return 0


def host_available(root: Path) -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (None when there is none)."""
    try:
        for line in (root / "proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def own_groups(root: Path) -> dict[str, str]:
    """This process's cgroup path per hierarchy of ``/proc/self/cgroup``: ``""`` for v2, else the
    controllers (``"memory"``)."""
    groups = {}
    try:
        for line in (root / "proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                groups[name] = path
    except (OSError, ValueError):
        pass
    return groups


def group_folders(mount: Path, path: str | None) -> list[Path]:
    """The folders of a group and of each group above it, up to ``mount``; only ``mount`` when the
    path is unknown or not visible (a container sees its own group as the mount's root)."""
    folders = [mount]
    if path:
        folder = mount / path.strip("/")
        while folder != mount and mount in folder.parents:
            if folder.is_dir():
                folders.append(folder)
            folder = folder.parent
    return folders


def room(folder: Path, limit_file: str, usage_file: str, inactive_key: str) -> int | None:
    """Bytes a group may still use: its limit less its usage (None: no limit there)."""
    limit, usage = read_number(folder / limit_file), read_number(folder / usage_file)
    if limit is None or limit >= NO_LIMIT or usage is None:
        return None
    used = max(0, usage - stat_value(folder / "memory.stat", inactive_key))
    return max(0, limit - used)


def cgroup_room(root: Path) -> int | None:
    """The least room of this process's control groups, v2 and v1 (None: no limit found)."""
    groups = own_groups(root)
    found = []
    v2 = root / "sys/fs/cgroup"
    if (v2 / "cgroup.controllers").exists():
        found += [room(f, "memory.max", "memory.current", "inactive_file") for f in group_folders(v2, groups.get(""))]
    v1 = root / "sys/fs/cgroup/memory"
    if v1.is_dir():
        found += [room(f, "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
                  for f in group_folders(v1, groups.get("memory"))]
    known = [r for r in found if r is not None]
    return min(known) if known else None


def available_memory(root: str | os.PathLike = "/") -> int:
    """Bytes that new allocations of this process can use: the least of the host's available
    memory and its control groups' room (``root``: where ``/proc`` and ``/sys`` are, for tests)."""
    root = Path(root)
    known = [b for b in (host_available(root), cgroup_room(root)) if b is not None]
    if known:
        return min(known)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
