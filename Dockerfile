# One image for both services; docker-compose.yml picks the command.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY tsconfig.json ./
COPY gen ./gen
COPY lib ./lib
COPY api/src ./api/src
COPY scheduler/src ./scheduler/src
USER node
EXPOSE 8000
# A larger young generation cuts the API's GC time under load (see bench/README.md).
CMD ["node", "--max-semi-space-size=32", "--import", "tsx", "api/src/main.ts"]
