export * from './errors.js';
export * from './semver.js';
export * from './types.js';
export * from './limits.js';
export * from './hex.js';
export * from './config.js';
export * from './retirement.js';
