# The fleet monitor's image: every process (`monitor serve`, `monitor collect`, `monitor dispatch`,
# `monitor simulate run`) from one image, run as a non-root user.
#
#   docker build -t fleet-monitor:0.1.0 .
#
# Dependencies come from requirements.lock with their hashes (the same lock as `make install`); the project
# itself is installed without dependencies and without fetching a build backend (the venv's setuptools).
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/monitor
COPY requirements.lock ./
RUN /opt/monitor/bin/pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN /opt/monitor/bin/pip install --no-deps --no-build-isolation . \
    && /opt/monitor/bin/python -m compileall -q /opt/monitor/lib

FROM python:3.11-slim
ENV PATH=/opt/monitor/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MONITOR_DATA_DIR=/var/lib/monitor \
    MONITOR_HOST=0.0.0.0
RUN groupadd --system --gid 10001 monitor \
    && useradd --system --uid 10001 --gid monitor --home-dir /var/lib/monitor --shell /usr/sbin/nologin monitor \
    && install -d -o monitor -g monitor -m 0750 /var/lib/monitor
COPY --from=build /opt/monitor /opt/monitor
USER monitor:monitor
WORKDIR /var/lib/monitor
# 8000: web app and API (/metrics for Prometheus); 9180 + I: collector shard I's metrics.
EXPOSE 8000 9180 9181
ENTRYPOINT ["monitor"]
CMD ["serve", "--host", "0.0.0.0"]
