# wirecache: multi-stage build, runs as the unprivileged "node" user.
#   docker build -t wirecache .
#   docker run -v $PWD/wirecache.yaml:/etc/wirecache/wirecache.yaml -p 6033:6033 -p 9104:9104 wirecache
# In the mounted config, listen on 0.0.0.0 (and admin too, to be scraped from outside the container).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY config.example.yaml /etc/wirecache/wirecache.yaml
USER node
EXPOSE 6033 9104
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.WIRECACHE_ADMIN_PORT || 9104) + '/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["--config", "/etc/wirecache/wirecache.yaml"]
