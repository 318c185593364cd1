# hexrepo serve in a container. Build: docker build -t hexrepo .
# Run:   docker run -p 4000:4000 -v /srv/acme:/data -e AUTH_USERNAME=… -e AUTH_PASSWORD=… hexrepo
# /data/public is served (PUBLIC_DIR); tokens live in /data/.hexrepo/tokens.json, beside it.
# The signing key is not needed to serve: build the registry elsewhere, and never put the key in /data/public.

# --- build: install, compile, and deploy the CLI with production dependencies only
FROM node:20-bookworm-slim AS build
WORKDIR /src
RUN npm install -g pnpm@10.34.8
COPY . .
RUN pnpm install --frozen-lockfile \
 && pnpm build \
 && pnpm --filter hexrepo deploy --prod --legacy /out

# --- runtime: no compilers, no pnpm, a non-root user
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    PORT=4000 \
    HEXREPO_HOST=0.0.0.0 \
    PUBLIC_DIR=/data/public
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin hexrepo \
 && mkdir -p /data/public /data/.hexrepo \
 && chown -R hexrepo:hexrepo /data
COPY --from=build /out /app
USER hexrepo
WORKDIR /data
VOLUME ["/data"]
EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=3s CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.PORT + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node is PID 1 and handles SIGTERM itself: requests in flight finish, then it exits 0.
ENTRYPOINT ["node", "/app/dist/bin.js"]
CMD ["serve"]
