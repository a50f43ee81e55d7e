# syntax=docker/dockerfile:1
# One Dockerfile, one image per service: build a target, e.g.
#   docker build --target proxy -t cinemaabyss-proxy:local .
# Targets: monolith (8080), movies-service (8081), events-service (8082), proxy (8000).
# The monolith image also carries the migrator: `node lib/db/migrate-cli.ts`.
#
# Node 24 runs the TypeScript sources itself (type stripping: the code uses only erasable
# syntax, tsconfig's erasableSyntaxOnly), no transpiler at run time: the build stage
# type-checks the sources with tsc, the runtime stage holds only production node_modules and
# the sources.

# Node 24, the LTS line and the project's baseline: .ci/run runs the suite on it.
ARG NODE_IMAGE=node:24.22.3-alpine

# --- all dependencies, for the type-check -------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund

# --- build: type-check the service sources (tsc --noEmit; nothing to emit, node runs them) -
FROM deps AS build
COPY tsconfig.json ./
COPY lib ./lib
COPY monolith ./monolith
COPY movies-service ./movies-service
COPY events-service ./events-service
COPY proxy ./proxy
COPY flags ./flags
RUN npx tsc -p tsconfig.json --noEmit

# --- production dependencies only ----------------------------------------------------------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# --- runtime: small, non-root, read-only root filesystem (nothing is written, /tmp neither) -
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=prod-deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/package.json /app/tsconfig.json ./
COPY --from=build --chown=root:root /app/lib ./lib
COPY --from=build --chown=root:root /app/monolith ./monolith
COPY --from=build --chown=root:root /app/movies-service ./movies-service
COPY --from=build --chown=root:root /app/events-service ./events-service
COPY --from=build --chown=root:root /app/proxy ./proxy
COPY --from=build --chown=root:root /app/flags ./flags
# The node image's unprivileged user (uid 1000); Kubernetes pins the same numeric uid.
USER 1000:1000
STOPSIGNAL SIGTERM
# Inherited by every service target below: each serves /health on its PORT.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+process.env.PORT+'/health',{signal:AbortSignal.timeout(2000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

FROM runtime AS monolith
ENV PORT=8080
EXPOSE 8080
CMD ["node", "monolith/server.ts"]

FROM runtime AS movies-service
ENV PORT=8081
EXPOSE 8081
CMD ["node", "movies-service/server.ts"]

FROM runtime AS events-service
ENV PORT=8082
EXPOSE 8082
CMD ["node", "events-service/server.ts"]

FROM runtime AS proxy
ENV PORT=8000
EXPOSE 8000
CMD ["node", "proxy/server.ts"]
