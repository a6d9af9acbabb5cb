# Two images from one file, sharing every layer but the last: `--target api` (the default, last
# stage) and `--target scheduler`. Each has its own CMD and HEALTHCHECK, since the API answers
# /readyz on PORT and the scheduler /healthz on METRICS_PORT; docker-compose.yml builds both.

# Dependencies (all of them: the compiler, and embedded-postgres for its types) and the build.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: none is needed to compile (package.json's allowScripts says the same to npm 11).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.ts ./scripts/
COPY gen ./gen
COPY platform ./platform
COPY api/src ./api/src
COPY scheduler/src ./scheduler/src
RUN npm run build

# Production dependencies only (no dev, no optional: the embedded PostgreSQL stays out) and dist/.
FROM node:20-bookworm-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# Everything above is root's and read-only to the services.
USER node

FROM runtime AS scheduler
EXPOSE 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.METRICS_PORT||9464}/healthz`).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/scheduler/src/main.js"]

FROM runtime AS api
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT||8000}/readyz`).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# A larger young generation cuts the API's GC time under load (see bench/README.md).
CMD ["node", "--max-semi-space-size=32", "dist/api/src/main.js"]
