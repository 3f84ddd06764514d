# Runs `kpi serve` (dashboards, alert listener) on the embedded PostgreSQL, or on DATABASE_URL.
# Same dependency set as pyproject.toml. Not built in CI: there is no Docker engine there.
FROM python:3.11-slim

RUN apt-get update && apt-get install -y --no-install-recommends chromium \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md catalog.yml ./
COPY kpi_lib ./kpi_lib
COPY dashboards ./dashboards
COPY notebooks ./notebooks
COPY schedules ./schedules
RUN pip install --no-cache-dir ".[dev]"

ENV KPI_HOME=/data
VOLUME ["/data"]
EXPOSE 5006 8866 8025
CMD ["sh", "-c", "kpi init && kpi serve --host 0.0.0.0"]
