export { fingerprint, generateKeyPair, keysMatch, loadPrivateKey, loadPublicKey, publicKeyPem } from './keys.js';
export { MAX_REGISTRY_FILE_SIZE, signAndWrap, unwrapAndVerify } from './signed.js';
export {
  assembleNamesPayload,
  assembleVersionsPayload,
  buildNames,
  buildPackage,
  buildVersions,
  encodeNamesEntry,
  encodePackagePayload,
  encodeVersionsEntry,
  packageAdvisories,
  unpackNames,
  unpackPackage,
  unpackVersions,
  type NamesEntry,
  type Timestamp,
  type UnpackedNames,
  type UnpackedPackage,
  type UnpackedRelease,
  type UnpackOptions,
  type VersionsEntry,
} from './resources.js';
export { buildPolicy, encodePolicyPayload, unpackPolicy, type UnpackedPolicy } from './policy.js';
export { hexrepo as proto } from './generated/registry.js';
