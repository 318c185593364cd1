/**
 * A mirror of an upstream Hex repository: registry files and tarballs stored verbatim, each verified
 * against the upstream's key and repository name before it is stored or served.
 */
export * from './verify.js';
export * from './layout.js';
export * from './upstream.js';
export * from './cache.js';
export * from './setup.js';
export * from './lockfile.js';
export * from './closure.js';
export * from './sync.js';
export * from './bundle.js';
export * from './evict.js';
