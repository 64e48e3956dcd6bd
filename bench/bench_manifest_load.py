"""Benchmark: load and validate a 10,000-instance fleet spread over many manifest files.

Generates FILES manifests (each its own fleet, with a budget, defaults, variables, a secret
env, a docker and a script launch configuration, entries on a placement envelope, and
replicated entries) in a temp directory, then
times ``load_fleets`` over the directory. Target: under 2 s. Prints numbers; asserts nothing
about time.

    python bench/bench_manifest_load.py [--files 100] [--entries 10] [--replicas 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from reconciler.manifest import load_fleets

MANIFEST = """\
# yaml-language-server: $schema=./schema.json
fleet: fleet-{index:04d}
budget: {{max_hourly: "9000.00", max_instance_hourly: "3.00", max_creates_per_apply: 1000}}
variables:
  model: mistralai/Mistral-7B-Instruct-v0.2
defaults:
  cloud: hyperstack
  region: canada-1
  shade_instance_type: A6000
  shade_cloud: true
  os: ubuntu22.04_cuda12.2_shade_os
  tags: [team-ml, bench]
  auto_delete: {{spend_threshold: "100.00"}}
  launch_configuration:
    type: docker
    docker_configuration:
      image: vllm/vllm-openai:v0.4.2
      args: --model ${{var.model}}
      envs:
        - {{name: HUGGING_FACE_HUB_TOKEN, value: "${{env:HF_TOKEN:-}}"}}
      port_mappings: [{{host_port: 80, container_port: 8000}}]
instances:
{entries}"""

DOCKER_ENTRY = """\
  - name: web-{entry}
    replicas: {replicas}
    tags: [web]
"""
SCRIPT_ENTRY = """\
  - name: job-{entry}
    replicas: {replicas}
    shade_instance_type: H100
    launch_configuration:
      type: script
      script: |
        #!/bin/bash
        echo "job {entry}"
    lifecycle: {{ignore_changes: [tags]}}
"""
PLACED_ENTRY = """\
  - name: placed-{entry}
    replicas: {replicas}
    placement:
      strategy: cheapest
      candidates:
        - {{cloud: datacrunch, region: FIN-01, shade_instance_type: H100, rental_type: spot}}
        - {{cloud: lambdalabs, region: us-east-1, shade_instance_type: H100}}
      requirements: {{gpu_type: H100, max_hourly_price: "2.50", rental_types: [on_demand, spot]}}
"""
ENTRY_KINDS = (DOCKER_ENTRY, SCRIPT_ENTRY, PLACED_ENTRY)


def generate(root: Path, *, files: int, entries: int, replicas: int) -> int:
    for index in range(files):
        blocks = [
            ENTRY_KINDS[entry % len(ENTRY_KINDS)].format(entry=entry, replicas=replicas)
            for entry in range(entries)
        ]
        text = MANIFEST.format(index=index, entries="".join(blocks))
        (root / f"fleet-{index:04d}.yaml").write_text(text, encoding="utf-8")
    return files * entries * replicas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--entries", type=int, default=10, help="instance entries per file")
    parser.add_argument("--replicas", type=int, default=10, help="replicas per entry")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        expected = generate(root, files=args.files, entries=args.entries, replicas=args.replicas)
        timings = []
        for _ in range(args.runs):
            started = time.perf_counter()
            fleets = load_fleets([root], environ={})
            timings.append(time.perf_counter() - started)
        loaded = sum(len(fleet.instances) for fleet in fleets)
        assert loaded == expected, (loaded, expected)
    print(
        f"load_fleets: {loaded} instances in {len(fleets)} files"
        f" ({args.entries} entries x {args.replicas} replicas each):"
        f" best {min(timings):.3f} s, median {statistics.median(timings):.3f} s"
        f" over {args.runs} runs (target < 2 s)"
    )


if __name__ == "__main__":
    main()
