export { Access, parseAuthorization, safeEqual, type AccessDecision, type AccessOptions, type BasicUser, type Identity } from './auth.js';
export { createLogger, LOG_LEVELS, type Logger, type LogLevel } from './logger.js';
export { Metrics } from './metrics.js';
export { cacheControl, CONTENT_TYPES, routeLabel, routeRepository, type Resource, type ResourceKind, type RouteResult } from './routes.js';
export { clientKind, createRepositoryHandler, etagMatches, listen, type RepositoryServerOptions, type RunningServer } from './server.js';
export { createApiHandler, type ApiOptions, type ApiRequestContext } from './api.js';
export { decodeEtf, encodeEtf, ETF_CONTENT_TYPE, type Etf } from './etf.js';
