export { Access, parseAuthorization, refusal, safeEqual, type AccessDecision, type AccessOptions, type AccessTarget, type BasicUser, type Identity, type Refusal } from './auth.js';
export { createLogger, LOG_LEVELS, type Logger, type LogLevel } from './logger.js';
export { Metrics } from './metrics.js';
export { cacheControl, CONTENT_TYPES, routeLabel, routeRepository, type Resource, type ResourceKind, type RouteResult } from './routes.js';
export { clientKind, createHostHandler, createRepositoryHandler, etagMatches, listen, type HostServerOptions, type RepositoryServerOptions, type RunningServer } from './server.js';
export { createApiHandler, type ApiOptions, type ApiRepository, type ApiRequestContext, type ApiTarget } from './api.js';
export { decodeEtf, encodeEtf, ETF_CONTENT_TYPE, type Etf } from './etf.js';
export { hostRepositories, resolveMount, type HostedRepository, type Mount } from './host.js';
export { logMirrorEvent, MIRROR_CACHE_HEADER, mirrorMetricLines } from './mirror-route.js';
