# orgate: build the wheel and install it (no extras) into a venv, then copy only the venv into a slim
# runtime image that runs as an unprivileged user. Config: environment variables (ORGATE_SECTION__FIELD,
# secrets as ${VAR} references) and/or a YAML file mounted at /etc/orgate/orgate.yaml with ORGATE_CONFIG
# pointing at it; data (SQLite, the generated secret) in the /var/lib/orgate volume.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md /src/
COPY orgate /src/orgate
COPY deploy/install.sh /src/deploy/install.sh
RUN sh /src/deploy/install.sh /src /opt/orgate

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/orgate --create-home orgate \
    && mkdir -p /etc/orgate
COPY --from=build /opt/orgate /opt/orgate
ENV PATH=/opt/orgate/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ORGATE_DATA_DIR=/var/lib/orgate \
    ORGATE_SERVER__HOST=0.0.0.0 \
    ORGATE_SERVER__PORT=8080
WORKDIR /var/lib/orgate
VOLUME ["/var/lib/orgate"]
USER orgate
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('ORGATE_SERVER__PORT', '8080'), timeout=4)"]
ENTRYPOINT ["orgate"]
CMD ["serve"]
