export * from './layout.js';
export * from './cache.js';
export { factsFromBytes, readTarballs, type Problem } from './read-tarballs.js';
export { RegistryIndex, type ReleaseRecord, type ReleaseState, type ReleaseStateLookup, type FlushResult, type OutputListing } from './registry-index.js';
export { buildRegistry, writePublicKey, type BuildOptions, type BuildSummary } from './build.js';
export { verifyRepository, type VerifyProblem, type VerifyReport } from './verify.js';
export * from './client-setup.js';
export * from './tokens.js';
