# The image of the Kubernetes profile (profiles/kubernetes: container-image): Python 3.11 with the
# pinned stack of requirements.txt, Snakemake and its S3 storage plugin. The project itself is not
# installed: Snakemake unpacks the run's sources into /workdir of each pod and the workflow puts
# them on the jobs' PYTHONPATH.
#   docker build -t <registry>/create-bench:<commit> .                        # CPU torch
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 \
#     -t <registry>/create-bench:<commit>-cuda .                              # CUDA torch
# The torch version is requirements.txt's in both; only the build (CPU or CUDA) differs.
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

# git: Snakemake's provenance and source handling; libgomp1: implicit and torch's OpenMP
RUN apt-get update \
    && apt-get install -y --no-install-recommends git libgomp1 \
    && rm -rf /var/lib/apt/lists/*

COPY requirements.txt /tmp/create-bench/
# the S3 storage plugin as pyproject.toml's `cluster` extra names it (tests/test_environment.py)
RUN pip install --no-cache-dir --index-url "$TORCH_INDEX" \
        "$(grep -E '^torch==' /tmp/create-bench/requirements.txt)" \
    && pip install --no-cache-dir -r /tmp/create-bench/requirements.txt \
        "snakemake-storage-plugin-s3>=0.2"

WORKDIR /workdir
