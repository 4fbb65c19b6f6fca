# wirecache container image. Deployment guide: docs/deploy.md.
#
#   docker build -t wirecache .
#   docker run --rm -v "$PWD/wirecache.yaml:/etc/wirecache/wirecache.yaml:ro" \
#     -p 6033:6033 -p 9104:9104 wirecache
#
# In the mounted config, bind `listen.host` and `admin.host` to 0.0.0.0:
# 127.0.0.1 inside a container cannot be reached from outside it. An admin
# listener beyond loopback needs `admin.token` (docs/admin.md).

# ---- build: compile TypeScript, then drop the dev dependencies -------------
FROM node:20-bookworm-slim AS build
# node-gyp builds native/fd_dup.c (the worker threads' listening sockets) at npm ci.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json binding.gyp ./
COPY native ./native
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: compiled code and production node_modules only ---------------
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
# A dedicated unprivileged account with a numeric id, so that Kubernetes'
# runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 wirecache \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin wirecache \
 && mkdir -p /etc/wirecache
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/build/Release/fd_dup.node ./build/Release/fd_dup.node
COPY config.example.yaml ./config.example.yaml
USER 10001:10001
# 6033: MySQL protocol (listen.port); 9104: /metrics, /healthz (admin.port).
EXPOSE 6033 9104
# No curl in the slim image: node makes the request. Set WIRECACHE_ADMIN_PORT
# if admin.port is not 9104. /healthz is fetched from inside the container,
# over loopback.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.WIRECACHE_ADMIN_PORT || 9104) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM drains queries in flight (timeouts.shutdown_grace_ms; give
# `docker stop -t` at least that much); SIGHUP reloads the config.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["--config", "/etc/wirecache/wirecache.yaml"]
