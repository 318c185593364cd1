export * from './types.js';
export { putMany } from './batch.js';
export { assertSafeKey, contentEtag } from './keys.js';
export { checkCondition } from './driver-kit.js';
export { MemoryStore } from './memory.js';
export { FsStore, looksLikePrivateKey, readFileInside, type FsStoreOptions } from './fs.js';
export { CachedStore, type CachedStoreOptions } from './cached.js';
export { bucketPrefix, endpointParam, parseBucketUrl, type BucketUrl } from './bucket-url.js';
