/**
 * A mirror of an upstream Hex repository: registry files and tarballs stored verbatim, each verified
 * against the upstream's key and repository name before it is stored or served.
 */
export * from './verify.js';
export * from './layout.js';
