"""The memory available to a process: the host's, or a container's limit less its use (cgroup v1 and v2)."""
from __future__ import annotations

from pathlib import Path

import pytest

from mefgan_tf.fusion.plan import available_memory as fusion_available
from mefgan_tf.memory import available_memory

GIB = 2**30


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def host(available_gib: float) -> dict[str, str]:
    return {"proc/meminfo": f"MemTotal: 67108864 kB\nMemAvailable: {int(available_gib * GIB / 1024)} kB\n"}


V2 = "sys/fs/cgroup"
V1 = "sys/fs/cgroup/memory"

CASES = {
    "host only": ({}, 16.0),
    "v2 container": ({f"{V2}/cgroup.controllers": "memory", f"{V2}/memory.max": str(int(1.5 * GIB)),
                      f"{V2}/memory.current": str(GIB), f"{V2}/memory.stat": f"anon 1\ninactive_file {GIB // 4}\n",
                      "proc/self/cgroup": "0::/\n"}, 0.75),
    "v2 no limit": ({f"{V2}/cgroup.controllers": "memory", f"{V2}/memory.max": "max", f"{V2}/memory.current": str(GIB),
                     "proc/self/cgroup": "0::/\n"}, 16.0),
    "v2 nested group, parent limited": ({f"{V2}/cgroup.controllers": "memory", "proc/self/cgroup": "0::/app/worker\n",
                                         f"{V2}/app/memory.max": str(4 * GIB), f"{V2}/app/memory.current": str(GIB),
                                         f"{V2}/app/worker/memory.max": "max", f"{V2}/app/worker/memory.current": "0"}, 3.0),
    "v1 container": ({f"{V1}/memory.limit_in_bytes": str(2 * GIB), f"{V1}/memory.usage_in_bytes": str(GIB // 2),
                      "proc/self/cgroup": "4:memory:/docker/abc\n"}, 1.5),
    "v1 no limit": ({f"{V1}/memory.limit_in_bytes": "9223372036854771712", f"{V1}/memory.usage_in_bytes": str(GIB)}, 16.0),
    "over the limit": ({f"{V1}/memory.limit_in_bytes": str(GIB), f"{V1}/memory.usage_in_bytes": str(2 * GIB)}, 0.0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_least_of_host_and_control_group_room(tmp_path, case):
    files, expected_gib = CASES[case]
    root = write(tmp_path, {**host(16.0), **files})
    assert available_memory(root) == pytest.approx(expected_gib * GIB, abs=1024)


def test_without_meminfo_or_groups_the_free_pages_count_and_fusion_asks_this_module(tmp_path):
    assert available_memory(tmp_path) > 0
    assert abs(fusion_available() - available_memory()) < 512 * 2**20  # the same source, read twice
